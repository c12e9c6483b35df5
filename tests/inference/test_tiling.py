"""Tiled, padded and self-ensembled inference agree with whole-image inference where they must."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

from src.inference.config import InferenceConfig
from src.inference.tiling import infer, padded, ramp, self_ensemble, tile_starts, tiled
from src.models.backbones.restormer import Restormer

#: measured on the seeded tiny Restormer below (96 x 128 image, tile 64, overlap 32): max |tiled - whole| is
#: 0.0102 and the mean 0.0013 (images in [0, 1]). Restormer's channel attention pools over the whole image, so
#: tiles cannot be exact; the bound says how far apart they may be.
TILED_MAX_DIFF = 0.02
TILED_MEAN_DIFF = 0.002


@pytest.fixture(scope="module")
def restormer() -> torch.nn.Module:
    torch.manual_seed(0)
    return Restormer(dim=8, num_blocks=(1, 1, 1, 1), num_refinement_blocks=1, heads=(1, 2, 2, 4)).eval()


def image_only(net: torch.nn.Module):
    def run(x: Tensor) -> Tensor:
        return net(x)[0]

    return run


def rand(*shape: int, seed: int = 1) -> Tensor:
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed))


@torch.no_grad()
def test_tile_at_least_the_image_is_whole_image_inference(restormer):
    fn = padded(image_only(restormer), restormer.multiple)
    x = rand(1, 3, 45, 61)
    whole = fn(x)
    assert whole.shape == x.shape
    assert torch.equal(tiled(fn, x, tile=64, overlap=16), whole)
    assert torch.equal(tiled(fn, x, tile=61, overlap=16), whole)


@torch.no_grad()
def test_padding_to_the_multiple_matches_the_backbone_own_padding(restormer):
    x = rand(1, 3, 45, 61)
    assert torch.equal(padded(image_only(restormer), restormer.multiple)(x), restormer(x)[0])


@torch.no_grad()
def test_tiled_agrees_with_whole_within_the_measured_bound(restormer):
    fn = padded(image_only(restormer), restormer.multiple)
    x = rand(1, 3, 96, 128)
    whole, tiles = fn(x), tiled(fn, x, tile=64, overlap=32)
    diff = (tiles - whole).abs()
    assert diff.max() < TILED_MAX_DIFF and diff.mean() < TILED_MEAN_DIFF, (diff.max(), diff.mean())
    # more overlap, closer to whole
    diff_small_overlap = (tiled(fn, x, tile=64, overlap=8) - whole).abs()
    assert diff.mean() < diff_small_overlap.mean()


@torch.no_grad()
def test_tile_batch_does_not_change_the_result(restormer):
    fn = padded(image_only(restormer), restormer.multiple)
    x = rand(2, 3, 80, 72)
    one = tiled(fn, x, tile=32, overlap=8, tile_batch=1)
    many = tiled(fn, x, tile=32, overlap=8, tile_batch=5)
    assert one.shape == x.shape
    torch.testing.assert_close(many, one, atol=1e-5, rtol=0)


@pytest.mark.parametrize("shape", [(100, 77), (33, 130), (64, 64)])
def test_constant_network_gives_a_constant_image(shape):
    # border tiles, the last tile pulled back over its neighbour and ramps crossing: the weights still sum right
    x = rand(1, 3, *shape)
    out = tiled(lambda t: torch.full_like(t, 0.3), x, tile=32, overlap=12)
    assert (out - 0.3).abs().max() <= 1e-6


def test_identity_network_gives_the_input_back():
    x = rand(2, 3, 70, 90)
    out = tiled(lambda t: t.clone(), x, tile=24, overlap=8)
    assert (out - x).abs().max() <= 1e-6


@pytest.mark.parametrize("scale", [2, 3])
def test_super_resolution_outputs_are_tiled_at_their_scale(scale):
    """A pixel-wise up-sampler (each input pixel becomes an s x s block) tiles exactly; EDSR's locality keeps
    tiles close to the whole image, and the padded wrapper crops at the output's scale."""
    x = rand(1, 3, 45, 61)
    blocks = tiled(lambda t: F.interpolate(t, scale_factor=scale, mode="nearest"), x, tile=16, overlap=6)
    assert blocks.shape == (1, 3, 45 * scale, 61 * scale)
    assert (blocks - F.interpolate(x, scale_factor=scale, mode="nearest")).abs().max() <= 1e-6
    from src.models.backbones.edsr import EDSR

    torch.manual_seed(0)
    net = EDSR(scale=scale, n_resblocks=2, n_feats=8).eval()
    with torch.no_grad():
        whole = net(x)[0]
        pieces = tiled(image_only(net), x, tile=24, overlap=12)
        cropped = padded(image_only(net), 8)(x)
    assert pieces.shape == whole.shape == cropped.shape
    assert (pieces - whole).abs().max() < 0.02  # receptive field 11 pixels, overlap 12: ramps blend the rest
    with pytest.raises(ValueError, match="no whole multiple"):
        tiled(lambda t: t[..., :-1, :], x, tile=16, overlap=6)


def test_tile_starts_cover_the_side_and_end_on_it():
    assert tile_starts(64, 64, 16) == [0]
    assert tile_starts(40, 64, 16) == [0]
    starts = tile_starts(100, 32, 8)
    assert starts[0] == 0 and starts[-1] == 100 - 32
    assert all(b - a <= 32 - 8 for a, b in zip(starts, starts[1:]))


def test_ramps_are_positive_and_sum_to_one_over_an_overlap():
    rise = ramp(32, 8, rise=True, fall=False)
    fall = ramp(32, 8, rise=False, fall=True)
    assert (rise > 0).all() and (fall > 0).all()
    torch.testing.assert_close(fall[-8:] + rise[:8], torch.ones(8, dtype=torch.float64), atol=1e-12, rtol=0)
    assert torch.equal(ramp(32, 8, rise=False, fall=False), torch.ones(32, dtype=torch.float64))


def test_self_ensemble_of_an_equivariant_function_is_the_function():
    x = rand(1, 3, 20, 33)

    def pointwise(t: Tensor) -> Tensor:
        return torch.sin(3 * t) * t + 0.1

    assert torch.equal(self_ensemble(pointwise)(x), pointwise(x))

    kernel = torch.tensor([[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]]) / 16  # dihedral-symmetric

    def blur(t: Tensor) -> Tensor:
        return F.conv2d(t, kernel.expand(3, 1, 3, 3), padding=1, groups=3)

    torch.testing.assert_close(self_ensemble(blur)(x), blur(x), atol=1e-6, rtol=0)


def test_self_ensemble_averages_the_eight_transforms():
    x = rand(1, 1, 4, 6)
    shifted = self_ensemble(lambda t: torch.roll(t, 1, dims=-1))  # not equivariant: 8 distinct results
    expected = sum(
        torch.roll(x, s, dims=d) for d, s in [(-1, 1), (-2, -1), (-1, -1), (-2, 1)] for _ in range(2)
    ) / 8
    torch.testing.assert_close(shifted(x), expected, atol=1e-6, rtol=0)


@torch.no_grad()
def test_self_ensemble_keeps_shape_on_non_square_unpadded_images(restormer):
    fn = self_ensemble(padded(image_only(restormer), restormer.multiple))
    assert fn(rand(1, 3, 21, 38)).shape == (1, 3, 21, 38)


def test_infer_tiles_above_max_pixels_only():
    seen: list[tuple[int, int]] = []

    def spy(t: Tensor) -> Tensor:
        seen.append(tuple(t.shape[-2:]))
        return t

    options = InferenceConfig(max_pixels=64 * 64, auto_tile=48, overlap=8)
    infer(spy, rand(1, 3, 64, 64), 8, options)
    assert seen == [(64, 64)]
    seen.clear()
    out = infer(spy, rand(1, 3, 65, 70), 8, options)
    assert out.shape == (1, 3, 65, 70) and len(seen) == 4 and all(s == (48, 48) for s in seen)
    seen.clear()
    infer(spy, rand(1, 3, 30, 30), 8, InferenceConfig(tile=16, overlap=4, self_ensemble=True))
    assert len(seen) == 9 * 8 and all(s == (16, 16) for s in seen)  # 3 x 3 tiles, 8 transforms each


@pytest.mark.parametrize(
    "kwargs",
    [{"tile": 32, "overlap": 32}, {"overlap": -1}, {"max_pixels": 0}, {"tile_batch": 0}, {"auto_tile": 16}],
)
def test_invalid_inference_configs_name_the_key(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        InferenceConfig(**kwargs)
