"""GRIDS's test-time routing (Cao et al., CVPR 2024), below the entry points so that both the analysis
(``src.analysis.grids``, ``src.analysis.route``) and ``src.restore`` use it: the features a network shows at its
head positions (spatial means, recorded by a :class:`Tap` head), the PCA and the generalised-Gaussian fits of a
``grids.json``, and the group each image's features are most likely under.

A :class:`Tap` is passed as the network's head: at every position it records the feature the backbone shows
there (averaged over space: one vector per image) and then hands it to the model's own head, if it has one,
so the network computes exactly what it computes without the tap. A head's own degradation embeddings
(``Head.degradation_embeddings``: PromptIR's prompt selection, MoCE-IR's routing) are recorded beside them as
``head:<position>.<name>``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from src.metrics.ggd import fit_ggd, log_density
from src.models.backbones.base import Head
from src.utils.errors import ConfigError


class Tap(Head):
    """Records ``mean over H, W`` of each position's feature, then applies ``inner`` (the model's head)."""

    def __init__(self, inner: Head | None = None) -> None:
        super().__init__()
        self.inner = inner
        self.context_keys = inner.context_keys if inner is not None else ()
        self.recorded: dict[str, list[Tensor]] = defaultdict(list)

    def forward(self, name: str, feature: Tensor, image: Tensor, **context: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        self.recorded[name].append(feature.detach().float().mean(dim=(2, 3)).cpu())
        if self.inner is None:
            return feature, {}
        return self.inner(name, feature, image, **context)


@torch.inference_mode()
def collect(net: torch.nn.Module, head: Head | None, images: Iterable[tuple[str, Tensor]],
            device: torch.device) -> tuple[dict[str, np.ndarray], list[str]]:
    """Per position (and per embedding the network makes of its input: DA-CLIP's), an ``N x C`` array of the
    images' features (in order), and the N family labels."""
    tap = Tap(head)
    labels = []
    embeddings = head.degradation_embeddings() if head is not None else {}

    def keep(name: str):
        def record(module: torch.nn.Module, args: Any, output: Tensor) -> None:
            value = output.detach().float()
            tap.recorded[f"head:{name}"].append((value.mean(dim=(2, 3)) if value.dim() == 4 else value).cpu())
        return record

    handles = [module.register_forward_hook(keep(name)) for name, module in embeddings.items()]
    try:
        for family, image in images:
            x = image.unsqueeze(0).to(device)
            if net.feature_info:  # a network with head positions runs; one with its own embeddings need not
                net(x, head=tap)
            for name, value in net.degradation_embeddings(x).items():
                tap.recorded[f"net:{name}"].append(value.detach().float().cpu())
            labels.append(family)
    finally:
        for handle in handles:
            handle.remove()
    return {name: torch.cat(parts).numpy() for name, parts in tap.recorded.items()}, labels


def image_features(net: torch.nn.Module, head: Any, samples: Mapping[str, Sequence[Tensor]],
                   device: torch.device) -> dict[str, np.ndarray]:
    """Per family, an ``N x D`` array: the spatial means of every head position's feature, concatenated."""
    order = [(family, image) for family, images in samples.items() for image in images]
    features, labels = collect(net, head, order, device)
    if not features:
        raise ConfigError(f"{type(net).__name__} publishes no feature positions (feature_info is empty): GRIDS "
                          "needs the network's features")
    backbone = sorted(name for name in features if not name.startswith("head:"))  # deep features, not a head's
    stacked = np.concatenate([features[name] for name in backbone], axis=1)
    labels_array = np.array(labels)
    return {family: stacked[labels_array == family] for family in samples}



# ---------------------------------------------------------------------------------------------- fits
@dataclass
class Fit:
    """Generalised Gaussians, one per PCA component: shape ``beta``, ``loc``, ``scale`` arrays."""

    beta: np.ndarray
    loc: np.ndarray
    scale: np.ndarray

    @classmethod
    def of(cls, values: np.ndarray) -> Fit:
        params = [fit_ggd(column) for column in values.T]
        beta, loc, scale = (np.array(p) for p in zip(*params, strict=True))
        return cls(beta, loc, scale)

    def log_likelihood(self, values: np.ndarray) -> np.ndarray:
        """Per row of ``values`` (``N x components``), the sum of the components' log densities."""
        return log_density(values, self.beta, self.loc, self.scale).sum(axis=1)

    def as_dict(self) -> dict[str, list[float]]:
        return {"beta": self.beta.tolist(), "loc": self.loc.tolist(), "scale": self.scale.tolist()}


@dataclass
class Projection:
    """A PCA fitted on the features of every family: ``(x - mean) @ basis``."""

    mean: np.ndarray
    basis: np.ndarray

    @classmethod
    def of(cls, values: np.ndarray, components: int) -> Projection:
        from sklearn.decomposition import PCA

        components = max(1, min(components, values.shape[0] - 1, values.shape[1]))
        pca = PCA(n_components=components, random_state=0).fit(values)
        return cls(pca.mean_, pca.components_.T)

    def __call__(self, values: np.ndarray) -> np.ndarray:
        return (values - self.mean) @ self.basis


# ---------------------------------------------------------------------------------------------- routing
def route(values: np.ndarray, routers: Sequence[Fit]) -> np.ndarray:
    """The index of the group under whose fit each row of ``values`` (projected features) is most likely."""
    return np.stack([router.log_likelihood(values) for router in routers], axis=1).argmax(axis=1)


@dataclass
class Router:
    """The fitted router of a ``grids.json``: the PCA and one generalised-Gaussian fit per group."""

    projection: Projection
    fits: list[Fit]
    groups: list[list[str]]

    @classmethod
    def from_record(cls, record: Mapping[str, Any], source: str = "grids.json") -> Router:
        try:
            router = record["router"]
            projection = Projection(np.asarray(router["pca_mean"]), np.asarray(router["pca_basis"]))
            fits = [Fit(np.asarray(g["beta"]), np.asarray(g["loc"]), np.asarray(g["scale"])) for g in router["groups"]]
            groups = [list(g) for g in record["groups"]]
        except (KeyError, TypeError) as err:
            raise ConfigError(f"{source}: not a grids.json of python -m src.analysis.grids (missing {err})") from None
        if len(fits) != len(groups):
            raise ConfigError(f"{source}: {len(groups)} groups but {len(fits)} fitted routers")
        return cls(projection, fits, groups)

    def __call__(self, features: np.ndarray) -> np.ndarray:
        """The group index of each row of ``features`` (``N x D`` spatial means, as :func:`image_features`)."""
        return route(self.projection(features), self.fits)


def router_checkpoint(record: Mapping[str, Any], chosen: str | None, source: str) -> str:
    """The checkpoint of the network whose features the router was fitted on: ``chosen``, else the one the
    ``grids.json`` (``record``, read from ``source``) was computed with."""
    if chosen:
        return str(chosen)
    weights = str(record.get("weights", ""))
    if weights.startswith("ckpt_path="):
        return weights.removeprefix("ckpt_path=")
    raise ConfigError(f"{source} was computed with {weights or 'unknown weights'}, not a checkpoint: give "
                      "route.router_ckpt=<the checkpoint of that network>")


def image_group(router: Router, model: Any, image: Tensor, device: torch.device, max_side: int | None = None) -> int:
    """The group of one image (``3 x H x W``) by ``model``'s features of it, the image first shrunk (area) so its
    longer side is at most ``max_side`` where it is larger (the features are spatial means; a photograph of
    several megapixels would not fit the network whole)."""
    longest = max(image.shape[-2:])
    if max_side is not None and longest > max_side:
        scale = max_side / longest
        size = (max(1, round(image.shape[-2] * scale)), max(1, round(image.shape[-1] * scale)))
        image = torch.nn.functional.interpolate(image[None].float(), size=size, mode="area")[0]
    features = image_features(model.net, model.head, {"image": [image]}, device)["image"]
    return int(router(features)[0])


def read_grids(path: str, checkpoints: Sequence[str]) -> tuple[Router, dict[str, Any]]:
    """The router of ``path`` (a ``grids.json``) and its record, checked against ``checkpoints`` (one per group,
    in the order of its groups)."""
    import json
    from pathlib import Path

    if not path or not Path(path).is_file():
        raise ConfigError(f"route.grids={path}: give the grids.json of python -m src.analysis.grids")
    record = json.loads(Path(path).read_text())
    router = Router.from_record(record, path)
    if len(checkpoints) != len(router.groups):
        raise ConfigError(f"route.checkpoints gives {len(checkpoints)} checkpoint(s) for the {len(router.groups)} "
                          f"groups of {path} ({router.groups}): one per group, in that order")
    return router, record
