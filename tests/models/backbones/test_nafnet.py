"""The NAFNet backbone at tiny size: odd sizes, gradients, bf16, head positions, NAFNetLocal pooling."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

from src.models.backbones.nafnet import NAFNet, local_average, local_kernels

TINY = dict(width=8, enc_blk_nums=(1, 1, 1, 1), middle_blk_num=1, dec_blk_nums=(1, 1, 1, 1))


def randomise_scales(model: NAFNet) -> NAFNet:
    """beta/gamma start at 0 (every block is the identity and its convolutions get no gradient): make them live."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith(("beta", "gamma")):
                p.normal_(0, 0.5)
    return model


@pytest.fixture(scope="module")
def tiny() -> NAFNet:
    torch.manual_seed(0)
    return randomise_scales(NAFNet(**TINY)).eval()


def test_identity_at_official_init() -> None:
    """beta = gamma = 0: every block passes its input through (what makes the plain reference vector weak)."""
    model = NAFNet(**TINY)
    block = model.encoders[0].blocks[0]
    x = torch.rand(1, 8, 8, 8)
    assert torch.equal(block(x), x)


def test_padding_is_zero_on_the_right_and_bottom(tiny: NAFNet) -> None:
    """An odd-size input gives the top-left crop of the output for the explicitly zero-padded input."""
    lq = torch.rand(1, 3, 19, 23)
    with torch.no_grad():
        pred, _ = tiny(lq)
        padded, _ = tiny(F.pad(lq, (0, 9, 0, 13)))
    torch.testing.assert_close(pred, padded[..., :19, :23], rtol=0, atol=1e-6)


@pytest.mark.parametrize("levels", [1, 2, 3])
def test_any_number_of_levels(levels: int) -> None:
    model = NAFNet(width=4, enc_blk_nums=(1,) * levels, middle_blk_num=1, dec_blk_nums=(2,) * levels)
    assert model.multiple == 2**levels
    assert [f.name for f in model.feature_info] == [f"dec{i}" for i in range(levels, 0, -1)]
    with torch.no_grad():
        pred, _ = model(torch.rand(1, 3, 13, 11))
    assert pred.shape == (1, 3, 13, 11)


def test_unequal_encoder_and_decoder_levels_are_refused() -> None:
    with pytest.raises(ValueError, match="one entry per level"):
        NAFNet(enc_blk_nums=(1, 1), dec_blk_nums=(1,))


def test_global_residual_returns_input_when_ending_is_zero() -> None:
    model = NAFNet(**TINY)
    torch.nn.init.zeros_(model.ending.weight)
    torch.nn.init.zeros_(model.ending.bias)
    lq = torch.rand(1, 3, 19, 23)
    with torch.no_grad():
        pred, _ = model(lq)
    assert torch.equal(pred, lq)


# ---------------------------------------------------------------- NAFNetLocal


def brute_force_local_average(x: Tensor, kernel: tuple[int, int]) -> Tensor:
    """Direct stride-1 window mean (windows clipped to the map), replicate-padded centred: the definition."""
    h, w = x.shape[-2:]
    k1, k2 = min(h, kernel[0]), min(w, kernel[1])
    out = F.avg_pool2d(x, (k1, k2), stride=1)
    oh, ow = out.shape[-2:]
    return F.pad(out, ((w - ow) // 2, (w - ow + 1) // 2, (h - oh) // 2, (h - oh + 1) // 2), mode="replicate")


@pytest.mark.parametrize(("size", "kernel"), [((12, 17), (5, 4)), ((9, 10), (9, 3)), ((8, 6), (3, 40))])
def test_local_average_is_the_window_mean(size: tuple[int, int], kernel: tuple[int, int]) -> None:
    x = torch.rand(2, 3, *size, dtype=torch.float64)
    torch.testing.assert_close(local_average(x, kernel), brute_force_local_average(x, kernel))


def test_local_average_with_a_covering_window_is_global() -> None:
    x = torch.rand(1, 4, 10, 12)
    torch.testing.assert_close(local_average(x, (10, 12)), x.mean((2, 3), keepdim=True))


def test_local_kernels_follow_the_training_crop() -> None:
    """GoPro: 256 px crops -> 384 px window at full resolution, halved at each level."""
    assert local_kernels((256, 256), 4) == [(384, 384), (192, 192), (96, 96), (48, 48), (24, 24)]
    assert local_kernels((1, 3, 200, 120), 2)[0] == (300, 180)


def test_local_pooling_equals_global_up_to_one_and_a_half_crops() -> None:
    torch.manual_seed(0)
    plain = randomise_scales(NAFNet(**TINY)).eval()
    # 64 px crops: windows 96, 48, 24, 12, 6 px at levels 0-4 (the integer rounding of deep levels matters)
    local = NAFNet(**TINY, local_pool_train_size=(64, 64)).eval()
    local.load_state_dict(plain.state_dict())
    small, large = torch.rand(1, 3, 96, 80), torch.rand(1, 3, 112, 96)
    with torch.no_grad():
        torch.testing.assert_close(local(small)[0], plain(small)[0])
        assert (local(large)[0] - plain(large)[0]).abs().max() > 1e-4
