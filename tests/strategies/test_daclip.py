"""DA-CLIP's controller training: its two contrastive losses, what trains, where it starts, and its checkpoint
read back by the restorer as a DA-CLIP checkpoint."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from src.run.assemble import build_model
from src.utils.errors import ConfigError
from tests.conftest import compose

pytest.importorskip("open_clip")

OVERRIDES = ["model=daclip_irsde_tiny", "strategy=daclip_controller", "trainer=cpu", "logger=none"]


def symmetric_ce(a, b, scale):
    logits = scale * a @ b.T
    labels = torch.arange(len(a))
    return (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2


def test_the_objective_is_two_clip_losses_and_only_the_controller_learns(tmp_path) -> None:
    from src.models.layers.clip_vision import clip_preprocess

    torch.manual_seed(0)
    module = build_model(compose("train", OVERRIDES, tmp_path))
    strategy, model = module.strategy, module.strategy.daclip
    generator = torch.Generator().manual_seed(1)
    lq = torch.rand(4, 3, 40, 48, generator=generator)
    batch = {"lq": lq, "gt": lq, "family": ["rain", "haze", "rain", "noise"],
             "caption": ["a street", "a hill", "a car", "a cat"]}
    total, terms = module.training_loss(batch)
    with torch.no_grad():
        content, degradation = (F.normalize(e, dim=-1) for e in model(clip_preprocess(lq, 32)))
        names = model.encode_text(["rainy", "hazy", "rainy", "noisy"], lq.device)
        captions = model.encode_text(batch["caption"], lq.device)
    scale = model.logit_scale.exp()
    assert torch.allclose(terms["daclip/degradation"], symmetric_ce(degradation, names, scale), atol=1e-5)
    assert torch.allclose(terms["daclip/content"], symmetric_ce(content, captions, scale), atol=1e-5)
    assert torch.allclose(total, terms["daclip/degradation"] + terms["daclip/content"], atol=1e-5)
    assert 0.0 <= float(terms["daclip/degradation_accuracy"]) <= 1.0
    total.backward()
    trained = {n for n, p in module.named_parameters() if p.grad is not None}
    assert trained and all(n.startswith(("strategy.daclip.visual_control.", "strategy.daclip.logit_scale"))
                           for n in trained)
    assert "strategy.daclip.visual_control.transformer.zero_modules.0.weight" in trained  # the content path
    assert not any(p.requires_grad for p in module.net.parameters())
    with pytest.raises(ConfigError, match="data.captions"):
        strategy.training_loss(module, {k: v for k, v in batch.items() if k != "caption"})


def test_from_clip_the_controller_starts_as_clips_image_tower(tmp_path) -> None:
    """From an open_clip state dict: the controller is the image tower copied and its projections zero, so the
    content embedding is CLIP's own image embedding and the degradation embedding is it too."""
    from open_clip.transformer import TextTransformer
    from safetensors.torch import save_file

    from src.models.layers.clip_vision import VisionTransformer
    from src.strategies.daclip import STAND_IN_TEXT, STAND_IN_VISION, daclip_model

    torch.manual_seed(3)
    visual = VisionTransformer(**STAND_IN_VISION).eval()
    state = {f"visual.{k}": v for k, v in visual.state_dict().items()}
    state.update(TextTransformer(vocab_size=49408, **STAND_IN_TEXT).state_dict())
    state["logit_scale"] = torch.tensor(4.0)
    path = tmp_path / "clip.safetensors"
    save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    model = daclip_model(str(path), STAND_IN_VISION, STAND_IN_TEXT, seed=0).eval()
    image = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        content, degradation = model(image)
        own = visual(image)
    assert torch.allclose(content, own, atol=1e-5) and torch.allclose(degradation, own, atol=1e-5)
    assert float(model.logit_scale.detach()) == 4.0
    with pytest.raises(FileNotFoundError, match="laion2b"):
        daclip_model(str(tmp_path / "absent.bin"), None, None, seed=0)


def test_a_few_steps_separate_two_degradations_and_the_restorer_reads_the_run(tmp_path) -> None:
    """Adam on the degradation loss alone: two families of visibly different images become nearest to their own
    names; the checkpoint's ``strategy.daclip.*`` then conditions the restorer and names degradations."""
    from src.models.backbones.daclip_irsde import DaclipIRSDE
    from src.strategies.daclip import STAND_IN_TEXT, STAND_IN_VISION

    torch.manual_seed(0)
    module = build_model(compose("train", [*OVERRIDES, "model.strategy.caption_weight=0"], tmp_path))
    generator = torch.Generator().manual_seed(2)
    dark = torch.rand(4, 3, 32, 32, generator=generator) * 0.2
    bright = 0.8 + torch.rand(4, 3, 32, 32, generator=generator) * 0.2
    batch = {"lq": torch.cat([dark, bright]), "family": ["lowlight"] * 4 + ["haze"] * 4}
    optimiser = torch.optim.Adam([p for p in module.parameters() if p.requires_grad], lr=3e-3)
    first = None
    for _ in range(25):
        optimiser.zero_grad()
        total, terms = module.training_loss(batch)
        first = float(total.detach()) if first is None else first
        total.backward()
        optimiser.step()
    assert float(total.detach()) < first and float(terms["daclip/degradation_accuracy"]) == 1.0
    path = tmp_path / "last.ckpt"
    torch.save({"state_dict": module.state_dict()}, path)
    net = DaclipIRSDE(width=32, multipliers=(1, 1, 1, 1), encoder="daclip", clip_weights=str(path),
                      clip_vision=STAND_IN_VISION, clip_text=STAND_IN_TEXT, clip_preprocess="float")
    from src.models.layers.clip_vision import clip_preprocess

    with torch.no_grad():
        expected = module.strategy.daclip.eval()(clip_preprocess(batch["lq"], 32))
    content, degradation = net.contexts(batch["lq"])
    assert torch.allclose(content, expected[0], atol=1e-5) and torch.allclose(degradation, expected[1], atol=1e-5)
    names, scores = net.classify(batch["lq"])  # among the two trained names (the other eight were never seen)
    trained = [names.index("low-light"), names.index("hazy")]
    assert scores[:, trained].argmax(1).tolist() == [0] * 4 + [1] * 4


def test_the_releases_training_transform_is_open_clips_random_resized_crop() -> None:
    """``preprocess=release``: open_clip's training transform on the release's 8-bit values: a flat image keeps its
    truncated value, a textured one is cropped at random (repeatable under torch's seed)."""
    from src.models.layers.clip_vision import CLIP_MEAN, CLIP_STD
    from src.strategies.daclip import DaclipControllerTraining

    strategy = DaclipControllerTraining(preprocess="release")
    flat = strategy.clip_input(torch.full((1, 3, 40, 48), 0.5))
    assert flat.shape == (1, 3, 32, 32)
    assert torch.allclose(flat[0, 0], torch.tensor((127 / 255 - CLIP_MEAN[0]) / CLIP_STD[0]), atol=1e-6)
    image = torch.rand(2, 3, 40, 48, generator=torch.Generator().manual_seed(0))
    torch.manual_seed(1)
    first = strategy.clip_input(image)
    torch.manual_seed(1)
    assert torch.equal(first, strategy.clip_input(image)) and not torch.equal(first, strategy.clip_input(image))
    with pytest.raises(ConfigError, match="float or release"):
        DaclipControllerTraining(preprocess="pil")
