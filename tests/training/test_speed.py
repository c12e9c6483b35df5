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
def test_auto_on_a_cpu_without_native_bf16_or_compiler_is_the_baseline(monkeypatch):
    monkeypatch.setenv(speed.CPU_BF16_ENV, "0")
    monkeypatch.setattr(speed, "cpu_compiler_available", lambda: False)
    assert resolve("cpu") == SpeedSettings.baseline() == SpeedSettings()
    assert resolve("cpu").precision == "32-true"
    assert speed.resolve_precision("auto", "cpu") == "32-true"


def test_auto_on_a_cpu_with_native_bf16_casts_training_only_and_compiles_long_runs(monkeypatch):
    monkeypatch.setenv(speed.CPU_BF16_ENV, "1")
    monkeypatch.setattr(speed, "cpu_compiler_available", lambda: True)
    settings = resolve("cpu")
    assert settings == SpeedSettings(compile=True, precision="bf16-mixed", autocast_inference=False)
    assert settings.autocast_dtype == torch.bfloat16 and settings.inference_autocast_dtype is None
    assert speed.resolve_precision("auto", "cpu") == "bf16-mixed"
    assert speed.resolve_precision("auto", "cpu", training=False) == "32-true"  # src.eval, src.restore
    # an explicit bf16-mixed is Lightning's: inference too
    assert resolve("cpu", precision="bf16-mixed").inference_autocast_dtype == torch.bfloat16
    assert speed.compile_min_steps("auto", "cpu") == speed.COMPILE_MIN_STEPS["cpu"] < speed.COMPILE_MIN_STEPS["cuda"]
    assert speed.compile_min_steps(7, "cpu") == 7 and speed.compile_min_steps(None, "cuda") is None


@pytest.mark.parametrize(("value", "native"), [("1", True), ("0", False), (" 1 ", True)])
def test_cpu_bf16_detection_can_be_overridden(monkeypatch, value, native):
    monkeypatch.setenv(speed.CPU_BF16_ENV, value)
    assert speed.cpu_bf16_native() is native


def test_cpu_bf16_detection_reads_the_cpu_and_names_a_bad_override(monkeypatch):
    monkeypatch.delenv(speed.CPU_BF16_ENV)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: True)
    assert speed.cpu_bf16_native()
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)
    assert not speed.cpu_bf16_native()
    monkeypatch.setenv(speed.CPU_BF16_ENV, "yes")
    with pytest.raises(ValueError, match="AIOIR_CPU_BF16='yes'"):
        speed.cpu_bf16_native()


def test_auto_on_an_ampere_gpu_compiles_in_bf16_with_fused_adamw(fake_cuda):
    fake_cuda(8)  # channels-last stays off: on an H200 it trained PromptIR 0.72x as fast (experiments/speed)
    assert resolve("cuda") == SpeedSettings(compile=True, channels_last=False, precision="bf16-mixed",
                                            fused_adamw=True)
    assert resolve("cuda:1", compile=False, precision="32-true", channels_last=True).as_dict() == {
        "compile": False, "compile_mode": None, "channels_last": True, "precision": "32-true", "fused_adamw": True,
        "autocast_inference": True,
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


def test_trainer_precision_auto_on_a_bf16_cpu_casts_training_steps_only(tmp_path, monkeypatch):
    from src.training.precision import TrainingStepMixedPrecision

    monkeypatch.setenv(speed.CPU_BF16_ENV, "1")
    cfg = compose("train", ["trainer=cpu"], tmp_path)
    assert resolve_trainer_precision(cfg).startswith("bf16-mixed (training steps only")
    assert cfg.trainer.precision is None  # Lightning takes the plugin or the flag, not both
    assert cfg.trainer.plugins[-1]["_target_"] == "src.training.precision.TrainingStepMixedPrecision"
    evaluation = compose("train", ["trainer=cpu"], tmp_path)
    assert resolve_trainer_precision(evaluation, training=False) == evaluation.trainer.precision == "32-true"
    plugin = TrainingStepMixedPrecision(trial=False)
    x = torch.ones(2, 2)
    with plugin.train_step_context():
        assert (x @ x).dtype == torch.bfloat16
    for context in (plugin.val_step_context, plugin.test_step_context, plugin.predict_step_context):
        with context():
            assert (x @ x).dtype == torch.float32


@pytest.mark.parametrize(("bf16_s", "fp32_s", "keeps_bf16"), [(0.5, 1.0, True), (1.0, 0.5, False),
                                                              (0.98, 1.0, False)])  # within the margin: fp32
def test_precision_trial_alternates_then_keeps_the_faster(bf16_s, fp32_s, keeps_bf16):
    from src.training.precision import PrecisionTrial

    trial = PrecisionTrial(warmup=1, steps=3, margin=0.05)
    modes = []
    while trial.decided is None:
        bf16 = trial.next_bf16()
        modes.append(bf16)
        trial.record(100.0 if len(modes) <= 2 else (bf16_s if bf16 else fp32_s))  # warm-up steps: slow, ignored
    assert modes == [True, False] * 4  # one untimed and three timed steps of each, alternating
    assert trial.decided is keeps_bf16 and trial.next_bf16() is keeps_bf16
    assert trial.summary()["median_s"] == {"bf16": bf16_s, "fp32": fp32_s}


def _steps_with_a_steady_clock(monkeypatch, steps: int):
    """``steps`` training steps through the plugin, each exactly one (fake) second long; which were cast."""
    from src.training import precision

    clock = iter(float(t) for t in range(100))
    monkeypatch.setattr(precision.time, "perf_counter", lambda: next(clock))
    plugin = precision.TrainingStepMixedPrecision()
    casts = []
    for _ in range(steps):
        with plugin.train_step_context():
            casts.append((torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.bfloat16)
    return plugin, casts


def test_the_plugin_times_whole_steps_and_settles(monkeypatch):
    plugin, casts = _steps_with_a_steady_clock(monkeypatch, 12)
    assert casts[:8] == [True, False] * 4 and plugin.trial.decided is False  # equal times: fp32 wins the tie
    assert casts[8:] == [False] * 4


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


def test_train_on_a_bf16_cpu_casts_training_steps_and_validates_in_fp32(tiny_cfg, monkeypatch):
    from src.training.precision import TrainingStepMixedPrecision

    monkeypatch.setenv(speed.CPU_BF16_ENV, "1")
    out = train(tiny_cfg("debug=fdr", "logger=none"))
    model, trainer = out["model"], out["trainer"]
    assert isinstance(trainer.precision_plugin, TrainingStepMixedPrecision)
    assert model.speed.autocast_dtype == torch.bfloat16 and model.speed.inference_autocast_dtype is None
    assert math.isfinite(out["metrics"]["train/loss"])


def test_under_ddp_every_rank_follows_rank_0s_precision(monkeypatch):
    import torch.distributed as dist

    monkeypatch.setattr(dist, "is_available", lambda: True)
    monkeypatch.setattr(dist, "is_initialized", lambda: True)
    monkeypatch.setattr(dist, "get_world_size", lambda: 2)
    monkeypatch.setattr(dist, "broadcast_object_list", lambda box, src: box.__setitem__(0, True))  # rank 0: bf16
    plugin, casts = _steps_with_a_steady_clock(monkeypatch, 10)
    assert plugin.trial.decided is True and casts[8:] == [True, True]  # its own tie said fp32; rank 0 said bf16
