"""ConStyle v2's stages: the pre-training trains the prompter alone with its five terms and a moving queue; the
restoration stage keeps the pre-trained prompter exactly as it was."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from src.run.assemble import build_model
from tests.conftest import compose

FAMILIES = ["noise", "rain", "haze", "noise"]


def _module(tmp_path, *overrides):
    torch.manual_seed(0)
    return build_model(compose("train", ["model=constyle_v2_nafnet_tiny", "trainer=cpu", "logger=none",
                                         "data=synth3deg", *overrides], tmp_path))


def test_pretraining_trains_the_prompter_with_five_terms_and_a_moving_queue(tmp_path) -> None:
    module = _module(tmp_path, "strategy=constyle_pretrain", "model.strategy.queue_size=8").train()
    strategy = module.strategy
    generator = torch.Generator().manual_seed(1)
    batch = {"lq": torch.rand(4, 3, 32, 32, generator=generator), "gt": torch.rand(4, 3, 32, 32, generator=generator),
             "family": FAMILIES}
    queue = strategy.keys.queue.clone()
    key_before = strategy.keys.encoder_k.mlp1[0].weight.clone()
    with torch.no_grad():  # the InfoNCE term written out, on the state before the step
        (_, q1), _, _ = module.net.prompter.encode(batch["lq"])
    total, terms = module.training_loss(batch)
    assert set(terms) == {f"constyle/{t}" for t in ("infonce", "classify", "kl", "content", "style")}
    assert torch.allclose(total, sum(terms.values()), atol=1e-6)
    assert float(terms["constyle/style"]) <= 0  # pushed away from the queue's prompts
    assert int(strategy.keys.queue_ptr) == 4 and torch.equal(strategy.keys.queue[:, 4:], queue[:, 4:])
    assert not torch.equal(strategy.keys.queue[:, :4], queue[:, :4])
    # the key encoder starts as the prompter and moves towards it by 1 - m per step
    assert torch.allclose(strategy.keys.encoder_k.mlp1[0].weight, key_before)
    (_, k1), _, _ = strategy.keys.encoder_k.encode(batch["gt"])
    logits = torch.cat([(q1 * k1).sum(1, keepdim=True), q1 @ queue], dim=1) / 0.07
    assert torch.allclose(terms["constyle/infonce"], F.cross_entropy(logits, torch.zeros(4, dtype=torch.long)),
                          atol=1e-4)
    total.backward()
    trained = {n for n, p in module.named_parameters() if p.grad is not None}
    assert trained and all(n.startswith(("net.prompter.", "strategy.classifier.")) for n in trained)


def test_the_restoration_stage_keeps_the_prompter_as_pre_trained(tmp_path) -> None:
    module = _module(tmp_path, "strategy=constyle_frozen")
    module.train()
    prompter = module.net.prompter
    assert not prompter.training and not any(p.requires_grad for p in prompter.parameters())
    before = {k: v.clone() for k, v in prompter.state_dict().items()}
    generator = torch.Generator().manual_seed(2)
    batch = {"lq": torch.rand(2, 3, 32, 32, generator=generator), "gt": torch.rand(2, 3, 32, 32, generator=generator),
             "family": FAMILIES[:2]}
    total, _ = module.training_loss(batch)
    total.backward()
    assert all(torch.equal(v, prompter.state_dict()[k]) for k, v in before.items())  # batch norms untouched
    assert module.net.outro.weight.grad is not None
    released = _module(tmp_path, "strategy=constyle_frozen", "model.strategy.release_batch_norm=true")
    released.train()
    prompter = released.net.prompter
    assert prompter.training and not any(p.requires_grad for p in prompter.parameters())
    before = {k: v.clone() for k, v in prompter.state_dict().items()}
    released.training_loss(batch)
    moved = [k for k, v in before.items() if not torch.equal(v, prompter.state_dict()[k])]
    assert moved and all("running_" in k or "num_batches" in k for k in moved)  # the release's drifting statistics


def test_constyle_prompts_another_backbone_through_its_head(tmp_path) -> None:
    """model/head=constyle on a Restormer: the encoder runs once per forward, its prompt changes the features,
    and the pre-training finds the head's encoder."""
    torch.manual_seed(0)
    module = build_model(compose("train", ["model=restormer_tiny", "model.backbone.dim=8", "model/head=constyle",
                                           "strategy=constyle_pretrain", "model.strategy.queue_size=8",
                                           "trainer=cpu", "logger=none", "data=synth3deg"], tmp_path))
    head = module.head
    calls = []
    head.prompter.register_forward_hook(lambda *args: calls.append(1))
    generator = torch.Generator().manual_seed(3)
    batch = {"lq": torch.rand(4, 3, 32, 32, generator=generator), "gt": torch.rand(4, 3, 32, 32, generator=generator),
             "family": FAMILIES}
    module.eval()
    with torch.no_grad():
        module.net(batch["lq"], head=head)
    assert len(calls) == 1 and len(head.projections) == len(module.net.feature_info) > 1
    module.train()
    total, terms = module.training_loss(batch)
    total.backward()
    assert head.prompter.mlp2[0].weight.grad is not None and "constyle/infonce" in terms
