"""``make bench --official-code PATH``: official network files imported from a folder, run beside ours.

The official repositories are not here (nothing is fetched); the tests build small stand-in repositories with
the layouts the importer must handle, and one stand-in official network with the official parameter names
(Zero-DCE's ``e_conv1..7``) so the whole benchmark runs with an official setting from converted weights.
"""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from src.bench import official
from src.bench.cli import main
from src.bench.official import OfficialNetwork, find_root, load_class, official_network
from src.bench.run import JSON_NAME, MARKDOWN_NAME

#: a stand-in for official Zero-DCE: the official class name and parameter names, DCE-Net's computation
STAND_IN_ZERO_DCE = '''
import torch
import torch.nn.functional as F
from torch import nn


class enhance_net_nopool(nn.Module):
    def __init__(self):
        super().__init__()
        shapes = [(3, 32), (32, 32), (32, 32), (32, 32), (64, 32), (64, 32), (64, 24)]
        for index, (cin, cout) in enumerate(shapes, 1):
            setattr(self, f"e_conv{index}", nn.Conv2d(cin, cout, 3, 1, 1))

    def forward(self, x):
        x1 = F.relu(self.e_conv1(x))
        x2 = F.relu(self.e_conv2(x1))
        x3 = F.relu(self.e_conv3(x2))
        x4 = F.relu(self.e_conv4(x3))
        x5 = F.relu(self.e_conv5(torch.cat([x3, x4], 1)))
        x6 = F.relu(self.e_conv6(torch.cat([x2, x5], 1)))
        r = torch.tanh(self.e_conv7(torch.cat([x1, x6], 1)))
        steps = []
        for curve in torch.split(r, 3, dim=1):
            x = x + curve * (x * x - x)
            steps.append(x)
        return steps[3], x, r
'''


def _write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root


@pytest.fixture
def clean_modules():
    """Official modules and the stand-in packages are dropped from ``sys.modules`` after each test (only those:
    dropping the suite's own modules would give later tests second copies of its classes)."""
    yield
    for name in [n for n in sys.modules if n.split(".")[0] in (official.MODULE_PREFIX, "pkg")]:
        del sys.modules[name]


def test_find_root_picks_the_folder_whose_file_has_the_class(tmp_path):
    adair = _write(tmp_path / "AdaIR", {"net/model.py": "class AdaIR(object):\n    pass\n"})
    promptir = _write(tmp_path / "PromptIR", {"net/model.py": "class PromptIR(object):\n    pass\n"})
    assert find_root(official_network("promptir"), [adair, promptir]) == promptir
    with pytest.raises(FileNotFoundError, match=r"net/model.py with class PromptIR .*github.com/va1shn9v/PromptIR"):
        find_root(official_network("promptir"), [adair])


def test_a_model_without_an_official_twin_is_named():
    with pytest.raises(ValueError, match="promptir_tiny.*no official twin.*restormer"):
        official_network("promptir_tiny")


def test_shell_packages_skip_a_frameworks_registry(tmp_path, clean_modules):
    root = _write(tmp_path, {
        "pkg/__init__.py": "raise RuntimeError('the registry imports the whole framework')\n",
        "pkg/archs/__init__.py": "raise RuntimeError('this one too')\n",
        "pkg/archs/util.py": "SCALE = 3.0\n",
        "pkg/archs/net_arch.py": """
            from torch import nn
            from pkg.archs.util import SCALE

            class Net(nn.Module):
                def __init__(self, width=2):
                    super().__init__()
                    self.conv = nn.Conv2d(3, width, 1)
                    self.scale = SCALE
            """,
    })
    spec = OfficialNetwork("someone/pkg", "pkg/archs/net_arch.py", "Net", "restormer",
                           shell_packages=("pkg", "pkg.archs"))
    net = load_class(spec, root)(width=4)
    assert net.scale == 3.0 and net.conv.out_channels == 4
    assert str(root) not in sys.path  # the folder is on the path only while importing


def test_a_missing_package_of_the_official_file_is_named(tmp_path, clean_modules):
    root = _write(tmp_path, {"net/model.py": "import no_such_package_here\n\nclass PromptIR:\n    pass\n"})
    with pytest.raises(ModuleNotFoundError, match=r"net/model.py imports 'no_such_package_here'.*pip install"):
        load_class(official_network("promptir"), root)


def test_an_official_src_folder_does_not_shadow_the_suite(tmp_path, clean_modules):
    root = _write(tmp_path, {"src/net/moce_ir.py": "SRC = 'official'\nclass MoCEIR:\n    pass\n"})
    load_class(official_network("moce_ir"), root)
    import src

    assert sys.modules[f"{official.MODULE_PREFIX}.moce_ir"].SRC == "official" and "src.net" not in sys.modules
    assert Path(src.__file__).resolve().parent == Path(official.__file__).resolve().parents[1]


def test_converted_weights_reach_our_network(tmp_path, clean_modules):
    from src.run.assemble import build_model, compose

    root = _write(tmp_path, {"Zero-DCE_code/model.py": STAND_IN_ZERO_DCE})
    spec = official_network("zero_dce")
    torch.manual_seed(0)
    net = official.build_official(spec, find_root(spec, [root]))
    module = build_model(compose("train", ["model=zero_dce"]))
    official.convert_into(module, net, spec)
    x = torch.rand(1, 3, 24, 20)
    with torch.no_grad():
        image, outputs = spec.call(net, x)
        assert torch.allclose(image, module(x), atol=1e-6)
        assert torch.allclose(outputs["curves"], module.net.curves(x), atol=1e-6)


@pytest.mark.slow  # a whole bench run beside the official code (6 s)
def test_bench_runs_the_official_code_beside_ours(tmp_path, clean_modules, monkeypatch):
    from src.training.speed import CPU_BF16_ENV

    monkeypatch.setenv(CPU_BF16_ENV, "1")  # ours = speed=auto on a CPU with native bf16: a precision trial
    root = _write(tmp_path / "Zero-DCE", {"Zero-DCE_code/model.py": STAND_IN_ZERO_DCE})
    out = tmp_path / "bench"
    main(["--models", "zero_dce", "--official-code", str(root), "--train-size", "24", "--batch", "2",
          "--steps", "2", "--warmup", "2", "--latency-sizes", "24x16", "--latency-repeats", "1", "--families",
          "--no-4k", "--run-steps", "10", "--out", str(out)])
    result = json.loads((out / JSON_NAME).read_text())
    figures = result["models"]["zero_dce"]
    assert list(figures["training"]) == ["official", "baseline", "ours"]
    assert figures["training"]["official"]["setting"]["official"] is True
    # same weights, same batch: the official network's first loss is ours
    assert figures["fidelity"]["training"]["official"]["relative_change"] <= 1e-6
    assert figures["fidelity"]["inference"]["official"]["max_abs_diff"] <= 1e-5
    vs_official = figures["speedup"]["vs_official"]
    training = figures["training"]
    assert vs_official["training"]["baseline"] == pytest.approx(
        training["official"]["median_s"] / training["baseline"]["median_s"])
    assert any(g["goal"] == "not slower than the official code" for g in result["goals"])
    trial = training["ours"]["precision_trial"]
    assert trial["decided_bf16"] in (True, False) and len(trial["times_s"]["fp32"]) == 3
    assert training["ours"]["warmup_steps"] >= 8 and "(trial: " in training["ours"]["describe"]
    markdown = (out / MARKDOWN_NAME).read_text()
    assert "vs official" in markdown and "official code: fp32 eager" in markdown


def test_bench_refuses_a_model_whose_official_file_is_absent(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["--models", "restormer_tiny", "--official-code", str(tmp_path), "--out", str(tmp_path / "o")])
    assert "restormer_arch.py with class Restormer" in capsys.readouterr().err
