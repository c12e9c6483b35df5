"""The AirNet backbone at tiny size: eval/train outputs, MoCo (momentum, queue, InfoNCE), key views, gradients.

The key encoder and the queue are not trained by gradient (the key encoder follows the query encoder by
momentum; the queue holds past keys), so the gradient check covers exactly the parameters with
``requires_grad`` and checks that the key encoder has none.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

from src.models.backbones.airnet import AirNet, ContrastiveEncoder, key_view
from src.models.layers.deform import GuidedDeformConv

TINY = dict(channels=8, encoder_widths=(8, 16), embed_dim=16, queue_size=8, groups=2, blocks=1)


def randomise_offsets(model: AirNet) -> AirNet:
    """The offset/mask convolutions start at zero (regular sampling): make them live so mistakes show."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "offset_mask" in name:
                p.normal_(0, 0.05)
    return model


@pytest.fixture(scope="module")
def tiny() -> AirNet:
    torch.manual_seed(0)
    return randomise_offsets(AirNet(**TINY)).eval()


def test_train_step_returns_the_weighted_contrastive_loss_on_cpu() -> None:
    torch.manual_seed(0)
    model = AirNet(**TINY, contrastive_weight=0.25).train()
    lq = torch.rand(3, 3, 20, 24)
    torch.manual_seed(1)
    pred, aux = model(lq)
    torch.manual_seed(1)
    model.encoder_only = True
    same_lq, warm = model(lq)
    assert pred.shape == lq.shape and set(aux) == {"contrastive"}
    assert same_lq is lq and set(warm) == {"contrastive"}
    assert aux["contrastive"].item() > 0 and torch.isfinite(warm["contrastive"])


def test_every_trainable_parameter_gets_a_gradient_and_the_key_encoder_none() -> None:
    torch.manual_seed(0)
    model = randomise_offsets(AirNet(**TINY)).train()
    lq, gt = torch.rand(2, 3, 18, 14), torch.rand(2, 3, 18, 14)
    pred, aux = model(lq)
    (F.l1_loss(pred, gt) + aux["contrastive"]).backward()
    trainable = {n: p for n, p in model.named_parameters() if p.requires_grad}
    dead = [n for n, p in trainable.items() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not dead, f"parameters without gradient: {dead}"
    assert all(torch.isfinite(p.grad).all() for p in trainable.values())
    frozen = {n for n, p in model.named_parameters() if not p.requires_grad}
    assert frozen == {n for n, _ in model.named_parameters() if n.startswith("encoder.key.")}
    assert all(model.get_parameter(n).grad is None for n in frozen)
    assert {n for n, _ in model.named_buffers() if not n.startswith("encoder.")} == set()


def test_encoder_only_trains_the_query_encoder_alone() -> None:
    torch.manual_seed(0)
    model = AirNet(**TINY).train()
    model.encoder_only = True
    _, aux = model(torch.rand(2, 3, 16, 16))
    aux["contrastive"].backward()
    with_grad = {n for n, p in model.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}
    # the stem's output only guides the restorer, so warm-up reaches it through the strided blocks
    assert with_grad == {n for n, p in model.named_parameters() if n.startswith("encoder.query.")}


def test_momentum_update_and_queue() -> None:
    torch.manual_seed(0)
    enc = ContrastiveEncoder(3, (4, 8, 8), dim=6, queue_size=5, momentum=0.75).train()
    with torch.no_grad():
        for p in enc.query.parameters():
            p.add_(1.0)
    q_params = [p.clone() for p in enc.query.parameters()]
    k_params = [p.clone() for p in enc.key.parameters()]
    old_queue = enc.queue.clone()
    x = torch.rand(2, 3, 8, 8)
    enc.contrastive(x, x)
    for q, k_old, k_new in zip(q_params, k_params, enc.key.parameters()):
        torch.testing.assert_close(k_new, 0.75 * k_old + 0.25 * q)
    assert int(enc.queue_ptr) == 2
    assert torch.equal(enc.queue[:, 2:], old_queue[:, 2:])
    torch.testing.assert_close(enc.queue[:, :2].norm(dim=0), torch.ones(2))
    # a batch that does not divide the queue wraps around (the official code asserts it divides)
    enc.contrastive(torch.rand(4, 3, 8, 8), torch.rand(4, 3, 8, 8))
    assert int(enc.queue_ptr) == 1
    keys = torch.rand(7, 3, 8, 8)  # more keys than the queue holds: the last 5 stay, written from 1 + 2
    enc.contrastive(keys, keys)
    assert int(enc.queue_ptr) == 3
    expected = F.normalize(enc.key(keys)[1], dim=1)  # the key encoder's BN statistics moved: compare directions
    cosine = (enc.queue[:, [3, 4, 0, 1, 2]] * expected[2:].t()).sum(0)
    assert (cosine > 0.99).all()


def test_info_nce_is_cross_entropy_against_the_key_and_the_queue() -> None:
    torch.manual_seed(0)
    enc = ContrastiveEncoder(3, (4, 8, 8), dim=6, queue_size=4, temperature=0.5).train()
    x, key = torch.rand(3, 3, 8, 8), torch.rand(3, 3, 8, 8)
    queue = enc.queue.clone()
    snapshot = {k: v.clone() for k, v in enc.state_dict().items()}
    _, loss = enc.contrastive(x, key)
    enc.load_state_dict(snapshot)  # same weights and BN statistics as before the step, then one manual step
    q = F.normalize(enc.query(x)[1], dim=1)
    enc._momentum_update()
    with torch.no_grad():
        k = F.normalize(enc.key(key)[1], dim=1)
    logits = torch.cat([(q * k).sum(1, keepdim=True), q @ queue], dim=1) / 0.5
    torch.testing.assert_close(loss, F.cross_entropy(logits, torch.zeros(3, dtype=torch.long)))


def test_explicit_key_is_used() -> None:
    torch.manual_seed(0)
    model = AirNet(**TINY).train()
    lq = torch.rand(2, 3, 16, 16)
    snapshot = {k: v.clone() for k, v in model.state_dict().items()}
    _, a = model(lq, key=lq)
    model.load_state_dict(snapshot)
    _, b = model(lq, key=lq)
    model.load_state_dict(snapshot)
    _, c = model(lq, key=lq.flip(-2) * 0.5)
    assert torch.equal(a["contrastive"], b["contrastive"])
    assert not torch.equal(a["contrastive"], c["contrastive"])


def test_key_view_is_a_transformed_crop() -> None:
    torch.manual_seed(0)
    lq = torch.rand(4, 3, 10, 14)
    views = key_view(lq, 0.5)
    assert views.shape == (4, 3, 5, 5)
    whole = key_view(torch.rand(6, 2, 6, 6), 1.0)  # a full square view is one of the 8 dihedral transforms
    assert whole.shape == (6, 2, 6, 6)
    for i in range(4):
        found = any(
            torch.equal(views[i], t)
            for top in range(6) for left in range(10)
            for t in _dihedral(lq[i, :, top : top + 5, left : left + 5])
        )
        assert found, f"view {i} is no flip/rotation of a crop"
    with pytest.raises(ValueError, match="key_crop"):
        key_view(lq, 0.0)


def _dihedral(x: Tensor) -> list[Tensor]:
    rotations = [torch.rot90(x, k, dims=(-2, -1)) for k in range(4)]
    return rotations + [r.flip(-1) for r in rotations]


def test_deform_conv_with_zero_offsets_is_half_a_plain_convolution() -> None:
    conv = GuidedDeformConv(4, 5, guide_channels=3)
    x, guide = torch.rand(1, 4, 9, 7), torch.rand(1, 3, 9, 7)
    torch.testing.assert_close(conv(x, guide), 0.5 * F.conv2d(x, conv.weight, padding=1))


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="encoder_widths"):
        AirNet(encoder_widths=(8,))
    with pytest.raises(ValueError, match="queue_size"):
        AirNet(**{**TINY, "queue_size": 0})
