"""torchvision's ImageNet VGG feature layers read from local weights only (perceptual losses: TransWeather's VGG16,
Water-Net's VGG19, Perceive-IR's contrastive term). torchvision would download the weights when absent; here they
are read from where torchvision caches them, and a missing file is named with where to fetch it from.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

import torch
from torch import nn

from src.metrics.lpips import weights_file, weights_url
from src.utils.errors import ConfigError

#: indices in ``vgg16().features`` after which the official loss takes features (relu1_2, relu2_2, relu3_3)
FEATURE_LAYERS = (3, 8, 15)


class VGGWeightsError(ConfigError):
    """The VGG16 weights the perceptual term needs are not available locally; the message says what to fetch."""


def torchvision_weights(arch: str) -> tuple[Path, str]:
    """Where torchvision caches ``arch``'s ImageNet weights (``torch.hub.get_dir()/checkpoints``), and their URL."""
    import torchvision

    url = torchvision.models.get_model_weights(arch).DEFAULT.url
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(urlparse(url).path).name, url


def vgg_features(path: str | Path | None = None, arch: str = "vgg16", last: int = FEATURE_LAYERS[-1]) -> nn.Sequential:
    """torchvision's ``<arch>().features[:last + 1]`` with ImageNet weights from ``path`` (default: torchvision's
    cache), frozen and in eval mode; raises :class:`VGGWeightsError` when the file is absent or does not fit."""
    import torchvision

    default, url = torchvision_weights(arch) if arch != "vgg16" else (weights_file("vgg"), weights_url("vgg"))
    path = Path(path) if path is not None else default
    if not path.is_file():
        raise VGGWeightsError(
            f"model.loss.perceptual needs torchvision's ImageNet {arch.upper()} weights, not found at {path}. Nothing "
            f"is downloaded silently: fetch {url} to that path (or give model.loss.vgg_weights=...), "
            "or train without the term: model.loss.perceptual=0"
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any failure means an unusable file
        raise VGGWeightsError(f"model.loss.vgg_weights={path} is not a readable weights file ({err})") from err
    features = getattr(torchvision.models, arch)(weights=None).features[: last + 1]
    wanted = {k.removeprefix("features."): v for k, v in state.items() if k.startswith("features.")}
    own = features.state_dict()
    try:
        features.load_state_dict({k: wanted[k] for k in own}, strict=True)
    except (KeyError, RuntimeError) as err:
        raise VGGWeightsError(f"model.loss.vgg_weights={path} does not fit torchvision's {arch}: {err}") from err
    return features.eval().requires_grad_(False)
