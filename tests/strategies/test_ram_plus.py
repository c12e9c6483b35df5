"""RAM++'s adaptive mask generator (AdaSAM): probabilities over squares, the official masked count, draws from the
probabilities only, a REINFORCE loss that moves the mass to where the error is, its own learning rate, and the
MAC path in its order from a real pre-training checkpoint."""

from __future__ import annotations

import json

import pytest
import torch

from src.strategies.ram_plus import AdaptiveMaskGenerator, RamPlusPretrain
from src.train import train
from src.utils.errors import ConfigError
from tests.conftest import TINY_RUN, compose


def _generator(**kw) -> AdaptiveMaskGenerator:
    torch.manual_seed(0)
    return AdaptiveMaskGenerator(img_size=32, patch=8, embed_dim=16, num_heads=2, **kw)


def test_probabilities_are_per_square_and_sum_to_one():
    generator = _generator().eval()
    p = generator(torch.rand(2, 3, 32, 48))  # another size than img_size: the position embedding is resized
    assert p.shape == (2, 1, 32, 48)
    squares = p[:, :, ::8, ::8]
    assert torch.allclose(squares.sum(dim=(1, 2, 3)), torch.ones(2), atol=1e-6)
    assert torch.equal(p[:, :, :8, :8], squares[:, :, :1, :1].expand(-1, -1, 8, 8))


@pytest.mark.parametrize(("side", "ratio", "expected"), [(128, 0.5, 8192), (128, 0.3, 4928), (32, 0.5, 512)])
def test_masked_count_is_the_official_share_of_squares(side, ratio, expected):
    # official: H*W*(1 - int(N*(1-ratio))/N) with N squares of 8x8
    assert AdaptiveMaskGenerator.masked_count(side, side, 8, ratio) == expected


def test_masks_are_drawn_from_the_probabilities_only():
    generator = _generator()
    p = torch.zeros(1, 1, 32, 32)
    p[..., :, :24] = 1.0 / (32 * 24)  # three quarters of the image can be chosen
    mask = generator.sample(p, 0.5, torch.Generator().manual_seed(0))
    assert mask.sum().item() == 512 and mask[..., :, 24:].sum().item() == 0
    again = generator.sample(p, 0.5, torch.Generator().manual_seed(0))
    assert torch.equal(mask, again)


def test_reinforce_moves_the_mask_to_where_the_error_is():
    """With the error only in the left half, the generator's loss raises the left half's probability."""
    generator = _generator(dropout=0.0)
    optimizer = torch.optim.SGD(generator.parameters(), lr=0.5)
    image = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    error = torch.zeros(4, 3, 32, 32)
    error[..., :16] = 1.0

    def left_share() -> float:
        with torch.no_grad():
            return generator(image)[..., ::8, :16:8].sum(dim=(1, 2, 3)).mean().item()

    before = left_share()
    for step in range(30):
        p = generator(image)
        mask = generator.sample(p, 0.5, torch.Generator().manual_seed(step))
        loss = -(error * mask * torch.log(p + 1e-6)).sum() / (mask.sum() + 1e-5) / 3
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert before == pytest.approx(0.5, abs=0.1) and left_share() > before + 0.2


def test_the_generator_has_its_own_learning_rate_and_the_same_step_draws_the_same_mask(tmp_path):
    from src.run.assemble import build_model

    cfg = compose("train", ["model=restormer_tiny", "model.backbone.dim=8", "strategy=ram_plus_pretrain",
                            "model.strategy.embed_dim=16", "model.strategy.num_heads=2", "data.patch_size=32"],
                  tmp_path)
    module = build_model(cfg)
    strategy = module.strategy
    assert isinstance(strategy, RamPlusPretrain) and strategy.mask_generator.grid == 4
    groups = strategy.parameter_groups(module, [p for p in module.parameters() if p.requires_grad])
    assert groups[1]["lr"] == 1e-6 and len(groups[1]["params"]) == len(list(strategy.mask_generator.parameters()))
    lq = torch.rand(2, 3, 32, 32)
    strategy.mask_generator.eval()
    first, second = strategy.draw(lq, step=7, rank=0), strategy.draw(lq, step=7, rank=0)
    assert torch.equal(first[1], second[1]) and not torch.equal(first[1], strategy.draw(lq, step=8, rank=0)[1])
    masked = strategy.masked(lq, first[1])
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    assert torch.allclose(masked * first[1], mean.expand_as(lq) * first[1])  # the official token: ImageNet mean


def test_pretraining_then_mac_in_adasam_order(tiny_cfg, tmp_path):
    from src.analysis.mac import run_mac

    small = ["strategy=ram_plus_pretrain", "model.strategy.embed_dim=16", "model.strategy.num_heads=2",
             "model/scheduler=none", "test=false", "data.batch_size=5"]
    out = train(tiny_cfg(*small))
    assert torch.isfinite(torch.as_tensor(out["metrics"]["train/ram_plus/generator_loss"]))
    checkpoint = tmp_path / "checkpoints" / "last.ckpt"
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)["state_dict"]
    assert any(k.startswith("strategy.mask_generator.") for k in state)
    args = ["model=restormer_tiny", "model.backbone.dim=8", f"ckpt_path={checkpoint}", "data.patch_size=32",
            "mac.per_family=1", "mac.steps=3", "mac.pictures=false", "mac.order=adasam"]
    record = run_mac(compose("mac", args, tmp_path / "rank"))
    assert record["protocol"]["order"] == "adasam" and record["ranked"]
    assert json.loads((tmp_path / "rank" / "mac_ranking.json").read_text())["protocol"]["order"] == "adasam"
    plain = tmp_path / "plain"
    train(compose("train", [*TINY_RUN, "test=false"], plain))
    with pytest.raises(ConfigError, match="mac.order=adasam .*ram_plus_pretrain"):
        run_mac(compose("mac", [*args[:2], f"ckpt_path={plain / 'checkpoints' / 'last.ckpt'}", *args[3:]],
                        tmp_path / "rank_plain"))
