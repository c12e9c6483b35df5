"""The SwinIR backbone at tiny size: odd sizes, padding, masks, gradients, bf16, head positions, a training run."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from src.models.backbones.swinir import (
    SwinIR,
    relative_position_index,
    shifted_window_mask,
    window_merge,
    window_partition,
)

TINY = dict(img_size=16, window_size=4, embed_dim=8, depths=(2, 2), num_heads=(2, 2), mlp_ratio=2)


def randomise_norms(model: SwinIR) -> SwinIR:
    """LayerNorms start at weight 1 / bias 0 and linear biases at 0: make them live so mistakes show."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias") or "norm" in name:
                p.normal_(0, 0.5)
    return model


@pytest.fixture(scope="module")
def tiny() -> SwinIR:
    torch.manual_seed(0)
    return randomise_norms(SwinIR(**TINY)).eval()


def test_padding_is_reflect_on_the_right_and_bottom(tiny: SwinIR) -> None:
    lq = torch.rand(1, 3, 19, 23)
    with torch.no_grad():
        pred, _ = tiny(lq)
        padded, _ = tiny(F.pad(lq, (0, 1, 0, 1), mode="reflect"))
    torch.testing.assert_close(pred, padded[..., :19, :23], rtol=0, atol=1e-6)


def test_gradient_checkpointing_gives_the_same_gradients() -> None:
    torch.manual_seed(0)
    plain = randomise_norms(SwinIR(**TINY, drop_path_rate=0.0))
    ckpt = SwinIR(**TINY, drop_path_rate=0.0, grad_checkpoint=True)
    ckpt.load_state_dict(plain.state_dict())
    lq = torch.rand(1, 3, 12, 12)
    for model in (plain, ckpt):
        model(lq)[0].square().mean().backward()
    for (name, a), b in zip(plain.named_parameters(), ckpt.parameters()):
        torch.testing.assert_close(a.grad, b.grad, msg=name)


def test_the_mean_is_a_constant_not_a_buffer(tiny: SwinIR) -> None:
    assert not any("mean" in k for k in tiny.state_dict())
    assert SwinIR(**{**TINY, "in_channels": 1}).mean == (0.0,)


def test_window_partition_round_trips() -> None:
    x = torch.rand(2, 8, 12, 3)
    windows = window_partition(x, 4)
    assert windows.shape == (2 * 6, 16, 3)
    assert torch.equal(windows[1].view(4, 4, 3), x[0, :4, 4:8])  # row-major order of windows
    assert torch.equal(window_merge(windows, 4, 8, 12), x)


def test_relative_position_index_is_the_offset_table_index() -> None:
    window = 3
    index = relative_position_index(window)
    coords = [(i, j) for i in range(window) for j in range(window)]
    for a, (ya, xa) in enumerate(coords):
        for b, (yb, xb) in enumerate(coords):
            assert index[a, b] == (ya - yb + window - 1) * (2 * window - 1) + (xa - xb + window - 1)


def test_shift_mask_separates_regions_that_were_not_neighbours() -> None:
    mask = shifted_window_mask(8, 8, window=4, shift=2)
    assert mask.shape == (4, 16, 16)
    assert torch.equal(mask[0], torch.zeros(16, 16))  # the top-left window holds one region only
    last = mask[3]  # bottom-right: four regions of 2x2 tokens each
    assert (last == 0).sum() == 4 * 4 * 4 and set(last.unique().tolist()) == {-100.0, 0.0}


def test_stored_mask_is_used_only_at_img_size() -> None:
    """The stored buffer (as in the checkpoints) serves the img_size grid; other grids get a fresh mask."""
    torch.manual_seed(0)
    model = randomise_norms(SwinIR(**TINY)).eval()
    block = model.groups[0].blocks[1]
    assert block.shift == 2 and block.attn_mask.shape == (16, 16, 16)
    assert torch.equal(block.mask_for((16, 16), torch.device("cpu")), block.attn_mask)
    assert torch.equal(block.mask_for((16, 16), None), shifted_window_mask(16, 16, 4, 2))
    assert model.groups[0].blocks[0].attn_mask is None

    same, other = torch.rand(1, 3, 16, 16), torch.rand(1, 3, 13, 20)
    with torch.no_grad():
        before = model(same)[0], model(other)[0]
        for group in model.groups:
            for b in group.blocks:
                if b.attn_mask is not None:
                    b.attn_mask.zero_()
        after = model(same)[0], model(other)[0]
    assert not torch.allclose(before[0], after[0])
    assert torch.equal(before[1], after[1])


def test_small_img_size_uses_one_unshifted_window() -> None:
    model = SwinIR(**{**TINY, "img_size": 4, "window_size": 8})
    block = model.groups[0].blocks[1]
    assert (block.window, block.shift, block.attn_mask) == (4, 0, None)
    assert block.attn.relative_position_bias_table.shape == (49, 2)


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="one entry per group"):
        SwinIR(depths=(2, 2), num_heads=(2,))
    with pytest.raises(ValueError, match="do not split into 3 heads"):
        SwinIR(embed_dim=8, depths=(1,), num_heads=(3,))
    with pytest.raises(ValueError, match="resi_connection"):
        SwinIR(**TINY, resi_connection="2conv")


def test_three_conv_connection_builds_and_runs() -> None:
    model = SwinIR(**{**TINY, "embed_dim": 16}, resi_connection="3conv").eval()
    with torch.no_grad():
        pred, _ = model(torch.rand(1, 3, 9, 10))
    assert pred.shape == (1, 3, 9, 10)
