"""ExpertsHead: official sizes from feature_info, routing and its noise hook, the balance loss, Restormer fit."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch.distributions import Normal

from src.models.backbones.base import FeatureInfo
from src.models.backbones.restormer import Restormer
from src.models.heads.experts import (
    ExpertLayer,
    ExpertsHead,
    FrequencyEmbedding,
    NoisyTopKRouter,
    ReplayRouterNoise,
    no_router_noise,
    patch_fourier_product,
    set_router_noise,
)

#: official MoCE_IR (dim 48) head positions: the latent and 4 + 4 + 2 decoder blocks
PAPER = [FeatureInfo("latent", 384, 8)] + [
    FeatureInfo(f"dec{level}_{block}", 48 * 2**level, 2**level)
    for level, blocks in ((2, 4), (1, 4), (0, 2))
    for block in range(blocks)
]


def _layer(channels: int = 8, top_k: int = 1, frequency_channels: int | None = None, **router) -> ExpertLayer:
    torch.manual_seed(0)
    options = dict(use_complexity=False, complexity_scale="max", noise=False, router_noise_in_eval=True) | router
    return ExpertLayer(channels, [2, 2, 4, 8], [4, 8, 16, 32], top_k, frequency_channels, **options)


def test_defaults_give_the_official_sizes_on_the_paper_feature_info() -> None:
    with torch.device("meta"):
        head = ExpertsHead(PAPER)
    assert head.frequency_source == "latent" and list(head.layers) == [f.name for f in PAPER[1:]]
    assert head.frequency is not None and head.frequency.highpass.weight.shape == (384, 1, 3, 3)
    for info in PAPER[1:]:
        layer = head.layers[info.name]
        c = info.channels
        assert [e.down.out_channels for e in layer.experts] == [c // 8, c // 4, c // 2, c]
        assert [e.body.patch for e in layer.experts] == [4, 8, 16, 32]
        assert layer.router.frequency_gate.weight.shape == (4, 384)
        assert layer.router.noise_std == 0.25 and layer.router.top_k == 1


def test_complexity_is_the_experts_parameter_counts_over_the_largest() -> None:
    layer = _layer()
    counts = torch.tensor([float(sum(p.numel() for p in e.parameters())) for e in layer.experts])
    assert torch.equal(layer.router.complexity, counts / counts.max())
    assert "router.complexity" in layer.state_dict()


@pytest.mark.parametrize(("rank_type", "ranks"), [("constant", [2] * 4), ("lin", [2, 3, 4, 5]), ("exp", [2, 4, 8, 16])])
def test_rank_rules(rank_type: str, ranks: list[int]) -> None:
    head = ExpertsHead([FeatureInfo("dec1", 32, 2)], rank_type=rank_type)
    assert [e.down.out_channels for e in head.layers["dec1"].experts] == ranks
    assert head.frequency is None


def test_patch_fourier_product_is_a_circular_convolution_in_each_tile() -> None:
    torch.manual_seed(0)
    q, k = torch.randn(1, 2, 5, 7), torch.randn(1, 2, 5, 7)
    out = patch_fourier_product(q, k, patch=4)
    assert out.shape == q.shape
    qp, kp = F.pad(q, (0, 1, 0, 3)), F.pad(k, (0, 1, 0, 3))
    expected = torch.zeros_like(qp)
    for ty in range(2):
        for tx in range(2):
            qt, kt = (t[..., 4 * ty : 4 * ty + 4, 4 * tx : 4 * tx + 4] for t in (qp, kp))
            tile = sum(qt[..., a, b, None, None] * kt.roll((a, b), dims=(-2, -1)) for a in range(4) for b in range(4))
            expected[..., 4 * ty : 4 * ty + 4, 4 * tx : 4 * tx + 4] = tile
    assert torch.allclose(out, expected[..., :5, :7], atol=1e-5)


def test_frequency_embedding_starts_from_a_trainable_laplacian() -> None:
    embed = FrequencyEmbedding(3)
    assert embed.highpass.weight.requires_grad
    assert embed.highpass.weight[:, 0].sum(dim=(-2, -1)).eq(0).all() and embed.highpass.weight[0, 0, 1, 1] == 8
    flat = torch.full((1, 3, 6, 6), 0.7)
    assert embed.highpass(flat)[..., 1:-1, 1:-1].abs().max() < 1e-6
    assert embed(flat).shape == (1, 3)


def test_the_noise_source_picks_the_experts_and_eval_noise_can_be_switched_off() -> None:
    router = NoisyTopKRouter(8, 4, 2, torch.ones(4), noise=False).eval()
    feature = torch.randn(3, 8, 5, 5)
    router.router_noise_source = lambda logits: 100.0 * torch.tensor([0.0, 0.0, 1.0, 2.0]).expand_as(logits)
    assert router(feature).indices.tolist() == [[3, 2]] * 3
    router.router_noise_in_eval = False
    clean = router(feature)
    router.router_noise_source = no_router_noise
    assert torch.equal(router(feature).indices, clean.indices) and router(feature).balance is None


def test_replay_noise_hands_out_tensors_in_order_and_says_when_it_runs_out() -> None:
    replay = ReplayRouterNoise([torch.ones(1, 4), 2 * torch.ones(1, 4)], scale=0.5)
    logits = torch.zeros(1, 4)
    assert replay(logits).tolist() == [[0.5] * 4] and replay(logits).tolist() == [[1.0] * 4]
    assert replay.remaining == 0
    with pytest.raises(RuntimeError, match="ran out"):
        replay(logits)
    with pytest.raises(ValueError, match="does not fit"):
        ReplayRouterNoise([torch.ones(2, 4)])(logits)
    with pytest.raises(ValueError, match="holds no router"):
        set_router_noise(torch.nn.Linear(1, 1), no_router_noise)


def test_balance_loss_is_the_official_importance_and_load_terms() -> None:
    torch.manual_seed(0)
    router = NoisyTopKRouter(8, 4, 1, torch.tensor([0.1, 0.2, 0.5, 1.0]), use_complexity=True).train()
    feature, noise = torch.randn(5, 8, 4, 4), torch.randn(5, 4) * 0.25
    router.router_noise_source = lambda logits: noise
    routing = router(feature)
    logits = router.gate(feature.mean(dim=(-2, -1)))
    importance = logits.softmax(-1).sum(0) * router.complexity
    noisy = logits + noise
    threshold = (F.one_hot(noisy.topk(1).indices[:, -1], 4) * noisy).sum(-1, keepdim=True)
    load = (1 - Normal(0.0, 1.0).cdf((threshold - logits) / 0.25)).mean(0)
    expected = 0.5 * (importance.std() / importance.mean()) ** 2 + 0.5 * (load.std() / load.mean()) ** 2
    assert torch.allclose(routing.balance, expected, rtol=1e-5)
    assert torch.equal(routing.indices[:, 0], noisy.argmax(-1))
    assert torch.allclose(routing.gates[:, 0], noisy.softmax(-1).amax(-1))


def test_head_reports_the_weighted_mean_balance_loss_in_training_only() -> None:
    info = [FeatureInfo("a", 8, 1), FeatureInfo("b", 16, 2)]
    torch.manual_seed(0)
    head = ExpertsHead(info, balance_weight=0.5, router_noise=False).train()
    feature = torch.randn(2, 8, 6, 6)
    out, aux = head("a", feature, torch.rand(2, 3, 6, 6))
    assert out.shape == feature.shape
    balance = head.layers["a"].router(feature).balance
    assert torch.allclose(aux["moe_balance"], balance * 0.5 / 2)
    assert head.eval()("a", feature, torch.rand(2, 3, 6, 6))[1] == {}


def test_each_image_of_a_batch_is_routed_on_its_own() -> None:
    layer = _layer(top_k=2).eval()
    feature, shared = torch.randn(3, 8, 9, 7), torch.randn(3, 8, 9, 7)
    together, _ = layer(feature, shared, None)
    alone = torch.cat([layer(feature[i : i + 1], shared[i : i + 1], None)[0] for i in range(3)])
    assert torch.allclose(together, alone, atol=1e-6)
    picks = layer.router(feature).indices
    assert len({tuple(p) for p in picks.tolist()}) > 1, "the test should route images differently"


def test_the_frequency_source_is_left_alone_and_needed_elsewhere() -> None:
    info = [FeatureInfo("latent", 16, 4), FeatureInfo("dec0_0", 8, 1)]
    head = ExpertsHead(info, router_noise=False).eval()
    latent, feature, image = torch.randn(1, 16, 2, 2), torch.randn(1, 8, 8, 8), torch.rand(1, 3, 8, 8)
    out, aux = head("latent", latent, image)
    assert out is latent and aux == {}
    with pytest.raises(ValueError, match="needs the latent"):
        head("dec0_0", feature, image)
    with pytest.raises(KeyError, match="no position 'dec9'"):
        head("dec9", feature, image, latent=latent)
    out, _ = head("dec0_0", feature, image, shared=feature, latent=latent)
    assert torch.equal(out, head("dec0_0", feature, image, latent=latent)[0])


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"rank_type": "wide"}, "rank_type"),
        ({"complexity_scale": "mean"}, "complexity_scale"),
        ({"num_experts": 1}, "num_experts >= 2"),
        ({"top_k": 5}, "top_k"),
        ({"rank_type": "spread", "num_experts": 5}, "expert ranks"),
    ],
)
def test_bad_options_are_refused(options: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ExpertsHead([FeatureInfo("dec1", 8, 2)], **options)


def test_on_restormer_the_experts_route_from_the_feature_alone() -> None:
    """``model=restormer model/head=experts``: no latent position, so no frequency embedding; trains and evals."""
    torch.manual_seed(0)
    net = Restormer(dim=8, num_blocks=(1, 1, 1, 1), num_refinement_blocks=1, heads=(1, 2, 2, 4))
    head = ExpertsHead(net.feature_info)
    assert head.frequency is None and list(head.layers) == ["dec3", "dec2", "dec1"]
    lq = torch.rand(2, 3, 19, 26)
    pred, aux = net(lq, head=head.train())
    assert pred.shape == lq.shape and set(aux) == {"moe_balance"}
    (pred.mean() + aux["moe_balance"]).backward()
    assert all(p.grad is not None for p in net.parameters())
    with torch.no_grad():
        pred, aux = net(lq, head=head.eval())
    assert torch.isfinite(pred).all() and aux == {}
