"""Our Restormer + PromptHead computes official PromptIR(decoder=True) and loads its checkpoints."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from src.models.official import from_official, load_strict
from src.models.official.promptir import build, convert
from src.models.official.wrapper import OfficialWrapper

CONF_DIR = str(Path(__file__).resolve().parents[3] / "conf")


@pytest.fixture(scope="module")
def ref(reference):
    return reference("promptir")


@pytest.fixture(scope="module")
def paper(ref) -> dict:
    return next(c for c in ref.default_keys["configs"] if c["config"] == "promptir")


def test_paper_config_has_the_official_parameter_count(paper) -> None:
    """``model=promptir`` builds the paper network: same size as official ``PromptIR(decoder=True)``."""
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose("train", overrides=["model=promptir"]).model
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
        cfg = compose("train", overrides=["model=promptir_tiny"]).model
    net = instantiate(cfg.backbone)
    head = instantiate(cfg.head)(feature_info=net.feature_info)
    assert net.latent_out_channels == 4 * net.channels_per_level[0]
    with torch.no_grad():
        pred, _ = net(torch.rand(1, 3, 13, 18), head=head)
    assert pred.shape == (1, 3, 13, 18) and torch.isfinite(pred).all()


def test_wrong_key_or_shape_is_named(ref) -> None:
    kwargs, weights = ref.meta["tiny_kwargs"], ref.tensors("weights")
    renamed = dict(weights)
    renamed["prompt2.linear_layer.weights"] = renamed.pop("prompt2.linear_layer.weight")
    with pytest.raises(ValueError, match=r"missing keys.*head\.blocks\.dec2\.prompt\.select\.weight"):
        from_official("promptir", kwargs, renamed)
    with pytest.raises(ValueError, match=r"unexpected keys \(1\): .*extra_module\.weight"):
        from_official("promptir", kwargs, {**weights, "extra_module.weight": torch.zeros(1)})
    without_unused = {k: v for k, v in weights.items() if not k.startswith("chnl_reduce1.")}
    with pytest.raises(ValueError, match=r"missing keys.*head\.unused\.dec1\.prompt_reduce\.weight"):
        from_official("promptir", kwargs, without_unused)
    reshaped = {**weights, "reduce_noise_level3.weight": torch.zeros(384, 704, 1, 1)}
    with pytest.raises(ValueError, match=r"shape mismatches.*head\.blocks\.dec3\.reduce\.weight"):
        from_official("promptir", kwargs, reshaped)


def test_unused_modules_can_be_left_out(ref) -> None:
    weights = {k: v for k, v in ref.tensors("weights").items() if not k.startswith(("chnl_", "reduce_noise_channel"))}
    model = build(ref.meta["tiny_kwargs"], official_unused_modules=False)
    load_strict(model, convert(weights))
    assert model.head.unused is None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"dim": 48, "noise_emb": 1}, "unknown official PromptIR arguments: noise_emb"),
        ({"decoder": False}, "decoder=False"),
        ({"dim": 32}, "dim=48"),
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
