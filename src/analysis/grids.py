"""``python -m src.analysis.grids``: which degradation families are alike, how few groups they fall into, and
which group an input belongs to (GRIDS, Cao et al., ECCV 2024).

    python -m src.analysis.grids ckpt_path=logs/quickstart/runs/<time>/checkpoints/last.ckpt
    python -m src.analysis.grids model=restormer_tiny grids.bound=2.0        # a random network, a set bound

1. **Similarity.** The same clean patches under each family (synthetic settings; elsewhere each family's own
   images, and the record says so) go through the network; its features at every head position, averaged over
   space and concatenated, are reduced by a PCA fitted on all of them, and each family's distribution over each
   component is fitted with a generalised Gaussian (moment matching, :mod:`src.metrics.ggd`). The divergence
   of two families is the symmetric KL divergence of their fits (numerically integrated per component, summed
   over components, the components treated as independent).
2. **Grouping.** The fewest groups whose largest within-group divergence stays under ``grids.bound``, searched
   over every partition up to 10 families (greedy beyond). The paper bounds the performance drop of training
   a group together and reads it off the divergences; no network is trained here, so the bound is stated in
   divergence units (``null``: the median divergence between families).
3. **Routing.** Each group's features are fitted the same way; an input goes to the group under whose fit its
   features are most likely. Images held out from every fit (a third) measure how often routing picks the
   group of their family, against chance.

Writes ``grids.json`` (the matrix, the groups, the routing accuracy, the fitted router), ``grids.png`` (the
heat map with the groups) and prints the ``python -m src.train -m data.families=...`` command that trains one
network per group.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import hydra
import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from torch import Tensor

from src.analysis.features import analysed_model, analysis_device, family_samples
from src.inference.routing import Fit, Projection, image_features, route
from src.metrics.ggd import log_density
from src.run.assemble import build
from src.run.config_tree import show_config
from src.run.from_checkpoint import overridden_groups
from src.utils.atomic import write_text_atomic
from src.utils.conf import CONF_DIR
from src.utils.errors import ConfigError, exit_on_user_error
from src.utils.run_dir import register_resolvers

log = logging.getLogger(__name__)
JSON_NAME = "grids.json"
#: partitions are searched exhaustively up to this many families (Bell(10) = 115,975)
EXHAUSTIVE_UP_TO = 10


# ---------------------------------------------------------------------------------------------- samples
def same_scene_samples(datamodule: Any, per_family: int, seed: int) -> tuple[dict[str, list[Tensor]], bool]:
    """``per_family`` degraded images per family, all made from the same clean patches where the setting
    degrades clean images itself (its training sets have a ``degradation``); else each family's own images.
    Returns the images and whether they share their clean patches."""
    sets: Mapping[str, Any] = getattr(datamodule, "train_sets", {}) or {}
    if not sets or not all(hasattr(d, "degradation") for d in sets.values()):
        return family_samples(datamodule, per_family, seed), False
    first = next(iter(sets.values()))
    generator = np.random.default_rng(seed)
    keys = [(0, int(i)) for i in generator.permutation(len(first))[:per_family]]
    while len(keys) < per_family:  # fewer clean images than asked: later epochs give other crops
        keys.append((len(keys) // len(first), keys[len(keys) % len(first)][1]))
    clean = [first[key]["gt"].permute(1, 2, 0).numpy() for key in keys]
    samples: dict[str, list[Tensor]] = {}
    for family, dataset in sets.items():
        rng = np.random.default_rng([seed, len(family)] + [ord(c) for c in family])
        samples[family] = [torch.from_numpy(np.ascontiguousarray(
            dataset.degradation(gt, rng).transpose(2, 0, 1), dtype=np.float32)) for gt in clean]
    return samples, True


# ---------------------------------------------------------------------------------------------- fits
def kl_gennorm(p: tuple[float, float, float], q: tuple[float, float, float], points: int = 4001) -> float:
    """KL(p || q) of two generalised Gaussians ``(beta, loc, scale)``, integrated on a grid wide enough to hold
    both (no closed form exists for different locations and shapes)."""
    width = 12.0 * max(p[2], q[2])
    grid = np.linspace(min(p[1], q[1]) - width, max(p[1], q[1]) + width, points)
    log_p = log_density(grid, *p)
    log_q = log_density(grid, *q)
    density = np.exp(log_p)
    return float(max(np.trapezoid(density * (log_p - log_q), grid), 0.0))


def divergence_matrix(fits: Mapping[str, Fit]) -> np.ndarray:
    """The symmetric KL divergence of every two families' fits, summed over components (diagonal 0)."""
    names = list(fits)
    matrix = np.zeros((len(names), len(names)))
    for i, a in enumerate(names):
        for j in range(i + 1, len(names)):
            b = names[j]
            total = 0.0
            for d in range(len(fits[a].beta)):
                pa = (fits[a].beta[d], fits[a].loc[d], fits[a].scale[d])
                pb = (fits[b].beta[d], fits[b].loc[d], fits[b].scale[d])
                total += 0.5 * (kl_gennorm(pa, pb) + kl_gennorm(pb, pa))
            matrix[i, j] = matrix[j, i] = total
    return matrix


# ---------------------------------------------------------------------------------------------- grouping
def partitions(items: Sequence[int]) -> Iterator[list[list[int]]]:
    """Every partition of ``items`` into non-empty groups (each once)."""
    if not items:
        yield []
        return
    first, rest = items[0], items[1:]
    for smaller in partitions(rest):
        for i in range(len(smaller)):
            yield [*smaller[:i], [first, *smaller[i]], *smaller[i + 1:]]
        yield [[first], *smaller]


def widest(group: Sequence[int], matrix: np.ndarray) -> float:
    return max((matrix[i, j] for i in group for j in group), default=0.0)


def fewest_groups(matrix: np.ndarray, bound: float) -> list[list[int]]:
    """The partition with the fewest groups whose within-group divergences all stay at or under ``bound``
    (ties: the smallest largest within-group divergence); greedy above ``EXHAUSTIVE_UP_TO`` families."""
    n = len(matrix)
    if n <= EXHAUSTIVE_UP_TO:
        best: tuple[int, float, list[list[int]]] | None = None
        for candidate in partitions(list(range(n))):
            worst = max(widest(g, matrix) for g in candidate)
            if worst <= bound and (best is None or (len(candidate), worst) < best[:2]):
                best = (len(candidate), worst, candidate)
        assert best is not None  # every family alone always fits
        return sorted(sorted(g) for g in best[2])
    groups: list[list[int]] = []
    for i in np.argsort(matrix.sum(axis=1)):  # most typical first
        for group in groups:
            if widest([*group, int(i)], matrix) <= bound:
                group.append(int(i))
                break
        else:
            groups.append([int(i)])
    return sorted(sorted(g) for g in groups)


def split(features: Mapping[str, np.ndarray], held: float, seed: int) -> tuple[dict, dict]:
    """Per family, rows for fitting and rows held out (the last ``held`` share of a seeded shuffle)."""
    rng = np.random.default_rng(seed)
    fit, out = {}, {}
    for family, values in features.items():
        order = rng.permutation(len(values))
        cut = len(values) - max(1, int(round(held * len(values))))
        fit[family], out[family] = values[order[:cut]], values[order[cut:]]
    return fit, out


def analyse(features: Mapping[str, np.ndarray], components: int, bound: float | None, held: float,
            seed: int) -> dict[str, Any]:
    """The divergence matrix, the groups and the held-out routing accuracy of per-family features."""
    names = list(features)
    if len(names) < 2:
        raise ConfigError(f"GRIDS compares degradation families: the data has {names}")
    fit_rows, held_rows = split(features, held, seed)
    projection = Projection.of(np.concatenate(list(fit_rows.values())), components)
    fits = {f: Fit.of(projection(v)) for f, v in fit_rows.items()}
    matrix = divergence_matrix(fits)
    off = matrix[~np.eye(len(names), dtype=bool)]
    bound = float(np.median(off)) if bound is None else float(bound)
    groups = fewest_groups(matrix, bound)
    routers = [Fit.of(projection(np.concatenate([fit_rows[names[i]] for i in g]))) for g in groups]
    group_of = {names[i]: k for k, g in enumerate(groups) for i in g}
    per_family = {}
    for family, values in held_rows.items():
        chosen = route(projection(values), routers)
        per_family[family] = float(np.mean(chosen == group_of[family]))
    total = sum(len(v) for v in held_rows.values())
    accuracy = sum(per_family[f] * len(held_rows[f]) for f in names) / total
    return {
        "families": names,
        "components": int(projection.basis.shape[1]),
        "matrix": matrix.tolist(),
        "bound": bound,
        "groups": [[names[i] for i in g] for g in groups],
        "routing": {"held_out_images": int(total), "accuracy": float(accuracy), "per_family": per_family,
                    "chance": 1.0 / len(groups)},
        "router": {"pca_mean": projection.mean.tolist(), "pca_basis": projection.basis.tolist(),
                   "groups": [r.as_dict() for r in routers]},
    }


# ---------------------------------------------------------------------------------------------- command
def write_heat_map(path: Path, record: Mapping[str, Any]) -> None:
    """The divergence matrix with its values, families ordered by group, group borders drawn."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import LogNorm

    names = record["families"]
    order = [names.index(f) for g in record["groups"] for f in g]
    matrix = np.array(record["matrix"])[np.ix_(order, order)]
    labels = [names[i] for i in order]
    fig, ax = plt.subplots(figsize=(1.1 * len(names) + 2.5, 1.1 * len(names) + 1.5))
    # divergences span orders of magnitude (a light-tailed fit against a distant one): a log scale
    positive = matrix[matrix > 0]
    floor = float(positive.min()) if positive.size else 1.0
    image = ax.imshow(np.maximum(matrix, floor), cmap="viridis_r",
                      norm=LogNorm(vmin=floor, vmax=max(float(matrix.max()), floor * 1.0001)))
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    for i in range(len(labels)):
        for j in range(len(labels)):
            ax.text(j, i, f"{matrix[i, j]:.2g}", ha="center", va="center", fontsize=8,
                    color="white" if matrix[i, j] > math.sqrt(floor * max(float(matrix.max()), floor)) else "black")
    start = 0
    for group in record["groups"]:
        ax.add_patch(plt.Rectangle((start - 0.5, start - 0.5), len(group), len(group), fill=False, lw=2.5,
                                   edgecolor="red"))
        start += len(group)
    fig.colorbar(image, ax=ax, label="symmetric KL divergence (log scale)")
    ax.set_title(f"degradation divergence, {len(record['groups'])} group(s) under {record['bound']:.3g}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def group_command(groups: Iterable[Sequence[str]]) -> str:
    values = ",".join("[" + ",".join(g) + "]" for g in groups)
    return f"python -m src.train -m 'data.families={values}'"


def run_grids(cfg: DictConfig, overridden: Iterable[str] = ()) -> dict[str, Any]:
    options = cfg.grids
    out = Path(cfg.paths.output_dir)
    cfg, model, weights = analysed_model(cfg, overridden)
    show_config(cfg, out)
    device = analysis_device(str(options.device))
    model.eval().to(device)
    samples, shared = same_scene_samples(build(cfg.data, "data"), int(options.per_family), int(cfg.seed))
    log.info("GRIDS: %d images per family (%s clean patches) through %s (%s)", int(options.per_family),
             "the same" if shared else "each family's own", type(model.net).__name__, weights)
    features = image_features(model.net, model.head, samples, device)
    record = analyse(features, int(options.components), options.bound, float(options.held_out), int(cfg.seed))
    record = {"model": OmegaConf.to_container(cfg.model, resolve=True).get("backbone", {}).get("_target_"),
              "weights": weights, "data": cfg.data.get("name"), "images_per_family": int(options.per_family),
              "same_clean_patches": shared, **record,
              "train_each_group": group_command(record["groups"])}
    write_text_atomic(out / JSON_NAME, json.dumps(record, indent=1) + "\n")
    if options.pictures:
        write_heat_map(out / "grids.png", record)
    routing = record["routing"]
    print(f"groups under a divergence of {record['bound']:.3g}: {record['groups']}")
    print(f"routing of {routing['held_out_images']} held-out images: {routing['accuracy']:.1%} to their family's "
          f"group (chance {routing['chance']:.1%})")
    print(f"one network per group: {record['train_each_group']}")
    return record


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="grids")
@exit_on_user_error
def main(cfg: DictConfig) -> None:
    run_grids(cfg, overridden_groups())


register_resolvers()

if __name__ == "__main__":
    main()
