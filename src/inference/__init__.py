"""Inference on images of any size: whole-image (padded to the net's multiple), tiled with blending, x8 ensemble."""

from src.inference.config import InferenceConfig
from src.inference.tiling import infer, padded, self_ensemble, tiled

__all__ = ["InferenceConfig", "infer", "padded", "self_ensemble", "tiled"]
