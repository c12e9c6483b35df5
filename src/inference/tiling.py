"""Run an image-to-image network on inputs of any size.

Three wrappers that compose (``infer`` does it for a config): ``padded`` pads to the network's multiple and
crops back; ``self_ensemble`` averages the eight flips/rotations; ``tiled`` splits a large image into
overlapping tiles and blends their outputs with a separable raised-cosine window, so memory is bounded by
the tile, not the image, and no seams show. Every function maps ``B x C x H x W -> B x C' x sH x sW``
(``s`` = 1 but for super-resolution networks, whose output scale is read from the first call).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from src.inference.config import InferenceConfig
from src.models.backbones.base import crop_to, pad_to_multiple

ImageFn = Callable[[Tensor], Tensor]


def padded(fn: ImageFn, multiple: int) -> ImageFn:
    """``fn`` on the input reflect-padded (bottom/right) to ``multiple``, cropped back to the input size."""

    def run(x: Tensor) -> Tensor:
        image, (height, width) = pad_to_multiple(x, multiple)
        out = fn(image)
        scale = output_scale(image, out)
        return crop_to(out, (height * scale, width * scale))

    return run


def output_scale(x: Tensor, out: Tensor) -> int:
    """How many times larger than its input ``fn``'s output is (super-resolution networks: 2, 3, 4; else 1)."""
    scale, rest = divmod(out.shape[-2], x.shape[-2])
    if rest or out.shape[-1] != x.shape[-1] * scale:
        raise ValueError(f"a network's output {tuple(out.shape[-2:])} is no whole multiple of its input "
                         f"{tuple(x.shape[-2:])}")
    return scale


def _forward_transform(x: Tensor, rotations: int, flip: bool) -> Tensor:
    x = x.flip(-1) if flip else x
    return torch.rot90(x, rotations, dims=(-2, -1))


def _inverse_transform(x: Tensor, rotations: int, flip: bool) -> Tensor:
    x = torch.rot90(x, -rotations, dims=(-2, -1))
    return x.flip(-1) if flip else x


def self_ensemble(fn: ImageFn) -> ImageFn:
    """Mean of ``T^-1 fn(T x)`` over the 8 dihedral transforms ``T``.

    The outputs are summed pairwise (a balanced tree), so eight equal outputs sum to exactly 8x and the mean
    of an equivariant ``fn`` is bit-identical to ``fn``.
    """

    def run(x: Tensor) -> Tensor:
        outputs = [
            _inverse_transform(fn(_forward_transform(x, k, flip)), k, flip) for flip in (False, True) for k in range(4)
        ]
        while len(outputs) > 1:
            outputs = [outputs[i] + outputs[i + 1] for i in range(0, len(outputs), 2)]
        return outputs[0] / 8.0

    return run


def tile_starts(size: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of tiles of side ``tile`` covering ``[0, size)`` with at least ``overlap`` shared pixels.

    Tiles advance by ``tile - overlap``; the last one is moved back to end exactly at ``size`` (so it may share
    more than ``overlap`` pixels with its neighbour). A side no longer than ``tile`` is one tile.
    """
    if size <= tile:
        return [0]
    stride = tile - overlap
    count = math.ceil((size - tile) / stride) + 1
    return [min(i * stride, size - tile) for i in range(count)]


def ramp(length: int, overlap: int, rise: bool, fall: bool) -> Tensor:
    """1-D blending weights of one tile: raised-cosine ramps of ``overlap`` pixels at the sides with a neighbour.

    The ramp ``0.5 - 0.5 cos(pi (i + 0.5) / overlap)`` is never zero, and a rising and a falling ramp over the
    same ``overlap`` pixels sum to one. Sides at the image border (``rise``/``fall`` false) keep weight one.
    """
    weights = torch.ones(length, dtype=torch.float64)
    n = min(overlap, length)
    if n == 0:
        return weights
    up = 0.5 - 0.5 * torch.cos(math.pi * (torch.arange(n, dtype=torch.float64) + 0.5) / overlap)
    if rise:
        weights[:n] *= up
    if fall:
        weights[length - n :] *= up.flip(0)
    return weights


def tiled(fn: ImageFn, x: Tensor, tile: int, overlap: int, tile_batch: int = 1) -> Tensor:
    """``fn`` applied tile by tile and blended; an image that fits in one tile goes through ``fn`` whole.

    Each output pixel is the weighted mean of the tiles covering it, divided by the weights' sum, so a
    constant-output ``fn`` gives a constant image even where the last tile overlaps more than ``overlap``.
    """
    if overlap >= tile:
        raise ValueError(f"overlap ({overlap}) must be smaller than tile ({tile})")
    height, width = x.shape[-2:]
    if height <= tile and width <= tile:
        return fn(x)
    th, tw = min(tile, height), min(tile, width)
    rows, cols = tile_starts(height, tile, overlap), tile_starts(width, tile, overlap)
    positions = [(top, left) for top in rows for left in cols]
    out: Tensor | None = None
    weight_sum: Tensor | None = None
    s = 1  # the output's scale (super-resolution), known from the first tile; tiles and ramps scale with it
    batch = x.shape[0]
    for first in range(0, len(positions), tile_batch):
        chunk = positions[first : first + tile_batch]
        crops = torch.cat([x[..., t : t + th, l : l + tw] for t, l in chunk])
        outputs = fn(crops).float()
        results = outputs.split(batch)
        if out is None:
            s = output_scale(crops, outputs)
            out = torch.zeros(batch, outputs.shape[1], height * s, width * s, dtype=torch.float32, device=x.device)
            weight_sum = torch.zeros(1, 1, height * s, width * s, dtype=torch.float32, device=x.device)
        assert weight_sum is not None
        for (top, left), result in zip(chunk, results):
            wy = ramp(th * s, overlap * s, rise=top > 0, fall=top + th < height)
            wx = ramp(tw * s, overlap * s, rise=left > 0, fall=left + tw < width)
            weight = torch.outer(wy, wx).to(device=x.device, dtype=torch.float32)
            out[..., top * s : (top + th) * s, left * s : (left + tw) * s] += result * weight
            weight_sum[..., top * s : (top + th) * s, left * s : (left + tw) * s] += weight
    assert out is not None and weight_sum is not None  # at least one tile always exists
    return (out / weight_sum).to(x.dtype)


def infer(fn: ImageFn, x: Tensor, multiple: int, options: InferenceConfig) -> Tensor:
    """Restore ``x`` as ``options`` say: padded to ``multiple``, optionally self-ensembled, whole or tiled."""
    run = padded(fn, multiple)
    if options.self_ensemble:
        run = self_ensemble(run)
    tile = options.tile_for(*x.shape[-2:])
    if tile is None:
        return run(x)
    return tiled(run, x, tile, options.overlap, options.tile_batch)
