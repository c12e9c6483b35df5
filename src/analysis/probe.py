"""``python -m src.analysis.probe``: how well do a network's features tell the degradation families apart?

    python -m src.analysis.probe model=restormer_tiny                      # a random network (seeded)
    python -m src.analysis.probe ckpt_path=logs/quickstart/runs/<time>/checkpoints/best_epoch003.ckpt

For ``probe.per_family`` degraded images of each family of the data setting, the features the backbone shows
at each of its head positions (``feature_info``; averaged over space) go through DCPT's kNN protocol and a
linear probe (:mod:`src.analysis.probe_metrics`); the run folder gets ``probe.json``, one picture per position
(t-SNE and confusion matrix) and the terminal a table.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig, OmegaConf
from rich.console import Console
from rich.table import Table

from src.analysis.features import analysed_model, analysis_device, family_samples
from src.analysis.probe_metrics import probe
from src.inference.routing import collect
from src.run.assemble import build
from src.run.config_tree import show_config
from src.run.from_checkpoint import overridden_groups
from src.utils.atomic import write_text_atomic
from src.utils.conf import CONF_DIR
from src.utils.errors import ConfigError, exit_on_user_error
from src.utils.run_dir import register_resolvers

log = logging.getLogger(__name__)
JSON_NAME = "probe.json"


def run_probe(cfg: DictConfig, overridden: Iterable[str] = ()) -> dict[str, Any]:
    """Probe every head position; writes probe.json (and pictures) in ``cfg.paths.output_dir``; returns the record."""
    options = cfg.probe
    out = Path(cfg.paths.output_dir)
    cfg, model, weights = analysed_model(cfg, overridden)
    show_config(cfg, out)
    net, head = model.net, model.head
    device = analysis_device(str(options.device))
    net.eval().to(device)
    if head is not None:
        head.eval().to(device)
    datamodule = build(cfg.data, "data")
    samples = family_samples(datamodule, int(options.per_family), int(cfg.seed))
    counts = {family: len(images) for family, images in samples.items()}
    log.info("probe: %s images (%s) through %s (%s)", sum(counts.values()), counts, type(net).__name__, weights)
    features, labels = collect(net, head, ((f, im) for f, images in samples.items() for im in images), device)
    if not features:
        raise ConfigError(f"{type(net).__name__} publishes no feature positions (feature_info is empty) and makes no "
                          "embedding of its input: nothing to probe")
    levels: dict[str, Any] = {}
    for name, values in features.items():
        result = probe(values, labels, int(options.k), float(options.holdout), int(options.seeds))
        levels[name] = {"channels": int(values.shape[1]), **result.as_dict()}
        if options.pictures:
            from src.analysis.probe_plot import write_figure

            picture = out / f"probe_{name.replace(':', '_')}.png"
            levels[name]["picture"] = write_figure(picture, values, labels, result, name).name
    record = {
        "model": OmegaConf.to_container(cfg.model, resolve=True).get("backbone", {}).get("_target_"),
        "weights": weights,
        "data": cfg.data.get("name"),
        "images_per_family": counts,
        "protocol": {"k": int(options.k), "holdout": float(options.holdout), "seeds": int(options.seeds)},
        "levels": levels,
    }
    named = zero_shot_record(net, samples, device) if bool(options.get("zero_shot", True)) else None
    if named is not None:
        record["zero_shot"] = named
    write_text_atomic(out / JSON_NAME, json.dumps(record, indent=2) + "\n")
    print_table(record)
    return record


def zero_shot_record(net: Any, samples: dict[str, list[Any]], device: Any) -> dict[str, Any] | None:
    """A network that names degradations (DA-CLIP: ``classify``) scored on the families it has a name for:
    accuracy of the best-matching name per family and overall; ``None`` for every other network."""
    import torch

    from src.models.layers.clip_text import FAMILY_NAMES

    classify = getattr(net, "classify", None)
    if classify is None or not hasattr(getattr(net, "encoder", None), "names"):
        return None
    per_family: dict[str, float] = {}
    right = total = 0
    for family, images in samples.items():
        if family not in FAMILY_NAMES:
            continue
        with torch.no_grad():
            names, scores = classify(torch.stack(images).to(device))
        hits = [names[int(i)] == FAMILY_NAMES[family] for i in scores.argmax(dim=1)]
        per_family[family] = sum(hits) / len(hits)
        right, total = right + sum(hits), total + len(hits)
    if not total:
        return None
    return {"accuracy": right / total, "per_family": per_family,
            "names": {f: FAMILY_NAMES[f] for f in per_family}}


def print_table(record: dict[str, Any], console: Console | None = None) -> None:
    table = Table(title=f"degradation awareness: {record['model']} ({record['weights']})")
    for column in ("position", "channels", "kNN accuracy", "linear probe"):
        table.add_column(column, justify="left" if column == "position" else "right")
    chance = 1 / max(len(record["images_per_family"]), 1)
    for name, level in record["levels"].items():
        knn, linear = level["knn"], level["linear"]
        table.add_row(name, str(level["channels"]), f"{knn['mean']:.1%} +- {knn['std']:.1%}",
                      f"{linear['mean']:.1%} +- {linear['std']:.1%}")
    (console or Console()).print(table)
    (console or Console()).print(f"chance: {chance:.1%} ({len(record['images_per_family'])} families)")
    if "zero_shot" in record:
        named = record["zero_shot"]
        parts = ", ".join(f"{f} ({named['names'][f]}) {a:.0%}" for f, a in named["per_family"].items())
        (console or Console()).print(f"named by DA-CLIP's degradation embedding: {named['accuracy']:.1%} ({parts})")


register_resolvers()


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="probe")
@exit_on_user_error
def main(cfg: DictConfig) -> None:
    run_probe(cfg, overridden_groups())


if __name__ == "__main__":
    main()
