"""Our Restormer + FrequencyHead computes official AdaIR(decoder=True) and loads its checkpoints."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from src.models.backbones.restormer import Restormer
from src.models.official import from_official, load_strict
from src.models.official.adair import build, convert
from src.models.official.wrapper import OfficialWrapper

CONF_DIR = str(Path(__file__).resolve().parents[3] / "conf")


@pytest.fixture(scope="module")
def ref(reference):
    return reference("adair")


@pytest.fixture(scope="module")
def paper(ref) -> dict:
    return next(c for c in ref.default_keys["configs"] if c["config"] == "adair")


def test_paper_config_has_the_official_parameter_count(paper) -> None:
    """``model=adair`` builds the paper network: same keys and size as official ``AdaIR(decoder=True)``."""
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose("train", overrides=["model=adair"]).model
    with torch.device("meta"):
        net = instantiate(cfg.backbone)
        head = instantiate(cfg.head)(feature_info=net.feature_info)
        official = build(paper["kwargs"])
    assert {k: v.shape for k, v in OfficialWrapper(net, head).state_dict().items()} == {
        k: v.shape for k, v in official.state_dict().items()
    }
    assert sum(p.numel() for p in [*net.parameters(), *head.parameters()]) == paper["params"]


def test_tiny_config_runs() -> None:
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose("train", overrides=["model=adair_tiny"]).model
    net = instantiate(cfg.backbone)
    head = instantiate(cfg.head)(feature_info=net.feature_info)
    with torch.no_grad():
        pred, _ = net(torch.rand(1, 3, 13, 18), head=head)
    assert pred.shape == (1, 3, 13, 18) and torch.isfinite(pred).all()


def test_wrong_key_or_shape_is_named(ref) -> None:
    kwargs, weights = ref.meta["tiny_kwargs"], ref.tensors("weights")
    renamed = dict(weights)
    renamed["fre2.channel_cross_l.temp"] = renamed.pop("fre2.channel_cross_l.temperature")
    with pytest.raises(ValueError, match=r"missing keys.*head\.blocks\.dec2\.high_attn\.temperature"):
        from_official("adair", kwargs, renamed)
    with pytest.raises(ValueError, match=r"unexpected keys \(1\): head\.fre2\.channel_cross_l\.temp\b"):
        from_official("adair", kwargs, renamed)
    with pytest.raises(ValueError, match=r"unexpected keys \(1\): head\.fre1\.extra\.weight"):
        from_official("adair", kwargs, {**weights, "fre1.extra.weight": torch.zeros(1)})
    with pytest.raises(ValueError, match=r"unexpected keys \(1\): .*extra_module\.weight"):
        from_official("adair", kwargs, {**weights, "extra_module.weight": torch.zeros(1)})
    without_unused = {k: v for k, v in weights.items() if not k.startswith("fre3.score_gen.")}
    with pytest.raises(ValueError, match=r"missing keys.*head\.blocks\.dec1\.unused\.score_conv\.weight"):
        from_official("adair", kwargs, without_unused)
    reshaped = {**weights, "fre1.para1": torch.zeros(8, 1, 1)}
    with pytest.raises(ValueError, match=r"shape mismatches.*head\.blocks\.dec3\.scale"):
        from_official("adair", kwargs, reshaped)


def test_without_decoder_it_is_plain_restormer(ref) -> None:
    kwargs = {**ref.meta["tiny_kwargs"], "decoder": False}
    model = build(kwargs)
    assert model.head is None and isinstance(model.net, Restormer)
    backbone_only = {k: v for k, v in ref.tensors("weights").items() if not k.startswith("fre")}
    load_strict(model, convert(backbone_only))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"dim": 8, "noise_emb": 1}, "unknown official AdaIR arguments: noise_emb"),
        ({"dim": 8, "inp_channels": 6, "out_channels": 6}, "3-channel images"),
        ({"num_blocks": [1, 1, 1], "heads": [1, 2, 4]}, "four levels"),
    ],
)
def test_bad_official_arguments_are_refused(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build(kwargs)


def test_colliding_keys_are_an_error() -> None:
    with pytest.raises(ValueError, match="both map to 'net.embed.weight'"):
        convert({"patch_embed.proj.weight": torch.zeros(1), "embed.weight": torch.zeros(1)})


def test_every_converted_key_is_under_net_or_head() -> None:
    """So that a loader splitting ``net.``/``head.`` never drops an unknown official key before the strict check."""
    odd = {
        "fre1.x": torch.zeros(1),
        "prompt1.x": torch.zeros(1),
        "noise_level9.x": torch.zeros(1),
        "zz": torch.zeros(1),
    }
    assert all(k.startswith(("net.", "head.")) for k in convert(odd))
