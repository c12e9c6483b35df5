"""LPIPS (Zhang et al. 2018) per image, from local weights only: never a silent download.

torchmetrics ships LPIPS's linear-layer weights, but its backbone takes torchvision's ImageNet weights,
which torchvision fetches from the internet into ``torch.hub.get_dir()/checkpoints`` when they are absent.
Runs here (and in CI) have no internet, and a metric must not download anything behind the user's back, so
:func:`weights_file` says where torchvision would look, :func:`build_lpips` fails with a message that says
what to fetch when the file is not there, and otherwise builds torchmetrics' network with a random backbone
and loads the local file into it with ``torch.load(weights_only=True)``. Nothing global is patched.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import torch
from torch import Tensor, nn

from src.utils.errors import ConfigError

#: ``metrics.lpips`` values -> (torchvision architecture, its weights enum)
NETS: dict[str, tuple[str, str]] = {
    "alex": ("alexnet", "AlexNet_Weights"),
    "vgg": ("vgg16", "VGG16_Weights"),
    "squeeze": ("squeezenet1_1", "SqueezeNet1_1_Weights"),
}


class LpipsWeightsError(ConfigError):
    """The backbone weights LPIPS needs are not available locally (or unreadable); the message says what to do.

    A :class:`~src.utils.errors.ConfigError` (``metrics.lpips`` asks for them), so the entry points print it as
    one line and exit with code 2.
    """


def check_net(net: str) -> None:
    """Refuse an unknown ``metrics.lpips`` value, listing the known ones."""
    if net not in NETS:
        raise ValueError(f"metrics.lpips={net!r} is not an LPIPS network; use one of {', '.join(NETS)} or null")


def weights_url(net: str) -> str:
    """The URL torchvision downloads the backbone's ImageNet weights from (its weights enum's ``DEFAULT``)."""
    check_net(net)
    import torchvision

    return getattr(torchvision.models, NETS[net][1]).DEFAULT.url


def weights_file(net: str) -> Path:
    """Where torchvision would cache those weights: ``torch.hub.get_dir()/checkpoints/<file name of the URL>``."""
    name = os.path.basename(urlparse(weights_url(net)).path)
    return Path(torch.hub.get_dir()) / "checkpoints" / name


def _missing_message(net: str, path: Path) -> str:
    url = weights_url(net)
    return (
        f"metrics.lpips={net} needs torchvision's ImageNet {NETS[net][0]} weights, and they are not available "
        f"locally: looked for {path.name} in {path.parent} (torch.hub.get_dir()/checkpoints; set TORCH_HOME to "
        f"look elsewhere). Nothing is downloaded silently: on a machine with internet fetch {url} and copy it to "
        f"{path}, or run with metrics.lpips=null to report PSNR/SSIM without LPIPS."
    )


def _load_backbone(features: nn.Module, state: dict[str, Tensor], net: str, path: Path) -> None:
    """Load torchvision's ``features.<i>.*`` keys into the layers torchmetrics' slices hold (the same modules)."""
    layers = {int(name): module for seq in features.modules() if isinstance(seq, nn.Sequential)
              for name, module in seq.named_children() if name.isdigit()}
    groups: dict[int, dict[str, Tensor]] = {}
    for key, value in state.items():
        parts = key.split(".", 2)
        if parts[0] == "features" and len(parts) == 3:
            groups.setdefault(int(parts[1]), {})[parts[2]] = value
    unfit = f"metrics.lpips={net}: {path} does not fit torchvision's {NETS[net][0]}"
    expected = {i for i, m in layers.items() if any(True for _ in m.parameters())}
    if not expected <= set(groups):
        raise LpipsWeightsError(f"{unfit}: it lacks the layers features.{sorted(expected - set(groups))}")
    try:
        for i, group in groups.items():
            if i in layers:
                layers[i].load_state_dict(group, strict=True)
    except RuntimeError as err:
        raise LpipsWeightsError(f"{unfit}: {err}") from err


def build_lpips(net: str) -> nn.Module:
    """torchmetrics' LPIPS network (eval mode, frozen) with the local backbone weights; raises if they are absent.

    Its ``forward(a, b, normalize=True)`` takes B x 3 x H x W images in [0, 1] and returns B x 1 x 1 x 1.
    """
    check_net(net)
    path = weights_file(net)
    if not path.is_file():
        raise LpipsWeightsError(_missing_message(net, path))
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any failure means an unusable file
        raise LpipsWeightsError(f"metrics.lpips={net}: {path} is not a readable weights file ({err})") from err
    if not isinstance(state, dict):
        raise LpipsWeightsError(f"metrics.lpips={net}: {path} holds a {type(state).__name__}, not a state dict")
    from torchmetrics.functional.image.lpips import _NoTrainLpips

    # pnet_rand=True: torchvision builds the backbone with weights=None (no download); the linear layers come
    # from the files inside torchmetrics (pretrained=True)
    model = _NoTrainLpips(net=net, pretrained=True, pnet_rand=True)
    _load_backbone(model.net, state, net, path)
    return model


@dataclass
class LpipsScorer:
    """Per-image LPIPS of [0,1] image pairs with one network, moved lazily to the images' device.

    Kept out of the LightningModule's submodules on purpose: its weights are not the restorer's and must not
    enter checkpoints (a checkpoint evaluated with and without LPIPS must load the same way).
    """

    net: str
    model: nn.Module

    @classmethod
    def load(cls, net: str) -> LpipsScorer:
        return cls(net, build_lpips(net))

    def __call__(self, pred: Tensor, target: Tensor) -> Tensor:
        """B x C x H x W in [0,1] (C = 1 is repeated to RGB) -> (B,) float64; in float32, outside autocast."""
        x = pred.detach().float().clamp(0.0, 1.0)
        y = target.detach().float().clamp(0.0, 1.0)
        if x.shape[1] == 1:
            x, y = x.expand(-1, 3, -1, -1), y.expand(-1, 3, -1, -1)
        if next(self.model.parameters()).device != x.device:
            self.model.to(x.device)
        with torch.no_grad(), torch.autocast(x.device.type, enabled=False):
            return self.model(x, y, normalize=True).reshape(x.shape[0]).double()
