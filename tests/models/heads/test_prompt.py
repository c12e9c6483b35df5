"""PromptHead on our tiny Restormer: sizes from feature_info, odd sizes, gradients, bf16, the narrowed latent."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from src.models.backbones.base import FeatureInfo
from src.models.backbones.restormer import Restormer
from src.models.heads.prompt import PromptGenerator, PromptHead

TINY = dict(dim=16, num_blocks=(1, 1, 1, 1), num_refinement_blocks=1, heads=(1, 2, 2, 4))
HEAD = dict(num_heads=2, prompt_size=32)


@pytest.fixture(scope="module")
def tiny() -> tuple[Restormer, PromptHead]:
    torch.manual_seed(0)
    net = Restormer(**TINY)
    return net, PromptHead(net.feature_info, **HEAD)


def test_defaults_give_the_official_sizes_on_a_dim48_backbone() -> None:
    info = [FeatureInfo("dec3", 384, 8), FeatureInfo("dec2", 192, 4), FeatureInfo("dec1", 96, 2)]
    with torch.device("meta"):
        head = PromptHead(info, official_unused_modules=True)
    shapes = {name: tuple(block.prompt.components.shape) for name, block in head.blocks.items()}
    assert shapes == {"dec3": (5, 320, 16, 16), "dec2": (5, 128, 32, 32), "dec1": (5, 64, 64, 64)}
    assert {n: b.reduce.out_channels for n, b in head.blocks.items()} == {"dec3": 384, "dec2": 192, "dec1": 96}
    assert head.unused is not None
    assert {n: tuple(u["prompt_reduce"].weight.shape[:2]) for n, u in head.unused.items()} == {
        "dec3": (256, 320),
        "dec2": (128, 128),
        "dec1": (64, 64),
    }
    assert {n: tuple(u["feature_reduce"].weight.shape[:2]) for n, u in head.unused.items()} == {
        "dec3": (192, 448),
        "dec2": (96, 224),
        "dec1": (48, 112),
    }


def test_tiny_sizes_are_rounded_to_split_into_heads(tiny) -> None:
    _, head = tiny
    assert {n: b.prompt.components.shape[1] for n, b in head.blocks.items()} == {"dec3": 104, "dec2": 40, "dec1": 24}
    assert {n: b.prompt.components.shape[-1] for n, b in head.blocks.items()} == {"dec3": 4, "dec2": 8, "dec1": 16}


def test_the_head_changes_the_output(tiny) -> None:
    net, head = tiny
    lq = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        assert not torch.allclose(net(lq, head=head)[0], net(lq)[0])


def test_every_trainable_parameter_gets_a_gradient_and_unused_modules_are_frozen() -> None:
    torch.manual_seed(0)
    net = Restormer(**TINY)
    head = PromptHead(net.feature_info, official_unused_modules=True, **HEAD)
    lq, gt = torch.rand(2, 3, 24, 20), torch.rand(2, 3, 24, 20)
    pred, _ = net(lq, head=head)
    F.l1_loss(pred, gt).backward()
    frozen = {n for n, p in head.named_parameters() if not p.requires_grad}
    assert frozen == {n for n, _ in head.named_parameters() if n.startswith("unused.")} and frozen
    params = [*net.named_parameters(), *(("head." + n, p) for n, p in head.named_parameters() if p.requires_grad)]
    dead = [n for n, p in params if p.grad is None or not p.grad.abs().sum() > 0]
    assert not dead, f"parameters without gradient: {dead}"
    assert all(torch.isfinite(p.grad).all() for _, p in params)


def test_generator_is_the_softmax_weighted_sum_of_components_resized() -> None:
    torch.manual_seed(0)
    gen = PromptGenerator(channels=8, prompt_dim=4, prompt_len=3, prompt_size=6)
    feature = torch.randn(2, 8, 5, 7)
    weights = F.softmax(gen.select(feature.mean(dim=(2, 3))), dim=1)
    mixed = (weights[:, :, None, None, None] * gen.components[None]).sum(dim=1)
    expected = gen.conv(F.interpolate(mixed, size=(5, 7), mode="bilinear", align_corners=False))
    with torch.no_grad():
        assert torch.allclose(gen(feature), expected, atol=1e-6)


def test_narrowed_latent_needs_a_head_returning_that_width() -> None:
    """PromptIR's latent leaves its prompt block at 4*dim: the backbone is built for it and checks the head."""
    torch.manual_seed(0)
    net = Restormer(latent_out_channels=64, **TINY)
    head = PromptHead(net.feature_info, out_channels={"dec3": 64}, **HEAD)
    lq = torch.rand(1, 3, 19, 27)
    with torch.no_grad():
        assert net(lq, head=head)[0].shape == lq.shape
        with pytest.raises(ValueError, match="dec3 hands 128 channels to a decoder built for 64"):
            net(lq)
    assert net.decoders[2].up.conv.in_channels == 64 and net.decoders[2].fuse.in_channels == 32 + 64
    with pytest.raises(ValueError, match="needs >= 3 levels"):
        Restormer(dim=8, num_blocks=(1, 1), heads=(1, 1), latent_out_channels=8)


def test_plain_latent_width_is_the_default() -> None:
    torch.manual_seed(0)
    plain = Restormer(**TINY)
    torch.manual_seed(0)
    explicit = Restormer(latent_out_channels=128, **TINY)
    lq = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        assert torch.equal(plain(lq)[0], explicit(lq)[0])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(out_channels={"dec9": 8}), "unknown positions"),
        (dict(num_heads=5), "do not split into 5 heads"),
        (dict(layernorm_type="RMS"), "layernorm_type"),
    ],
)
def test_bad_configurations_are_refused(tiny, kwargs: dict, message: str) -> None:
    net, _ = tiny
    with pytest.raises(ValueError, match=message):
        PromptHead(net.feature_info, **{**HEAD, **kwargs})


def test_unknown_position_is_an_error(tiny) -> None:
    _, head = tiny
    with pytest.raises(KeyError, match="dec0"):
        head("dec0", torch.zeros(1, 16, 4, 4), torch.zeros(1, 3, 4, 4))
