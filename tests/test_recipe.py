"""``python -m src.recipe``: every recipe's stages compose, stage folders feed later stages, finished stages are
skipped when a recipe continues, and bad recipes are refused before anything runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from src.recipe import COMMANDS, load_recipe, run_recipe, split_overrides, stage_command
from src.utils.errors import ConfigError
from tests.conftest import compose
from tests.helpers import configs

ROOTS = {"train": "train", "eval": "eval", "mac": "mac", "probe": "probe"}


@pytest.mark.parametrize("name", configs("recipe"))
def test_every_stage_of_every_recipe_composes(name: str, tmp_path: Path) -> None:
    stages = load_recipe(name)
    folders = {stage: tmp_path / stage for stage in stages}
    for stage, spec in stages.items():
        command = stage_command(stage, spec, folders, [])
        overrides = [o for o in command[3:] if not o.startswith("hydra.run.dir=")]
        assert all("<" not in o for o in overrides), overrides
        cfg = compose(ROOTS[spec["command"]], overrides, tmp_path / stage)
        assert cfg.task_name


def test_overrides_reach_the_stages_they_name() -> None:
    stages = {"pre": {"command": "train", "overrides": []}, "rank": {"command": "mac", "overrides": []}}
    per_stage = split_overrides(["all:seed=1", "train:trainer=cpu", "rank:mac.steps=2"], stages)
    assert per_stage == {"pre": ["seed=1", "trainer=cpu"], "rank": ["seed=1", "mac.steps=2"]}
    with pytest.raises(ConfigError, match="neither"):
        split_overrides(["nowhere:seed=1"], stages)
    with pytest.raises(ConfigError, match="all:KEY=VALUE"):
        split_overrides(["seed=1"], stages)


def test_bad_recipes_are_refused(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("stages:\n  x: {command: rm, overrides: []}\n")
    with pytest.raises(ConfigError, match="command: one of"):
        load_recipe(str(tmp_path / "a.yaml"))
    (tmp_path / "b.yaml").write_text("stages:\n  x: {command: train, overrides: ['a=<later>/f']}\n"
                                     "  later: {command: train}\n")
    with pytest.raises(ConfigError, match="not an earlier stage"):
        load_recipe(str(tmp_path / "b.yaml"))
    with pytest.raises(ConfigError, match="no recipe"):
        load_recipe("no_such_recipe")
    assert set(COMMANDS) == set(ROOTS)


def test_a_recipe_runs_its_stages_in_order_and_continues_where_it_stopped(tmp_path: Path, monkeypatch) -> None:
    """Stage commands are recorded, not run: the second stage reads the first one's folder, and a run again
    with the same folder skips the stage that finished and repeats the one that failed."""
    import subprocess

    (tmp_path / "r.yaml").write_text("stages:\n  pre: {command: train, overrides: [a=1]}\n"
                                     "  fine: {command: train, overrides: ['model.pretrained=<pre>/last.ckpt']}\n")
    calls: list[list[str]] = []
    outcome = iter([0, 1, 0])

    def fake_run(command, check):
        calls.append(command)
        return subprocess.CompletedProcess(command, next(outcome))

    monkeypatch.setattr("src.recipe.subprocess.run", fake_run)
    out = tmp_path / "out"
    with pytest.raises(SystemExit):
        run_recipe(str(tmp_path / "r.yaml"), out)
    assert calls[0][-2:] == ["a=1", f"hydra.run.dir={(out / 'pre').resolve()}"]
    assert f"model.pretrained={(out / 'pre').resolve()}/last.ckpt" in calls[1]
    run_recipe(str(tmp_path / "r.yaml"), out)
    assert len(calls) == 3 and calls[2] == calls[1]  # the first stage was not run again
