"""RAM++ fine-tuning with RFR: frozen extractor features fused at the decoder's strides 8, 4, 2; the fusion is the
identity when its last convolutions are zero; the extractor is in no checkpoint and no optimiser; the fusion
always trains; a fine-tuned checkpoint evaluates with its fusion; a missing DINOv2 file is named."""

from __future__ import annotations

import pytest
import torch

from src.run.assemble import build_model
from src.strategies.rfr import FrozenExtractor, RamPlusFinetune
from src.train import train
from src.utils.errors import ConfigError
from tests.conftest import compose

STAND_IN = ["strategy=ram_plus_finetune", "model.strategy.extractor=stand_in"]


def _model(tmp_path, *extra):
    torch.manual_seed(0)
    return build_model(compose("train", ["model=restormer_tiny", "model.backbone.dim=8", *STAND_IN, *extra],
                                tmp_path))


def test_fusion_is_the_identity_at_zero_and_acts_otherwise(tmp_path):
    module = _model(tmp_path).eval()
    x = torch.rand(1, 3, 32, 40)
    with torch.no_grad():
        plain = module.net(x, head=module.head)[0]
        fused = module(x)
        assert not torch.allclose(plain, fused)  # the fusion changes the decoder
        for fusion in module.strategy.fusion.values():
            fusion.fuse.weight.zero_()
        assert torch.allclose(module(x), plain, atol=1e-6)
    places = {name for name, place in module.strategy.network_head(module).positions.items()}
    assert places == {"dec3", "dec2", "dec1"}


def test_the_extractor_is_frozen_and_saved_nowhere(tmp_path):
    module = _model(tmp_path)
    assert not any("extractor" in key for key in module.state_dict())
    assert all(not p.requires_grad for p in module.strategy.extractor.model.parameters())
    names = {n for n, _ in module.named_parameters()}
    assert any(n.startswith("strategy.fusion.deep.") for n in names)
    assert not any("extractor" in n for n in names)


def test_a_ranked_share_trains_with_the_fusion(tmp_path):
    from tests.strategies.test_every_strategy import ranking_file

    ranking = ranking_file("restormer_tiny", tmp_path)
    module = _model(tmp_path, f"model.strategy.ranking={ranking}", "model.strategy.ratio=0.3",
                    "model.backbone.dim=16")
    trainable = {n for n, p in module.named_parameters() if p.requires_grad}
    assert {n for n in trainable if n.startswith("strategy.fusion.")} == {
        n for n, _ in module.named_parameters() if n.startswith("strategy.fusion.")}
    assert len(trainable) < len(list(module.parameters()))
    with pytest.raises(ConfigError, match="give model.strategy.ranking"):
        RamPlusFinetune(ratio=0.3, extractor="stand_in")


def test_official_training_features_feed_one_layer_to_every_slot(tmp_path, monkeypatch):
    module = _model(tmp_path, "model.strategy.official_training_features=true")
    seen = []
    fusion = module.strategy.fusion["mid"]
    original = type(fusion).forward
    monkeypatch.setattr(type(fusion), "forward", lambda self, f, a, b: seen.append(a is b) or original(self, f, a, b))
    module.training_loss({"lq": torch.rand(2, 3, 32, 32), "gt": torch.rand(2, 3, 32, 32)})
    assert seen and all(seen)
    seen.clear()
    with torch.no_grad():
        module.eval()(torch.rand(1, 3, 32, 32))
    assert seen and not any(seen)  # evaluation reads the six layers


def test_a_real_extractor_without_its_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match=r"vit_giant_patch14_dinov2.lvd142m.*nothing is downloaded"):
        FrozenExtractor("dinov2_giant", None, ((7, 15), (20, 22), (33, 39)))
    with pytest.raises(ConfigError, match="three pairs of block numbers in 1..6"):
        FrozenExtractor("stand_in", None, ((1, 2), (3, 4), (5, 9)))
    pickled = tmp_path / "dinov2.pth"
    pickled.write_bytes(b"")
    with pytest.raises(ConfigError, match="never unpickled"):
        FrozenExtractor("dinov2_giant", str(pickled), ((7, 15), (20, 22), (33, 39)))


def test_fine_tuned_checkpoint_evaluates_with_its_fusion(tiny_cfg, tmp_path):
    from src.eval import evaluate

    train(tiny_cfg(*STAND_IN, "model/scheduler=none", "test=false", "data.batch_size=4"))
    checkpoint = tmp_path / "checkpoints" / "last.ckpt"
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)["state_dict"]
    assert any(k.startswith("strategy.fusion.") for k in state)
    record = evaluate(compose("eval", [f"ckpt_path={checkpoint}", "trainer=cpu", "logger=none",
                                       "data.test_source.max_side=96"], tmp_path / "eval"))
    assert all(torch.isfinite(torch.tensor(row["psnr"])) for row in record["benchmarks"].values())


def test_a_fused_checkpoint_is_never_loaded_without_its_fusion(tiny_cfg, tmp_path):
    train(tiny_cfg(*STAND_IN, "model/scheduler=none", "test=false", "data.batch_size=4"))
    checkpoint = tmp_path / "checkpoints" / "last.ckpt"
    with pytest.raises(ConfigError, match="includes its strategy's feature fusion"):
        train(compose("train", ["model=restormer_tiny", "model.backbone.dim=8", "trainer=cpu", "logger=none",
                                f"model.pretrained={checkpoint}", "debug=fdr"], tmp_path / "plain"))
