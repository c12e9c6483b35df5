"""Every strategy of ``conf/strategy`` on every tiny model of ``conf/model``: it builds, one training step reaches
every trainable parameter with finite values, or it is refused with a message that says why (a super-resolution
network cannot reconstruct its input at its own size; a backbone without head positions has no features for
DCPT). Parametrised by the config files, so a strategy or a model added is checked here without an edit; the
fast suite runs one strategy per model in turn, the slow suite every pair."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from src.analysis.mac import parameter_layers
from src.run.assemble import build_model
from src.utils.errors import ConfigError
from tests.conftest import compose
from tests.helpers import configs

TINY = [name for name in configs("model") if name.endswith("_tiny")]
#: ``<name>_official`` variants change an option of ``<name>``, not what it builds: one of each is enough here
STRATEGIES = [name for name in configs("strategy") if name != "none" and not name.endswith("_official")]
FAMILIES = ["noise", "rain", "haze", "blur", "lowlight"]


def ranking_file(name: str, folder: Path) -> Path:
    """A ranking of the model's own layers (in parameter order), as src.analysis.mac writes it."""
    torch.manual_seed(0)
    module = build_model(compose("train", [f"model={name}", "trainer=cpu", "logger=none"], Path("/nonexistent")))
    layers = [n for n, _ in parameter_layers({"net": module.net, "head": module.head})]
    path = folder / f"{name}_ranking.json"
    path.write_text(json.dumps({"ranked": [{"layer": n} for n in layers]}))
    return path


#: the fast suite pairs each tiny model with one strategy in turn (every model and every strategy runs); the slow
#: suite runs every pair
ROUND_ROBIN = {(name, STRATEGIES[i % len(STRATEGIES)]) for i, name in enumerate(TINY)}
PAIRS = [pytest.param(name, strategy, marks=() if (name, strategy) in ROUND_ROBIN else pytest.mark.slow)
         for name in TINY for strategy in STRATEGIES]


@pytest.mark.parametrize(("name", "strategy"), PAIRS)
def test_a_strategy_trains_a_tiny_model_or_says_why_not(name: str, strategy: str, tmp_path: Path) -> None:
    overrides = [f"model={name}", f"strategy={strategy}", "trainer=cpu", "logger=none"]
    if strategy == "ram_finetune":
        overrides += [f"model.strategy.ranking={ranking_file(name, tmp_path)}", "model.strategy.ratio=0.3"]
    if strategy == "ram_plus_finetune":  # the stand-in extractor (DINOv2's weights are not here)
        overrides += ["model.strategy.extractor=stand_in"]
    if strategy == "led_finetune" and name.startswith("led_repnr"):  # LED's parallel convolutions
        overrides += ["model.backbone.aux=true"]
    cfg = compose("train", overrides, tmp_path)
    torch.manual_seed(0)
    try:
        module = build_model(cfg)
    except ConfigError as err:
        net = build_model(compose("train", [f"model={name}", "trainer=cpu", "logger=none"], tmp_path)).net
        if strategy.startswith("led_"):  # LED's strategies train RepNR networks only
            assert "RepNR" in str(err) and not name.startswith("led_repnr"), f"{strategy} refused {name}: {err}"
            return
        if strategy.startswith("constyle_"):  # ConStyle's stages train a network its style encoder prompts
            assert "style encoder" in str(err) and not name.startswith("constyle"), f"{strategy} refused {name}: {err}"
            return
        if strategy == "irsde":  # the IR-SDE's matching loss trains an SDE's noise network only
            assert "IR-SDE" in str(err) and not name.startswith("daclip"), f"{strategy} refused {name}: {err}"
            return
        if strategy == "daclip_controller":  # DA-CLIP's controller is trained for DA-CLIP's restorer only
            assert "DA-CLIP" in str(err) and not name.startswith("daclip"), f"{strategy} refused {name}: {err}"
            return
        if strategy.startswith("perceive_ir"):  # its stages train Perceive-IR only
            assert "Perceive-IR" in str(err) and not name.startswith("perceive"), f"{strategy} refused {name}: {err}"
            return
        if strategy == "ram_plus_finetune":  # fuses at a Restormer-like decoder's three places only
            assert "strides 8, 4 and 2" in str(err) or "width halves" in str(err), f"{strategy} refused {name}: {err}"
            return
        assert strategy in ("dcpt_pretrain", "ram_pretrain", "ram_plus_pretrain"), f"{strategy} refused {name}: {err}"
        assert net.scale != 1 or not net.feature_info, f"{strategy} refused {name}, which it fits: {err}"
        assert "scale" in str(err) or "feature_info" in str(err)
        return
    module.train()
    net = module.net
    side = max(net.multiple, 16) * 2
    generator = torch.Generator().manual_seed(1)
    lq = torch.rand(5, net.in_channels, side, side, generator=generator)
    gt = torch.rand(5, net.out_channels, side * net.scale, side * net.scale, generator=generator)
    total, terms = module.training_loss({**module.example_fields(5), "lq": lq, "gt": gt, "family": FAMILIES})
    assert torch.isfinite(total) and all(torch.isfinite(torch.as_tensor(v)).all() for v in terms.values())
    total.backward()
    trainable = {n: p for n, p in module.named_parameters() if p.requires_grad}
    assert trainable
    if strategy == "ram_finetune":
        assert len(trainable) < len(list(module.parameters())), "fine-tuning froze nothing"
    unreached = [n for n, p in trainable.items() if p.grad is None]
    # a MoCE-IR expert that no image chose gets no gradient in one step (its contract test forces each in turn)
    unreached = [n for n in unreached if ".experts." not in n]
    # RepNR's camera branches that no sample used (every one but the generalised under a strategy other than LED's)
    unreached = [n for n in unreached if ".align_" not in n or strategy == "led_pretrain"]
    assert not unreached, f"trainable parameters without a gradient: {unreached[:5]}"
