"""MoCE-IR's encoder-decoder at tiny size, alone and with the experts head: positions, sizes, training, bf16."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from src.models.backbones.moce_ir import MoCEIR
from src.models.heads.experts import ExpertsHead, set_router_noise
from tests.helpers import RecordingHead

#: the reference vectors' size (official tiny_kwargs)
TINY = dict(dim=8, num_blocks=(1, 1, 1, 1), num_dec_blocks=(1, 1, 1), num_refinement_blocks=1, heads=(1, 2, 2, 4))


@pytest.fixture(scope="module")
def tiny() -> MoCEIR:
    torch.manual_seed(0)
    return MoCEIR(**TINY)


def _experts(net: MoCEIR, **options) -> ExpertsHead:
    torch.manual_seed(1)
    return ExpertsHead(net.feature_info, **options)


class ContextHead(RecordingHead):
    """Also asks for the context the backbone offers."""

    context_keys = ("shared", "latent")

    def __init__(self) -> None:
        super().__init__()
        self.context: list[tuple[str, tuple[int, ...] | None, tuple[int, ...] | None]] = []

    def forward(self, name, feature, image, shared=None, latent=None):
        shapes = (None if t is None else tuple(t.shape) for t in (shared, latent))
        self.context.append((name, *shapes))
        return super().forward(name, feature, image)


def test_feature_info_lists_the_latent_then_each_decoder_block_in_call_order() -> None:
    net = MoCEIR(dim=4, num_blocks=(1, 1, 1, 1), num_dec_blocks=(2, 1, 3), num_refinement_blocks=1, heads=(1, 1, 1, 1))
    assert [(f.name, f.channels, f.reduction) for f in net.feature_info] == [
        ("latent", 32, 8),
        ("dec2_0", 16, 4),
        ("dec2_1", 16, 4),
        ("dec2_2", 16, 4),
        ("dec1_0", 8, 2),
        ("dec0_0", 4, 1),
        ("dec0_1", 4, 1),
    ]
    head = RecordingHead()
    with torch.no_grad():
        net(torch.rand(1, 3, 37, 53), head=head)
    padded = (1, 3, 40, 56)
    assert head.seen == [
        (f.name, (1, f.channels, 40 // f.reduction, 56 // f.reduction), padded) for f in net.feature_info
    ]


def test_context_goes_only_to_heads_that_ask_for_it(tiny: MoCEIR) -> None:
    head = ContextHead()
    with torch.no_grad():
        _, aux = tiny(torch.rand(1, 3, 16, 16), head=head)
    assert aux["balance"].item() == len(tiny.feature_info)
    assert head.context[0] == ("latent", None, None)
    assert head.context[1:] == [
        (f.name, (1, f.channels, 16 // f.reduction, 16 // f.reduction), (1, 64, 2, 2)) for f in tiny.feature_info[1:]
    ]


def test_global_residual_returns_input_when_output_conv_is_zero() -> None:
    model = MoCEIR(**TINY)
    torch.nn.init.zeros_(model.output.weight)
    lq = torch.rand(1, 3, 19, 23)
    with torch.no_grad():
        assert torch.equal(model(lq)[0], lq)


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="num_dec_blocks"):
        MoCEIR(dim=8, num_blocks=(1, 1, 1), num_dec_blocks=(1, 1, 1), heads=(1, 1, 1))
    with pytest.raises(ValueError, match="layernorm_type"):
        MoCEIR(**TINY, layernorm_type="Batch")


@pytest.mark.parametrize("shape", [(2, 3, 37, 45), (1, 3, 9, 17)])
def test_with_experts_odd_sizes_and_batches_in_eval_and_train(tiny: MoCEIR, shape: tuple[int, ...]) -> None:
    head = _experts(tiny)
    lq = torch.rand(shape)
    head.eval()
    with torch.no_grad():
        pred, aux = tiny(lq, head=head)
    assert pred.shape == shape and torch.isfinite(pred).all()
    assert aux == {}
    head.train()
    pred, aux = tiny(lq, head=head)
    assert pred.shape == shape and torch.isfinite(pred).all()
    assert set(aux) == {"moe_balance"} and aux["moe_balance"].ndim == 0 and torch.isfinite(aux["moe_balance"])
    assert aux["moe_balance"].requires_grad


def _dead_after_forcing_every_expert(dim: int) -> list[str]:
    """Train steps that force each expert in turn (through the noise hook); names left without a gradient."""
    torch.manual_seed(0)
    net = MoCEIR(**{**TINY, "dim": dim})
    head = _experts(net)
    params = [*net.named_parameters(), *(("head." + n, p) for n, p in head.named_parameters())]
    assert all(p.requires_grad for _, p in params)
    lq, gt = torch.rand(2, 3, 20, 24), torch.rand(2, 3, 20, 24)
    for expert in range(4):
        set_router_noise(head, lambda logits, e=expert: 100.0 * F.one_hot(torch.full_like(logits[:, 0], e).long(), 4))
        pred, aux = net(lq, head=head)
        (F.l1_loss(pred, gt) + aux["moe_balance"]).backward()
    assert all(torch.isfinite(p.grad).all() for _, p in params if p.grad is not None)
    return [n for n, p in params if p.grad is None or not p.grad.abs().sum() > 0]


def test_every_trainable_parameter_gets_a_gradient_once_every_expert_was_chosen() -> None:
    """Top-1 routing leaves experts out of a step; forcing each in turn reaches all (the Laplacian is trainable)."""
    assert _dead_after_forcing_every_expert(dim=16) == []


def test_a_rank_one_expert_is_dead_as_officially() -> None:
    """At dim 8 the smallest expert at level 0 has rank 1: its channel norm returns its bias (0 at init), so
    everything before that norm, and the projection after it, get no gradient, in the official network too."""
    dead = _dead_after_forcing_every_expert(dim=8)
    prefix = "head.layers.dec0_0.experts.0."
    body = ["q.weight", "q_dw.weight", "q_dw.bias", "kv.weight", "kv_dw.weight", "kv_dw.bias", "norm.weight"]
    assert dead == [prefix + "down.weight", *(prefix + "body." + n for n in body), prefix + "body.proj.weight"]


def test_one_step_reaches_the_backbone_routers_and_the_chosen_experts_only() -> None:
    torch.manual_seed(0)
    net = MoCEIR(**TINY)
    head = _experts(net, router_noise=False)
    pred, aux = net(torch.rand(1, 3, 16, 16), head=head)
    (pred.abs().mean() + aux["moe_balance"]).backward()
    assert all(p.grad is not None for p in net.parameters())
    for layer in head.layers.values():
        used = [e for e, expert in enumerate(layer.experts) if expert.down.weight.grad is not None]
        assert len(used) == 1
        assert layer.router.gate.weight.grad is not None and layer.proj.weight.grad is not None
    assert all(p.grad is not None for p in head.frequency.parameters())
