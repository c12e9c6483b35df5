"""The benchmark's parts on their own: settings, timing summaries, memory bookkeeping, goals, files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from src.bench import fidelity, goals, network
from src.bench.cli import config_from_args, parse_size
from src.bench.config import BenchConfig
from src.bench.isolate import measure
from src.bench.settings import ABLATIONS, BASELINE, NO_UNUSED_SEARCH, OURS, NamedSetting, named_settings, parse_ours
from src.bench.tiled import buffer_bytes, memory_bound
from src.bench.timing import interleave, quantile, summarise
from src.training import speed
from src.training.speed import SpeedSettings


def test_named_settings_are_the_baseline_ours_and_one_switch_each() -> None:
    settings = {s.name: s for s in named_settings("cpu", {}, ablation=True)}
    assert settings[BASELINE].speed == SpeedSettings.baseline() and settings[BASELINE].ddp_find_unused is None
    assert settings[OURS].speed == speed.resolve("cpu")
    assert set(settings) == {BASELINE, OURS, *(f"+{name}" for name in ABLATIONS)}
    base = SpeedSettings.baseline().as_dict()
    for name in ABLATIONS:
        changed = {k for k, v in settings[f"+{name}"].speed.as_dict().items() if v != base[k]}
        assert len(changed) == 1, name
    assert named_settings("cuda", {}, ddp_choice="auto")[0].ddp_find_unused is True
    assert named_settings("cpu", {"compile": True})[1].speed.compile is True


def test_ablation_on_a_ddp_baseline_changes_one_thing_at_a_time() -> None:
    settings = {s.name: s for s in named_settings("cuda", {}, ablation=True, ddp_choice="on")}
    for name in ABLATIONS:  # each switch keeps the baseline's DDP with unused-parameter search
        assert settings[f"+{name}"].ddp_find_unused is True, name
    search = settings[NO_UNUSED_SEARCH]
    assert search.speed == SpeedSettings.baseline() and search.ddp_find_unused is False
    assert settings[OURS].ddp_find_unused is None  # one GPU: the suite runs no DDP at all


def test_ablation_can_be_limited_to_named_switches() -> None:
    names = [s.name for s in named_settings("cuda", {}, True, "on", ("bf16", "ddp_no_unused_search"))]
    assert names == [BASELINE, OURS, "+bf16", NO_UNUSED_SEARCH]
    with pytest.raises(ValueError, match="unknown ablation switch.*'tf32'"):
        named_settings("cuda", {}, True, "on", ("tf32",))
    cfg = config_from_args(["--models", "restormer_tiny", "--ablation", "channels_last"])
    assert cfg.ablation and cfg.ablation_switches == ("channels_last",)
    assert BenchConfig.from_dict(json.loads(json.dumps(cfg.as_dict()))) == cfg
    assert not config_from_args(["--models", "restormer_tiny"]).ablation


def test_parse_ours_and_sizes() -> None:
    assert parse_ours("compile=true, channels_last=false,precision=bf16-mixed") == {
        "compile": True, "channels_last": False, "precision": "bf16-mixed"}
    with pytest.raises(ValueError, match="unknown switch"):
        parse_ours("speedy=true")
    with pytest.raises(ValueError, match="key=value"):
        parse_ours("compile")
    assert parse_size("1280x720") == (720, 1280) and parse_size("256") == (256, 256)


def test_interleave_alternates_and_summaries_are_robust() -> None:
    order: list[str] = []
    times = interleave({"a": lambda: order.append("a"), "b": lambda: order.append("b")}, 3, "cpu")
    assert order == ["a", "b", "b", "a", "a", "b"] and all(len(t) == 3 for t in times.values())
    stats = summarise([1.0, 2.0, 3.0, 4.0, 100.0])
    assert stats["median_s"] == 3.0 and stats["iqr_s"] == pytest.approx(quantile([1, 2, 3, 4, 100], 0.75) - 2.0)
    assert quantile([5.0], 0.25) == 5.0


def test_memory_bound_counts_the_full_resolution_buffers() -> None:
    parts = buffer_bytes(2160, 3840)
    assert sum(parts.values()) == 10 * 4 * 2160 * 3840  # 3 in + 3 sum + 1 weights + 3 normalised, float32
    bound = memory_bound(1000.0, parts, 0.05)
    assert bound["bound_mib"] == pytest.approx((1000.0 + sum(parts.values()) / 2**20) * 1.05)


def _run(ips: float, median: float, iqr: float = 0.0, **speed_changes: object) -> dict:
    settings = {**SpeedSettings.baseline().as_dict(), **speed_changes}
    return {"images_per_s": ips, "median_s": median, "iqr_s": iqr, "describe": "x",
            "setting": {"name": "n", "speed": settings, "ddp_find_unused": None}}


def test_goals_say_why_they_are_not_met() -> None:
    training = {BASELINE: _run(10.0, 0.8), OURS: _run(12.0, 0.66, compile=True)}
    loader = {"rain": {"family": "rain", "patches_per_s_per_worker": 40.0, "ms_per_patch_per_worker": 25.0},
              "noise": {"family": "noise", "patches_per_s_per_worker": 400.0, "ms_per_patch_per_worker": 2.5}}
    found = {(g.goal, g.model): g for g in goals.evaluate({"m": {"training": training}}, loader, "cuda")}
    gpu = found[("training speed-up", "m")]
    assert not gpu.met and gpu.measured == "1.20x" and "12.00 img/s" in gpu.why
    rain = found[("loader rain >= 4x training", "m")]
    assert not rain.met and "slowest" in rain.why and "48.0/s are needed" in rain.why
    assert found[("loader noise >= 4x training", "m")].met
    cpu = goals.training_goal("m", {BASELINE: _run(10.0, 0.8), OURS: _run(9.8, 0.816)}, "cpu")
    assert cpu.met and "noise" in cpu.why


def test_trainee_computes_the_modules_training_loss(tmp_path: Path) -> None:
    built = network.build("promptir_tiny", ["model.backbone.dim=8"], SpeedSettings.baseline(), "cpu", seed=0)
    from src.run.assemble import build_model, compose

    torch.manual_seed(0)
    module = build_model(compose("train", ["model=promptir_tiny", "model.backbone.dim=8"]))
    lq, gt = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    pred, aux = module.net(lq, head=module.head)
    expected = module.loss(pred, gt)[0] + sum(aux.values())
    assert torch.allclose(built.trainee(lq, gt), expected)


@pytest.mark.slow  # a fresh Python importing torch and Lightning: ~10 s on 2 cores
def test_a_measurement_runs_in_its_own_process() -> None:
    cfg = BenchConfig(models=("restormer_tiny",), overrides=("model.backbone.dim=8",), train_size=32, steps=1,
                      warmup=2, batch=2)
    (setting,) = [s for s in named_settings("cpu", {}) if s.name == BASELINE]
    result = measure("training", "restormer_tiny", [setting], cfg, isolate=True)
    assert set(result) == {BASELINE} and len(result[BASELINE]["times_s"]) == 1
    assert result[BASELINE]["memory"]["peak_mib"] > 0


def test_inference_runs_settings_as_the_suite_does() -> None:
    from src.bench.run import for_inference

    settings = named_settings("cuda", {}, ablation=True, ddp_choice="on")
    eager = {s.name: s for s in for_inference(settings, BenchConfig())}
    # compile, fused AdamW and the DDP search do nothing there
    assert set(eager) == {BASELINE, OURS, "+channels_last", "+bf16"}
    assert all(s.ddp_find_unused is None and not s.speed.fused_adamw for s in eager.values())
    assert not eager[OURS].speed.compile and not eager[OURS].speed.channels_last
    compiled = {s.name: s for s in for_inference(settings, BenchConfig(compile_inference=True))}
    assert compiled[OURS].speed.compile and "+compile" in compiled


def test_fidelity_tells_bf16_rounding_from_identical_arithmetic() -> None:
    cfg = BenchConfig(models=("restormer_tiny",), overrides=("model.backbone.dim=8",))
    bf16 = SpeedSettings(precision=speed.BF16_MIXED)
    settings = [NamedSetting(BASELINE, SpeedSettings.baseline()), NamedSetting("same", SpeedSettings.baseline()),
                NamedSetting("+bf16", bf16)]
    records = fidelity.measure_inference("restormer_tiny", settings, cfg)
    assert records["same"]["agreement_db"] == float("inf") and records["same"]["within"]
    rounded = records["+bf16"]
    assert rounded["arithmetic"] == "bf16" and 0 < rounded["max_abs_diff"] < 0.1
    assert 20 < rounded["agreement_db"] < float("inf")
    assert rounded["within"] == (rounded["agreement_db"] >= fidelity.MIN_AGREEMENT_DB["bf16"]
                                 and rounded["psnr_shift_db"] <= fidelity.MAX_PSNR_SHIFT_DB["bf16"])
    clean, noisy = fidelity.photograph(0)
    assert clean.shape == (1, 3, 256, 256) and 0.08 < float((noisy - clean).std()) < 0.12


def test_first_loss_change_is_judged_by_its_arithmetic() -> None:
    def run(loss: float, precision: str = speed.FP32) -> dict:
        return {"first_loss": loss, "setting": {"speed": {**SpeedSettings.baseline().as_dict(),
                                                          "precision": precision}}}

    changes = fidelity.first_loss_changes({BASELINE: run(1.0), "+compile": run(1.0 + 1e-3),
                                           "+bf16": run(1.0 + 1e-3, speed.BF16_MIXED)})
    assert not changes["+compile"]["within"] and changes["+bf16"]["within"]
    goal = goals.fidelity_goal("m", "+compile", None, changes["+compile"])
    assert not goal.met and "1.0e-03 relative" in goal.measured
