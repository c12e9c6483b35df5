"""FrequencyHead on our tiny Restormer: the FFT band split, odd sizes, gradients, bf16, frozen parts."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from src.models.backbones.restormer import Restormer
from src.models.heads.frequency import FrequencyBlock, FrequencyHead

TINY = dict(dim=16, num_blocks=(1, 1, 1, 1), num_refinement_blocks=1, heads=(1, 2, 2, 4))


def _randomise_scales(head: FrequencyHead) -> None:
    """``para1`` starts at zero (the head is the identity at init); give it values so the head acts."""
    with torch.no_grad():
        for block in head.blocks.values():
            block.scale.normal_()


@pytest.fixture(scope="module")
def tiny() -> tuple[Restormer, FrequencyHead]:
    torch.manual_seed(0)
    net = Restormer(**TINY)
    head = FrequencyHead(net.feature_info, num_heads=2)
    _randomise_scales(head)
    return net, head


def _official_split(x: torch.Tensor, rate: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The official band split written as the official code does it: slicing the shifted spectrum."""
    mask = torch.zeros(x.shape)
    h, w = x.shape[-2:]
    for i in range(x.shape[0]):
        h_, w_ = int(h // n * rate[i, 0]), int(w // n * rate[i, 1])
        mask[i, :, h // 2 - h_ : h // 2 + h_, w // 2 - w_ : w // 2 + w_] = 1
    spectrum = torch.roll(torch.fft.fft2(x, norm="forward"), shifts=(h // 2, w // 2), dims=(2, 3))

    def back(s: torch.Tensor) -> torch.Tensor:
        return torch.fft.ifft2(torch.roll(s, shifts=(-(h // 2), -(w // 2)), dims=(2, 3)), norm="forward").abs()

    return back(spectrum * (1 - mask)), back(spectrum * mask)


@pytest.mark.parametrize(("size", "divisor"), [((12, 10), 4), ((9, 13), 2), ((16, 16), 128)])
def test_band_split_equals_the_official_construction(size: tuple[int, int], divisor: int) -> None:
    torch.manual_seed(0)
    block = FrequencyBlock(16, num_heads=2, mask_divisor=divisor)
    x = torch.randn(3, 16, *size)
    with torch.no_grad():
        rate = block.cutoff(F.adaptive_avg_pool2d(x, 1)).sigmoid()[:, :, 0, 0]
        high, low = block.split_bands(x)
    ref_high, ref_low = _official_split(x, rate, divisor)
    assert torch.allclose(high, ref_high, atol=1e-6) and torch.allclose(low, ref_low, atol=1e-6)
    if divisor == 128:  # the official default: no low band under 256 px, the high band is |x|
        assert torch.equal(low, torch.zeros_like(low))
        assert torch.allclose(high, x.abs(), atol=1e-5)
    else:
        assert low.abs().sum() > 0


def test_identity_at_init_and_active_once_scaled(tiny) -> None:
    net, _ = tiny
    head = FrequencyHead(net.feature_info, num_heads=2)
    lq = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        plain, _ = net(lq)
        assert torch.equal(net(lq, head=head)[0], plain)
        _randomise_scales(head)
        assert not torch.allclose(net(lq, head=head)[0], plain)


def test_every_trainable_parameter_gets_a_gradient_and_the_rest_is_frozen() -> None:
    """With the official divisor the low band is zero, so its attention gets zero (not missing) gradients."""
    torch.manual_seed(0)
    net = Restormer(**TINY)
    head = FrequencyHead(net.feature_info, num_heads=2, official_unused_modules=True)
    _randomise_scales(head)
    lq, gt = torch.rand(2, 3, 16, 24), torch.rand(2, 3, 16, 24)
    pred, _ = net(lq, head=head)
    F.l1_loss(pred, gt).backward()
    frozen = {n.split(".")[2] for n, p in head.named_parameters() if not p.requires_grad}
    assert frozen == {"cutoff", "unused"}
    params = [*net.named_parameters(), *(("head." + n, p) for n, p in head.named_parameters() if p.requires_grad)]
    missing = [n for n, p in params if p.grad is None]
    assert not missing, f"parameters without gradient: {missing}"
    assert all(torch.isfinite(p.grad).all() for _, p in params)


def test_with_a_low_band_every_trainable_parameter_of_a_block_gets_a_nonzero_gradient() -> None:
    torch.manual_seed(0)
    block = FrequencyBlock(16, num_heads=2, mask_divisor=2)
    with torch.no_grad():
        block.scale.normal_()
    feature, image = torch.randn(2, 16, 8, 8), torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        assert (
            block.split_bands(block.image_proj(F.interpolate(image, size=(8, 8), mode="bilinear")))[1].abs().sum() > 0
        )
    block(feature, image).square().mean().backward()
    dead = [
        n
        for n, p in block.named_parameters()
        if p.requires_grad and not (p.grad is not None and p.grad.abs().sum() > 0)
    ]
    assert not dead, f"parameters without gradient: {dead}"


def test_sizes_follow_feature_info(tiny) -> None:
    net, head = tiny
    assert list(head.blocks) == [f.name for f in net.feature_info]
    for info in net.feature_info:
        block = head.blocks[info.name]
        assert block.scale.shape == (info.channels, 1, 1)
        assert block.refine.channel_gate.down.out_channels == info.channels // 16
        assert block.cutoff[0].out_channels == info.channels // 8


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [(dict(mask_divisor=1), "mask_divisor"), (dict(num_heads=3), "heads")],
)
def test_bad_configurations_are_refused(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        FrequencyBlock(**{"channels": 32, **kwargs})


def test_narrow_features_keep_a_one_channel_bottleneck() -> None:
    """Under 16 (8) channels the official widths channels // 16 (// 8) would be 0; ours stay 1."""
    block = FrequencyBlock(channels=8)
    assert block.refine.channel_gate.down.out_channels == 1 and block.cutoff[0].out_channels == 1


def test_unknown_position_is_an_error(tiny) -> None:
    _, head = tiny
    with pytest.raises(KeyError, match="dec0"):
        head("dec0", torch.zeros(1, 16, 4, 4), torch.zeros(1, 3, 4, 4))
