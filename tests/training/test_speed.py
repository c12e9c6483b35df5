"""Speed switches (src/models/speed.py, the ``speed`` config group): each gives the baseline's outputs.

Tolerances (measured on CPU, random-initialised tiny networks, 2x3x40x48 input, eval mode):
channels-last vs contiguous: max abs difference <= 3e-7 (bound 1e-5); compile (inductor) vs eager: 2.4e-7
(bound 1e-5); bf16 autocast vs fp32: max abs 3.6e-3 to 1.1e-2, PSNR 55-62 dB (bound: 0.05 and 40 dB);
fused vs plain AdamW after one step: bound 1e-6.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from torch._dynamo.utils import counters

from src.run.assemble import build_model, resolve_trainer_precision
from src.train import train
from src.training import speed
from src.training.speed import SpeedSettings, resolve
from src.utils.errors import ConfigError
from tests.conftest import compose

#: tiny configs of several backbones (MoCE-IR's router noise off in eval so two forwards agree)
BACKBONES = {
    "restormer_tiny": [],
    "promptir_tiny": [],
    "nafnet_tiny": [],
    "moce_ir_tiny": ["model.head.router_noise_in_eval=false"],
}


def _model(tmp_path: Path, name: str, *overrides: str):
    torch.manual_seed(0)
    return build_model(compose("train", [f"model={name}", *BACKBONES[name], *overrides], tmp_path))


def _input() -> torch.Tensor:
    return torch.rand(2, 3, 40, 48, generator=torch.Generator().manual_seed(1))


@pytest.fixture
def fake_cuda(monkeypatch):
    """CUDA available, with a device of the given compute capability (Ampere: 8.0)."""

    def make(major: int = 8) -> None:
        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
        monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (major, 0))
        monkeypatch.setattr(torch.version, "hip", None)

    return make


# ------------------------------------------------------------------ resolving "auto"
def test_auto_on_cpu_is_the_baseline():
    assert resolve("cpu") == SpeedSettings.baseline() == SpeedSettings()
    assert resolve("cpu").precision == "32-true"
    assert speed.resolve_precision("auto", "cpu") == "32-true"


def test_auto_on_an_ampere_gpu_compiles_in_bf16_with_fused_adamw(fake_cuda):
    fake_cuda(8)  # channels-last stays off: on an H200 it trained PromptIR 0.72x as fast (experiments/speed)
    assert resolve("cuda") == SpeedSettings(compile=True, channels_last=False, precision="bf16-mixed",
                                            fused_adamw=True)
    assert resolve("cuda:1", compile=False, precision="32-true", channels_last=True).as_dict() == {
        "compile": False, "compile_mode": None, "channels_last": True, "precision": "32-true", "fused_adamw": True,
    }


def test_auto_on_a_gpu_without_native_bf16_stays_fp32(fake_cuda):
    fake_cuda(7)  # V100/T4: bf16 only emulated
    settings = resolve("cuda")
    assert settings.precision == "32-true" and settings.compile and settings.fused_adamw


@pytest.mark.parametrize(("planned", "options", "compiled"), [
    (100, [], False),  # a short run: compiling costs more than it wins
    (20000, [], True),
    (100, ["speed.compile_min_steps=50"], True),
    (100, ["speed.compile_min_steps=null"], True),
    (float("inf"), [], True),  # no end planned
    (100, ["speed.compile=true"], True),  # an explicit choice is kept
])
def test_auto_compile_is_decided_at_train_start_from_the_runs_length(tmp_path, fake_cuda, planned, options,
                                                                       compiled):
    fake_cuda(8)
    model = _model(tmp_path, "nafnet_tiny", *options)
    model._trainer = SimpleNamespace(precision="bf16-mixed", gradient_clip_val=None,
                                     estimated_stepping_batches=planned)
    model.apply_speed("cuda")
    at_once = bool({"speed.compile=true", "speed.compile_min_steps=null"} & set(options))
    assert (model.net._compiled_call_impl is not None) == at_once  # else nothing compiled before the start
    model.on_train_start()
    assert model.speed.compile is compiled
    assert (model.net._compiled_call_impl is not None) is compiled


@pytest.mark.parametrize("value", [-1, 2.5, True, "many"])
def test_compile_min_steps_must_be_a_whole_number(value):
    with pytest.raises(ValueError, match="speed.compile_min_steps"):
        speed.check_options({"compile_min_steps": value})


def test_accelerator_names_map_to_devices(fake_cuda):
    assert speed.accelerator_device("cpu") == "cpu"
    assert speed.accelerator_device("gpu") == speed.accelerator_device("cuda") == "cuda"
    assert speed.accelerator_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    fake_cuda(8)
    assert speed.accelerator_device("auto") == speed.accelerator_device(None) == "cuda"
    assert speed.accelerator_device("mps") == "cpu"


def test_trainer_precision_auto_is_resolved_before_lightning_sees_it(tmp_path, fake_cuda):
    cfg = compose("train", ["trainer=cpu"], tmp_path)
    assert cfg.trainer.precision == "auto"
    assert resolve_trainer_precision(cfg) == cfg.trainer.precision == "32-true"
    fake_cuda(9)
    gpu = compose("train", ["trainer=gpu"], tmp_path)
    assert resolve_trainer_precision(gpu) == gpu.trainer.precision == "bf16-mixed"
    cpu = compose("train", ["trainer=cpu"], tmp_path)
    assert resolve_trainer_precision(cpu) == "32-true"  # the accelerator decides, not what is installed
    chosen = compose("train", ["trainer=gpu", "trainer.precision=16-mixed"], tmp_path)
    assert resolve_trainer_precision(chosen) == "16-mixed"


def test_speed_baseline_config_is_the_official_way(tmp_path):
    cfg = compose("train", ["speed=baseline"], tmp_path)
    assert dict(cfg.speed) == {"compile": False, "compile_mode": None, "channels_last": False, "fused_adamw": False}
    assert cfg.trainer.precision == "32-true"
    assert compose("train", ["speed=baseline", "trainer.precision=bf16-mixed"], tmp_path).trainer.precision == (
        "bf16-mixed"
    )


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [({"compile": "yes"}, "speed.compile"), ({"channels_last": 1}, "speed.channels_last"),
     ({"fused_adamw": "on"}, "speed.fused_adamw"), ({"compile_mode": "fastest"}, "speed.compile_mode")],
)
def test_bad_values_name_the_key(kwargs, key):
    with pytest.raises(ValueError, match=key):
        resolve("cpu", **kwargs)
    with pytest.raises(ValueError, match=key):
        speed.check_options(kwargs)


def test_bad_speed_config_fails_when_the_model_is_built(tmp_path):
    with pytest.raises(ConfigError, match="speed.channels_last"):
        build_model(compose("train", ["model=nafnet_tiny", "speed.channels_last=maybe"], tmp_path))
    with pytest.raises(ConfigError, match="compiel"):
        build_model(compose("train", ["model=nafnet_tiny", "+speed.compiel=true"], tmp_path))


# ------------------------------------------------------------------ each switch keeps the outputs
@pytest.mark.parametrize("name", list(BACKBONES))
def test_channels_last_forward_equals_baseline(tmp_path, name):
    base = _model(tmp_path, name).eval()
    fast = _model(tmp_path, name, "speed.channels_last=true").eval()
    fast.load_state_dict(base.state_dict())
    fast.apply_speed("cpu")
    weights = [p for p in fast.parameters() if p.dim() == 4 and p.shape[-1] > 1]
    assert weights and all(p.is_contiguous(memory_format=torch.channels_last) for p in weights)
    x = _input()
    with torch.no_grad():
        expected, got = base(x), fast(x)
    assert (got - expected).abs().max().item() <= 1e-5


@pytest.mark.parametrize("name", list(BACKBONES))
def test_bf16_autocast_on_cpu_stays_close_to_fp32(tmp_path, name):
    model = _model(tmp_path, name).eval()
    x = _input()
    with torch.no_grad():
        expected = model(x)
        with speed.autocast(SpeedSettings(precision="bf16-mixed"), "cpu"):
            got = model(x).float()
    mse = ((got.clamp(0, 1) - expected.clamp(0, 1)) ** 2).mean().item()
    assert (got - expected).abs().max().item() < 0.05
    assert 10 * math.log10(1 / max(mse, 1e-20)) > 40


def test_fused_adamw_step_equals_plain_adamw():
    torch.manual_seed(0)
    params = [torch.randn(8, 4, 3, 3), torch.randn(8), torch.randn(3, 5)]
    grads = [torch.randn_like(p) for p in params]
    results = []
    for fused in (False, True):
        ps = [p.clone().requires_grad_() for p in params]
        opt = torch.optim.AdamW(ps, lr=2e-4, weight_decay=0.01, fused=fused)
        for p, g in zip(ps, grads):
            p.grad = g.clone()
        opt.step()
        results.append((ps, opt))
    (plain, plain_opt), (fused, fused_opt) = results
    for a, b in zip(plain, fused):
        assert (a - b).abs().max().item() <= 1e-6
        for key in ("exp_avg", "exp_avg_sq"):
            assert (plain_opt.state[a][key] - fused_opt.state[b][key]).abs().max().item() <= 1e-6


def test_fused_adamw_switch_respects_an_explicit_choice(tmp_path):
    model = _model(tmp_path, "nafnet_tiny", "speed.fused_adamw=true")
    model.apply_speed("cpu")
    assert model.configure_optimizers()["optimizer"].defaults["fused"] is True
    for key in ("foreach", "fused"):
        own = _model(tmp_path, "nafnet_tiny", "speed.fused_adamw=true", f"+model.optimizer.{key}=false")
        own.apply_speed("cpu")
        assert not own.configure_optimizers()["optimizer"].defaults[key]
    plain = _model(tmp_path, "nafnet_tiny", "model/optimizer=adam", "speed=baseline")
    plain.apply_speed("cpu")
    assert not plain.configure_optimizers()["optimizer"].defaults["fused"]


def test_compile_keeps_state_dict_keys_and_evaluation_runs_eagerly(tmp_path):
    model = _model(tmp_path, "nafnet_tiny", "speed.compile=true")
    keys = list(model.state_dict())
    state = copy.deepcopy(model.state_dict())
    assert model.apply_speed("cpu").compile
    assert list(model.state_dict()) == keys
    model.load_state_dict(state, strict=True)  # a checkpoint of an uncompiled run loads as it is
    counters.clear()
    with torch.no_grad():
        model.eval()(torch.rand(1, 3, 37, 45))
    assert not counters["frames"], "evaluation went through torch.compile"


@pytest.mark.slow
def test_compiled_forward_equals_eager(tmp_path):
    """Inductor on CPU: about 70 s to compile the tiny NAFNet on one core."""
    eager = _model(tmp_path, "nafnet_tiny").eval()
    compiled = _model(tmp_path, "nafnet_tiny", "speed.compile=true").eval()
    compiled.load_state_dict(eager.state_dict())
    compiled.apply_speed("cpu")
    x = _input()
    with torch.no_grad():
        expected, _ = eager.net(x, head=eager.head)
        got, _ = compiled.net(x, head=compiled.head)  # the network itself is compiled (forward() is eager)
    assert (got - expected).abs().max().item() <= 1e-5


# ------------------------------------------------------------------ through src.train
def test_fast_dev_run_with_speed_switches(tiny_cfg):
    out = train(tiny_cfg("debug=fdr", "logger=none", "speed.channels_last=true", "speed.fused_adamw=true"))
    model, trainer = out["model"], out["trainer"]
    assert model.speed == SpeedSettings(channels_last=True, fused_adamw=True)
    assert trainer.optimizers[0].defaults["fused"] is True
    conv = next(p for p in model.net.parameters() if p.dim() == 4 and p.shape[-1] > 1)
    assert conv.is_contiguous(memory_format=torch.channels_last)
    assert math.isfinite(out["metrics"]["train/loss"])


def test_train_on_cpu_resolves_auto_to_the_baseline(tiny_cfg):
    out = train(tiny_cfg("debug=fdr", "logger=none"))
    assert out["model"].speed == SpeedSettings.baseline()
    assert out["trainer"].precision == "32-true"
