"""The official implementation of a network as the benchmark's baseline (``--official-code PATH``).

"Ours vs official" is then measured, not assumed: the official network file is imported from a folder the
user points at (a clone of the official repository; nothing is fetched), built with the official arguments
that correspond to the suite's model config, and its weights are converted with the suite's own official-key
mapping into every setting's network, so all settings start from identical weights (their first training
losses agree) and the strict load proves the two architectures equal.

Importing an official file: its folder root goes on ``sys.path`` for the imports it makes of its own files;
where a file is imported through a package whose ``__init__`` pulls in a training framework (NAFNet's
``basicsr.models`` registry imports every model, dataset and lmdb), those packages are entered as empty
shells, so only the network's own files run. The file is loaded under a private module name, so an official
``src/`` folder cannot shadow the suite's.
"""

from __future__ import annotations

import importlib.util
import sys
import types
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import Tensor, nn

#: private package the official files are loaded under
MODULE_PREFIX = "aioir_official"


def image_only(output: Any) -> tuple[Tensor, dict[str, Tensor]]:
    """What most official networks return: the restored image itself."""
    return output, {}


def zero_dce_outputs(output: Any) -> tuple[Tensor, dict[str, Tensor]]:
    """Official Zero-DCE returns ``(after four curve steps, after eight, the curve maps)``."""
    return output[1], {"curves": output[2]}


@dataclass(frozen=True)
class OfficialNetwork:
    """Where an official network lives in its repository and how to build it like one model config."""

    #: the official repository, for messages
    repository: str
    #: the network file, relative to the repository root
    file: str
    #: the class in that file
    cls: str
    #: the suite's converter (``src.models.official.<converter>``) mapping its keys to ours
    converter: str
    #: the official constructor arguments equal to the model config
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    #: packages of the repository entered as empty shells (their ``__init__`` is a framework's registry)
    shell_packages: tuple[str, ...] = ()
    #: the official forward's return value -> (image, further outputs the suite's objective reads)
    unpack: Callable[[Any], tuple[Tensor, dict[str, Tensor]]] = image_only

    def call(self, net: nn.Module, lq: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """The restored image of ``net(lq)`` and the further outputs the suite's objective reads."""
        return self.unpack(net(lq))


_RESTORMER = ("swz30/Restormer", "basicsr/models/archs/restormer_arch.py", "Restormer", "restormer")
_NAFNET = ("megvii-research/NAFNet", "basicsr/models/archs/NAFNet_arch.py", "NAFNet", "nafnet")
_NAFNET_SHELLS = ("basicsr", "basicsr.models", "basicsr.models.archs")
_MOCE_IR = ("eduardzamfir/MoCE-IR", "src/net/moce_ir.py", "MoCEIR", "moce_ir")
_MOCE_IR_PAPER = {"dim": 48, "num_blocks": [4, 6, 6, 8], "num_dec_blocks": [2, 4, 4], "levels": 4,
                  "heads": [1, 2, 4, 8], "num_refinement_blocks": 4, "topk": 1, "num_experts": 4, "rank": 2,
                  "with_complexity": False, "depth_type": "constant", "stage_depth": [1, 1, 1],
                  "rank_type": "spread", "complexity_scale": "max"}

_SWINIR = ("JingyunLiang/SwinIR", "models/network_swinir.py", "SwinIR", "swinir")
_SWINIR_COLOR_DN = {"upscale": 1, "in_chans": 3, "img_size": 128, "window_size": 8, "img_range": 1.0,
                    "depths": [6, 6, 6, 6, 6, 6], "embed_dim": 180, "num_heads": [6, 6, 6, 6, 6, 6], "mlp_ratio": 2,
                    "upsampler": "", "resi_connection": "1conv"}
_DNCNN = ("cszn/KAIR", "models/network_dncnn.py", "DnCNN", "dncnn")

#: model config name -> its official network. PromptIR and AdaIR hard-code sizes for ``dim=48`` in the
#: official code, so only their paper configs have an official twin. AirNet's needs mmcv's compiled
#: deformable convolution (not here); the grey DnCNN takes one channel, which the benchmark does not feed.
OFFICIAL_NETWORKS: dict[str, OfficialNetwork] = {
    "restormer": OfficialNetwork(*_RESTORMER),
    "restormer_tiny": OfficialNetwork(*_RESTORMER, kwargs={"dim": 16, "num_blocks": [1, 1, 1, 1],
                                                           "num_refinement_blocks": 1, "heads": [1, 2, 2, 4]}),
    "promptir": OfficialNetwork("va1shn9v/PromptIR", "net/model.py", "PromptIR", "promptir", {"decoder": True}),
    "adair": OfficialNetwork("c-yn/AdaIR", "net/model.py", "AdaIR", "adair", {"decoder": True}),
    "moce_ir": OfficialNetwork(*_MOCE_IR, kwargs=_MOCE_IR_PAPER),
    "moce_ir_tiny": OfficialNetwork(*_MOCE_IR, kwargs={**_MOCE_IR_PAPER, "dim": 8, "num_blocks": [1, 1, 1, 1],
                                                        "num_dec_blocks": [1, 1, 1], "num_refinement_blocks": 1,
                                                        "heads": [1, 2, 2, 4]}),
    "nafnet": OfficialNetwork(*_NAFNET, kwargs={"img_channel": 3, "width": 32, "middle_blk_num": 12,
                                                "enc_blk_nums": [2, 2, 4, 8], "dec_blk_nums": [2, 2, 2, 2]},
                              shell_packages=_NAFNET_SHELLS),
    "nafnet_tiny": OfficialNetwork(*_NAFNET, kwargs={"img_channel": 3, "width": 8, "middle_blk_num": 1,
                                                     "enc_blk_nums": [1, 1, 1, 1], "dec_blk_nums": [1, 1, 1, 1]},
                                   shell_packages=_NAFNET_SHELLS),
    "swinir": OfficialNetwork(*_SWINIR, kwargs=_SWINIR_COLOR_DN),
    "swinir_tiny": OfficialNetwork(*_SWINIR, kwargs={**_SWINIR_COLOR_DN, "img_size": 64, "depths": [2, 2],
                                                     "embed_dim": 8, "num_heads": [2, 2]}),
    "dncnn_color": OfficialNetwork(*_DNCNN, kwargs={"in_nc": 3, "out_nc": 3, "nc": 64, "nb": 20, "act_mode": "BR"}),
    "zero_dce": OfficialNetwork("Li-Chongyi/Zero-DCE", "Zero-DCE_code/model.py", "enhance_net_nopool", "zero_dce",
                                unpack=zero_dce_outputs),
}


def official_network(model: str) -> OfficialNetwork:
    """The official twin of ``model=<model>``, or a ``ValueError`` listing the models that have one."""
    if model not in OFFICIAL_NETWORKS:
        raise ValueError(f"--official-code: model {model!r} has no official twin here; models with one: "
                         f"{', '.join(OFFICIAL_NETWORKS)}")
    return OFFICIAL_NETWORKS[model]


def find_root(spec: OfficialNetwork, folders: Sequence[str | Path]) -> Path:
    """The first of ``folders`` holding ``spec.file`` with ``class spec.cls`` in it (PromptIR and AdaIR both
    keep theirs in ``net/model.py``), else a ``FileNotFoundError`` naming what to put where."""
    for folder in folders:
        path = Path(folder).expanduser() / spec.file
        if path.is_file() and f"class {spec.cls}(" in path.read_text(encoding="utf-8", errors="replace"):
            return Path(folder).expanduser()
    raise FileNotFoundError(
        f"--official-code: none of {', '.join(str(f) for f in folders)} holds {spec.file} with class {spec.cls} "
        f"(a clone of https://github.com/{spec.repository}: pass its root folder)")


def _shell(name: str, root: Path) -> None:
    """An empty package ``name`` whose submodules are found in ``root/<name as path>``, without its ``__init__``."""
    if name in sys.modules:
        return
    package = types.ModuleType(name)
    package.__path__ = [str(root.joinpath(*name.split(".")))]
    sys.modules[name] = package


def load_class(spec: OfficialNetwork, root: Path) -> Callable[..., nn.Module]:
    """The official class, imported from ``root / spec.file``; a missing package it needs is named."""
    path = root / spec.file
    name = f"{MODULE_PREFIX}.{spec.converter}"
    if name in sys.modules:
        return getattr(sys.modules[name], spec.cls)
    sys.modules.setdefault(MODULE_PREFIX, types.ModuleType(MODULE_PREFIX))
    for package in spec.shell_packages:
        _shell(package, root)
    sys.path.insert(0, str(root))
    try:
        loader = importlib.util.spec_from_file_location(name, path)
        if loader is None or loader.loader is None:
            raise ImportError(f"cannot load {path} as a Python module")
        module = importlib.util.module_from_spec(loader)
        sys.modules[name] = module
        loader.loader.exec_module(module)
    except ModuleNotFoundError as err:
        sys.modules.pop(name, None)
        raise ModuleNotFoundError(f"--official-code: {path} imports {err.name!r}, which is not installed here "
                                  f"(pip install {err.name}); the official network cannot be built without it") from err
    finally:
        sys.path.remove(str(root))
    return getattr(module, spec.cls)


def build_official(spec: OfficialNetwork, root: Path) -> nn.Module:
    """The official network with the arguments of its model config (call after seeding)."""
    return load_class(spec, root)(**spec.kwargs)


def convert_into(module: nn.Module, official: nn.Module, spec: OfficialNetwork) -> None:
    """Load ``official``'s weights into the suite's network and head of ``module`` through the suite's official
    key mapping, strictly: a config that differs from the official arguments fails here, naming the keys."""
    from src.models.official import converter_module, load_strict
    from src.models.official.wrapper import OfficialWrapper

    converted = converter_module(spec.converter).convert(official.state_dict())
    load_strict(OfficialWrapper(module.net, module.head), converted,
                source=f"official {spec.cls} ({spec.file}, {dict(spec.kwargs)})")
