"""Perceive-IR's released objective (the sum of its passes' L1) and its captions, read from the batch."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from src.run.assemble import build_model
from tests.conftest import compose


def test_the_objective_sums_every_pass_and_captions_reach_the_network(tmp_path) -> None:
    torch.manual_seed(0)
    module = build_model(compose("train", ["model=perceive_ir_tiny", "trainer=cpu", "logger=none"], tmp_path))
    with torch.no_grad():  # non-trivial decoders (the released init leaves the prompts' effect small)
        for name, param in module.net.named_parameters():
            if name.endswith(("to_out.0.weight", "fuse_rcp.conv_beta.weight")):
                param.normal_(0, 0.2)
    generator = torch.Generator().manual_seed(1)
    lq, gt = torch.rand(2, 3, 24, 32, generator=generator), torch.rand(2, 3, 24, 32, generator=generator)
    batch = {"lq": lq, "gt": gt, "family": ["rain", "haze"], "caption": ["a rainy street", "a hazy hill"]}
    total, terms = module.training_loss(batch)
    net = module.net
    with torch.no_grad():
        text = net.clip.text(batch["caption"], lq.device)
        passes = net.passes(lq, text, net.clip.image(lq))
    assert set(terms) == {"perceive_ir/l1_pass0", "perceive_ir/l1_pass1"}
    assert torch.allclose(total, sum(F.l1_loss(p, gt) for p in passes), atol=1e-6)
    module.eval()
    with torch.no_grad():
        captioned = module.strategy.predict(module, batch)
        other = module.strategy.predict(module, {**batch, "caption": ["a snowy field", "a dark room"]})
    assert captioned.shape == lq.shape and not torch.allclose(captioned, other)
    assert torch.allclose(captioned, torch.stack(passes).mean(0), atol=1e-5)  # each image: the mean of its passes
