"""MoCE-IR without DDP's unused-parameter search: the zero-weighted anchor plus clearing the gradients of
experts no rank used leave the optimiser exactly where the official ``find_unused_parameters=True`` run
leaves it (unused experts: no AdamW state, unchanged weights; used ones: the same update)."""

from __future__ import annotations

import copy
import warnings
from pathlib import Path

import pytest
import torch

from src.models.heads.experts import ExpertLayer
from src.run.assemble import build_model
from src.training.sparse import SparselyUsed, anchor, drop_unused_grads, sparse_modules
from tests.conftest import compose


def _moce(tmp_path: Path):
    torch.manual_seed(0)
    # no router noise: the two runs compared route alike without sharing a random stream
    return build_model(compose("train", ["model=moce_ir_tiny", "model.head.router_noise=false"], tmp_path)).train()


def _batches(n: int, size: int = 1) -> list[dict]:
    g = torch.Generator().manual_seed(3)
    return [
        {"lq": torch.rand(size, 3, 32, 32, generator=g), "gt": torch.rand(size, 3, 32, 32, generator=g),
         "family": ["noise"] * size}
        for _ in range(n)
    ]


def _official_step(model, batches) -> torch.optim.Optimizer:
    """What the official code does: plain loss, backward per micro-batch, AdamW step (unused grads stay None)."""
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
    for batch in batches:
        pred, aux = model.net(batch["lq"], head=model.head)
        total, _ = model.loss(pred, batch["gt"])
        for value in aux.values():
            total = total + value
        total.backward()
    opt.step()
    return opt


def _our_step(model, batches) -> tuple[torch.optim.Optimizer, list[bool]]:
    """Ours: the module's training_step (with the anchor), then its on_before_optimizer_step."""
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # self.log without a Trainer
        for i, batch in enumerate(batches):
            model.training_step(batch, i).backward()
    anchored = [p.grad is not None for p in model.parameters()]
    model.on_before_optimizer_step(opt)
    opt.step()
    return opt, anchored


@pytest.mark.parametrize("micro_batches", [1, 2], ids=["one-step", "accumulated"])
def test_unused_experts_get_exactly_the_official_update(tmp_path, micro_batches):
    ours = _moce(tmp_path)
    official = copy.deepcopy(ours)
    batches = _batches(micro_batches)
    official_opt = _official_step(official, batches)
    our_opt, anchored = _our_step(ours, batches)

    assert all(anchored), "the anchor must give every parameter a gradient (what DDP needs)"
    params, reference = list(ours.parameters()), list(official.parameters())
    untouched = [q.grad is None for q in reference]
    assert any(untouched), "the test needs experts that no image used"
    assert [p.grad is None for p in params] == untouched
    for p, q in zip(params, reference, strict=True):
        assert torch.equal(p, q)
        assert (p in our_opt.state) == (q in official_opt.state)
        if q in official_opt.state:
            for key in ("exp_avg", "exp_avg_sq", "step"):
                assert torch.equal(our_opt.state[p][key], official_opt.state[q][key]), key
    layers = [m for m in ours.modules() if isinstance(m, ExpertLayer)]
    assert layers and all(int(m.usage_counts().sum()) == 0 for m in layers), "counts reset after the step"


def test_the_decision_is_the_sum_over_ranks(tmp_path):
    model = _moce(tmp_path)
    modules = sparse_modules(model)
    assert modules and all(isinstance(m, SparselyUsed) for m in modules)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.training_step(_batches(1)[0], 0).backward()
    local = torch.cat([m.usage_counts() for m in modules]).float()
    unused_here = (local == 0).nonzero().flatten().tolist()
    other_rank = torch.zeros_like(local)
    other_rank[unused_here[0]] = 1.0  # another rank routed an image to the first expert unused here
    cleared = drop_unused_grads(modules, reduce=lambda t: t + other_rank)
    sizes = [len(m.usage_groups()) for m in modules]
    flat = [sum(sizes[:i]) + j for i, j in cleared]
    assert flat == unused_here[1:]
    first_module = next(i for i, n in enumerate(sizes) if unused_here[0] < sum(sizes[: i + 1]))
    kept = modules[first_module].usage_groups()[unused_here[0] - sum(sizes[:first_module])]
    assert all(p.grad is not None and not p.grad.any() for p in kept)  # zero, as the reduced grad would not be


def test_anchor_is_zero_and_absent_without_experts(tmp_path):
    model = _moce(tmp_path)
    term = anchor(sparse_modules(model))
    assert term is not None and term.item() == 0.0 and term.requires_grad
    plain = build_model(compose("train", ["model=restormer_tiny"], tmp_path))
    assert anchor(sparse_modules(plain)) is None


def test_evaluation_and_no_grad_forwards_are_not_counted(tmp_path):
    model = _moce(tmp_path)
    layers = [m for m in model.modules() if isinstance(m, ExpertLayer)]
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        model.net(x, head=model.head)  # training mode, but no backward can follow
        model.eval()(x)
    assert all(int(m.usage_counts().sum()) == 0 for m in layers)
    model.train()
    model.net(x, head=model.head)
    assert all(int(m.usage_counts().sum()) == 2 for m in layers)  # top-1: one expert per image and layer
