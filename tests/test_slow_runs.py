"""Multi-process and multi-run paths, run as real ``python -m src.train`` processes (marked slow)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.conftest import ROOT, TINY_RUN

pytestmark = pytest.mark.slow


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_SILENT": "true", "NO_ALBUMENTATIONS_UPDATE": "1"}


def _cmd(*overrides: str) -> list[str]:
    flags = [o for o in overrides if o.startswith("-")]  # Hydra's flags (-m) go before the overrides
    return [sys.executable, "-m", "src.train", *flags, *TINY_RUN, *(o for o in overrides if o not in flags)]


def _run(*overrides: str, timeout: float = 600) -> subprocess.CompletedProcess:
    proc = subprocess.run(_cmd(*overrides), cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return proc


def _weights(ckpt: Path) -> dict[str, torch.Tensor]:
    state = torch.load(ckpt, map_location="cpu", weights_only=True)["state_dict"]
    return {k: v for k, v in state.items() if k.startswith("net.")}


#: a deterministic run long enough to be killed mid-epoch: 3 epochs of 6 steps, last.ckpt every 2 steps
RESUMABLE = [
    "trainer.deterministic=true",
    "trainer.max_epochs=3",
    "data.samples_per_epoch=24",
    "model/scheduler=none",
    "callbacks.last_checkpoint.every_n_train_steps=2",
    "test=false",
]


def test_resume_after_kill_reaches_the_same_weights(tmp_path):
    reference = tmp_path / "reference"
    _run(*RESUMABLE, f"hydra.run.dir={reference}")

    killed = tmp_path / "killed"
    last = killed / "checkpoints" / "last.ckpt"
    # killed with SIGKILL right after step 9 (mid-epoch 1); the newest last.ckpt is from step 8
    proc = subprocess.run(
        _cmd(*RESUMABLE, f"hydra.run.dir={killed}", "+callbacks.kill._target_=tests.kill_callback.KillAtStep",
             "+callbacks.kill.step=9"),
        cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-3000:]
    steps_at_kill = torch.load(last, map_location="cpu", weights_only=True)["global_step"]
    assert steps_at_kill == 8, f"last.ckpt is from step {steps_at_kill}"

    resumed = tmp_path / "resumed"
    _run(*RESUMABLE, f"hydra.run.dir={resumed}", f"ckpt_path={last}")
    final = torch.load(resumed / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert final["global_step"] == 18
    ref, got = _weights(reference / "checkpoints" / "last.ckpt"), _weights(resumed / "checkpoints" / "last.ckpt")
    assert ref.keys() == got.keys()
    assert all(torch.equal(ref[k], got[k]) for k in ref), f"weights differ after resuming from step {steps_at_kill}"


def test_ddp_with_two_cpu_processes(tmp_path):
    run = tmp_path / "ddp"
    proc = _run("trainer=ddp_sim", "data.samples_per_epoch=16", f"hydra.run.dir={run}")
    assert "Starting with 2 processes" in proc.stdout + proc.stderr
    assert (run / "metrics.json").is_file()
    assert (run / "checkpoints" / "last.ckpt").is_file()


def test_multirun_over_two_values(tmp_path):
    sweep = tmp_path / "sweep"
    _run("-m", "model.optimizer.lr=1e-3,2e-3", "test=false", f"hydra.sweep.dir={sweep}")
    jobs = sorted(p.name for p in sweep.iterdir() if p.is_dir() and p.name.isdigit())
    assert jobs == ["0", "1"]
    for job in jobs:
        assert (sweep / job / "checkpoints" / "last.ckpt").is_file()


def test_optuna_search_with_two_trials(tmp_path):
    sweep = tmp_path / "optuna"
    _run("hparams_search=optuna", "hydra.sweeper.n_trials=2", "hydra.sweeper.sampler.n_startup_trials=2",
         "test=false", f"hydra.sweep.dir={sweep}")
    assert (sweep / "optimization_results.yaml").is_file()
    assert "best_value" in (sweep / "optimization_results.yaml").read_text()


def test_moce_ir_under_ddp_without_unused_parameter_search_matches_the_official_search(tmp_path):
    """trainer=ddp_sim (find_unused_parameters=false) trains MoCE-IR to the same weights and AdamW state as
    DDP's unused-parameter search without our anchor (the official setting), with gradient accumulation."""
    moce = [o for o in TINY_RUN if not o.startswith("model")] + [
        "model=moce_ir_tiny", "trainer=ddp_sim", "trainer.deterministic=true", "+trainer.accumulate_grad_batches=2",
        "data.batch_size=1", "data.samples_per_epoch=16", "test=false",
    ]

    def run(name: str, *extra: str) -> dict:
        cmd = [sys.executable, "-m", "src.train", *moce, *extra, f"hydra.run.dir={tmp_path / name}"]
        proc = subprocess.run(cmd, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr[-4000:]
        assert "Starting with 2 processes" in proc.stdout + proc.stderr
        return torch.load(tmp_path / name / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)

    ours = run("ours")
    official = run("official", "trainer.strategy.find_unused_parameters=true",
                   "+callbacks.official._target_=tests.official_unused_callback.OfficialUnusedParameters")
    assert ours["global_step"] == official["global_step"] == 4
    assert ours["state_dict"].keys() == official["state_dict"].keys()
    assert all(torch.equal(v, official["state_dict"][k]) for k, v in ours["state_dict"].items())
    a, b = ours["optimizer_states"][0]["state"], official["optimizer_states"][0]["state"]
    assert a.keys() == b.keys() and len(a) < len(ours["optimizer_states"][0]["param_groups"][0]["params"])
    assert all(torch.equal(a[i][key], b[i][key]) for i in a for key in ("exp_avg", "exp_avg_sq"))


def test_two_runs_started_together_never_share_a_folder(tmp_path):
    """Every name the clock could give in the next minute is taken already, so both runs must claim a suffix
    at the same moment; each gets its own folder with its own config and log."""
    import datetime

    logs = tmp_path / "logs"
    runs = logs / "debug" / "runs"  # debug=fdr names its runs "debug"
    now = datetime.datetime.now()
    stamps = [(now + datetime.timedelta(seconds=s)).strftime("%Y-%m-%d_%H-%M-%S") for s in range(-5, 60)]
    for stamp in stamps:
        (runs / stamp).mkdir(parents=True)
    cmd = _cmd("debug=fdr", f"paths.log_dir={logs}")
    procs = [subprocess.Popen(cmd, cwd=ROOT, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              text=True) for _ in range(2)]
    for proc in procs:
        assert proc.wait(timeout=600) == 0, proc.stderr.read()[-3000:]
    claimed = sorted(p for p in runs.iterdir() if p.name not in stamps)
    assert len(claimed) == 2 and all(p.name.rsplit("_", 1)[1].isdigit() for p in claimed)
    for folder in claimed:
        assert (folder / ".hydra" / "config.yaml").is_file() and (folder / "debug.log").is_file()


#: options that keep a strategy small enough for two CPU processes
STRATEGY_OPTIONS = {"ram_plus_pretrain": ["model.strategy.embed_dim=16", "model.strategy.num_heads=2"],
                    "ram_plus_finetune": ["model.strategy.extractor=stand_in"]}


@pytest.mark.parametrize("strategy", ["art", "dcpt_pretrain", "ram_pretrain", "ram_plus_pretrain", "ram_plus_finetune"])
def test_strategies_under_ddp_with_two_cpu_processes(tmp_path, strategy):
    """Each strategy trains in two processes: Art reduces its per-family losses across ranks (a family may be on
    one rank only), DCPT's classifier, RAM's token, RAM++'s mask generator and feature fusion are synchronised
    parameters like the network's."""
    run = tmp_path / strategy
    extra = ["model=promptir_tiny", "model.backbone.dim=8", "model.backbone.latent_out_channels=32",
             *STRATEGY_OPTIONS.get(strategy, [])]
    proc = _run("trainer=ddp_sim", f"strategy={strategy}", *extra, "data.samples_per_epoch=16", "test=false",
                f"hydra.run.dir={run}")
    assert "Starting with 2 processes" in proc.stdout + proc.stderr
    state = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    if strategy == "art":
        history = state["aioir_strategy_state"]
        assert len(history["average"]) >= 3 and set(history["average"]) <= set(history["families"])
