"""``python -m src.recipe NAME``: a multi-stage experiment (pre-train, rank, fine-tune) as one command.

    python -m src.recipe ram_promptir_3deg                        # conf/recipe/ram_promptir_3deg.yaml
    python -m src.recipe ram_promptir_3deg --out logs/recipes/ram  # continue: finished stages are skipped
    python -m src.recipe dcpt_tiny all:trainer.max_epochs=1 train:trainer=cpu

A recipe file lists stages in order, each a command of the suite (``src.train``, ``src.eval``,
``src.analysis.mac``, ``src.analysis.probe``) with its overrides. A stage runs in its own folder under the
recipe's (``<out>/<stage>``), so a later stage names an earlier one's files as ``<stage>/...``
(``model.pretrained=<pretrain>/checkpoints/last.ckpt``): no path is copied by hand. A stage that finished
leaves ``recipe_stage.json`` and is skipped when the recipe is run again with the same ``--out``. Overrides on
the command line go to every stage (``all:KEY=VALUE``), to the stages of one command (``train:...``, ``mac:...``,
``eval:...``, ``probe:...``) or to one stage (``<stage>:...``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from src.utils.atomic import write_text_atomic
from src.utils.conf import CONF_DIR
from src.utils.errors import ConfigError

#: the commands a recipe may run, by their short name (a recipe file never names other code)
COMMANDS = {"train": "src.train", "eval": "src.eval", "mac": "src.analysis.mac", "probe": "src.analysis.probe"}
MARKER = "recipe_stage.json"
_STAGE_REF = re.compile(r"<([A-Za-z_][A-Za-z0-9_]*)>")


def load_recipe(name: str, conf_dir: Path = CONF_DIR) -> dict[str, dict[str, Any]]:
    """The stages of ``conf/recipe/<name>.yaml`` (or of a YAML file path), checked: name -> command, overrides."""
    path = Path(name) if name.endswith((".yaml", ".yml")) else conf_dir / "recipe" / f"{name}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in (conf_dir / "recipe").glob("*.yaml"))
        raise ConfigError(f"no recipe {name!r} ({path} does not exist); recipes: {', '.join(known)}")
    raw = yaml.safe_load(path.read_text()) or {}
    stages = raw.get("stages") if isinstance(raw, Mapping) else None
    if not isinstance(stages, Mapping) or not stages:
        raise ConfigError(f"{path}: expected a 'stages' map of stage name -> {{command, overrides}}")
    checked: dict[str, dict[str, Any]] = {}
    for stage, spec in stages.items():
        if not isinstance(spec, Mapping) or spec.get("command") not in COMMANDS:
            raise ConfigError(f"{path}: stage {stage!r} needs command: one of {', '.join(COMMANDS)}")
        overrides = spec.get("overrides") or []
        if not isinstance(overrides, list) or not all(isinstance(o, str) for o in overrides):
            raise ConfigError(f"{path}: stage {stage!r}: overrides must be a list of strings")
        for ref in (m for o in overrides for m in _STAGE_REF.findall(o)):
            if ref not in checked:
                raise ConfigError(f"{path}: stage {stage!r} reads <{ref}>, which is not an earlier stage "
                                  f"(earlier: {', '.join(checked) or 'none'})")
        checked[str(stage)] = {"command": spec["command"], "overrides": list(overrides)}
    return checked


def split_overrides(extra: Sequence[str], stages: Mapping[str, Mapping[str, Any]]) -> dict[str, list[str]]:
    """Command-line overrides per stage from ``all:``, ``<command>:`` and ``<stage>:`` prefixes."""
    per_stage: dict[str, list[str]] = {stage: [] for stage in stages}
    for item in extra:
        target, sep, override = item.partition(":")
        if not sep or not override:
            raise ConfigError(f"{item!r}: write all:KEY=VALUE, <command>:KEY=VALUE or <stage>:KEY=VALUE")
        chosen = [s for s, spec in stages.items() if target in ("all", s, spec["command"])]
        if not chosen:
            raise ConfigError(f"{item!r}: {target!r} is neither 'all', a command ({', '.join(COMMANDS)}) nor a "
                              f"stage ({', '.join(stages)})")
        for stage in chosen:
            per_stage[stage].append(override)
    return per_stage


def stage_command(stage: str, spec: Mapping[str, Any], folders: Mapping[str, Path], extra: Sequence[str]) -> list[str]:
    """The command line of one stage: its overrides with ``<stage>`` references filled in, then ``extra``."""
    overrides = [_STAGE_REF.sub(lambda m: str(folders[m[1]]), o) for o in spec["overrides"]]
    return [sys.executable, "-m", COMMANDS[spec["command"]], *overrides, *extra, f"hydra.run.dir={folders[stage]}"]


def run_recipe(name: str, out: Path | None = None, extra: Sequence[str] = ()) -> Path:
    """Run (or continue) the recipe ``name`` in ``out``; returns the recipe's folder."""
    stages = load_recipe(name)
    per_stage = split_overrides(extra, stages)
    out = out or Path("logs") / "recipes" / Path(name).stem / dt.datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    folders = {stage: (out / stage).resolve() for stage in stages}
    for n, (stage, spec) in enumerate(stages.items(), 1):
        marker = folders[stage] / MARKER
        if marker.is_file():
            print(f"[recipe {n}/{len(stages)}] {stage}: finished earlier ({marker}), skipped", flush=True)
            continue
        command = stage_command(stage, spec, folders, per_stage[stage])
        print(f"[recipe {n}/{len(stages)}] {stage}: {' '.join(command[2:])}", flush=True)
        result = subprocess.run(command, check=False)
        if result.returncode:
            print(f"[recipe] stage {stage} failed (exit code {result.returncode}); fix it and run again with "
                  f"--out {out}: finished stages are skipped", file=sys.stderr)
            raise SystemExit(result.returncode)
        write_text_atomic(marker, json.dumps({"stage": stage, "command": command[2:]}, indent=1) + "\n")
    print(f"[recipe] {name}: every stage finished; folders under {out}")
    return out


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m src.recipe", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("name", help="a recipe of conf/recipe (e.g. ram_promptir_3deg) or a YAML file")
    parser.add_argument("overrides", nargs="*", help="all:KEY=VALUE, <command>:KEY=VALUE or <stage>:KEY=VALUE")
    parser.add_argument("--out", type=Path, default=None, help="the recipe's folder (an existing one continues)")
    args = parser.parse_args(argv)
    try:
        run_recipe(args.name, args.out, args.overrides)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
