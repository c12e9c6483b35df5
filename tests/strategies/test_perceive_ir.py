"""Perceive-IR's released objective (the sum of its passes' L1) and its captions, read from the batch."""

from __future__ import annotations

import pytest
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


#: a tiny CLIP in open_clip's layout (the sizes its towers are built with)
TINY_VISION = {"image_size": 32, "patch_size": 16, "width": 32, "layers": 1, "heads": 2, "output_dim": 512}
TINY_TEXT = {"context_length": 16, "width": 32, "heads": 2, "layers": 1, "output_dim": 512}


def tiny_openai_clip(folder):
    """OpenAI's CLIP as Perceive-IR reads it, from a seeded tiny state dict written in ``folder``."""
    pytest.importorskip("open_clip")
    from open_clip.transformer import TextTransformer
    from safetensors.torch import save_file

    from src.models.backbones.perceive_ir import OpenAIClip
    from src.models.layers.clip_vision import VisionTransformer

    torch.manual_seed(0)
    state = {f"visual.{k}": v for k, v in VisionTransformer(**TINY_VISION).state_dict().items()}
    state.update(TextTransformer(vocab_size=49408, **TINY_TEXT).state_dict())
    path = folder / "clip.safetensors"
    save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    return OpenAIClip(str(path), vision=TINY_VISION, text=TINY_TEXT)


def test_openai_clip_reads_a_local_state_dict_in_open_clips_layout(tmp_path) -> None:
    """CLIP's image side is the suite's ViT, the text side open_clip's; both filled strictly from one file."""
    from src.models.backbones.perceive_ir import clip_features

    clip = tiny_openai_clip(tmp_path)
    images = torch.rand(2, 3, 40, 56)
    assert clip.image(images).shape == (2, 512) and clip.text(["a", "b"], torch.device("cpu")).shape == (2, 512)
    assert not torch.allclose(*clip.text(["a rainy street", "a hazy hill"], torch.device("cpu")))
    restored = images.clone().requires_grad_(True)  # the quality term grades restored images through CLIP
    clip.image(restored).sum().backward()
    assert restored.grad is not None and restored.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="clip_weights"):
        clip_features("openai")


@pytest.mark.slow  # VGG16 on both passes
def test_the_quality_aware_terms_add_with_their_weights(tmp_path) -> None:
    torch.manual_seed(0)
    module = build_model(compose("train", ["model=perceive_ir_tiny", "trainer=cpu", "logger=none",
                                           "strategy=perceive_ir", "model.strategy.clip_weight=0.05",
                                           "model.strategy.dpl_weight=0.1"], tmp_path))
    generator = torch.Generator().manual_seed(1)
    lq, gt = torch.rand(2, 3, 32, 32, generator=generator), torch.rand(2, 3, 32, 32, generator=generator)
    total, terms = module.training_loss({"lq": lq, "gt": gt, "family": ["rain", "haze"]})
    assert {"perceive_ir/dpl", "perceive_ir/clip_quality"} <= set(terms)
    expected = terms["perceive_ir/l1_pass0"] + terms["perceive_ir/l1_pass1"] + 0.1 * terms["perceive_ir/dpl"] \
        + 0.05 * terms["perceive_ir/clip_quality"]
    assert torch.allclose(total, expected, atol=1e-5) and terms["perceive_ir/dpl"] > 0
    strategy = module.strategy
    same = strategy.contrastive_perceptual(gt, gt, [lq])
    assert float(same) == 0.0  # the restored image at the clean one: nothing to pull
    total.backward()


def test_learned_prompts_run_through_clips_text_encoder_from_token_embeddings(tmp_path) -> None:
    """With its context at the embedding of the placeholder word, a learned prompt is CLIP's text feature of the
    written prompt (the stand-in's text side, and open_clip's text transformer run from its token embeddings)."""
    from src.models.backbones.perceive_ir import StandInClip
    from src.strategies.perceive_ir import QualityPrompts

    cpu = torch.device("cpu")
    for clip in (StandInClip(), tiny_openai_clip(tmp_path)):
        prompts = QualityPrompts(clip.text_width, length=3)
        written = ["X X X Excellent.", "X X X Mediocre.", "X X X Terrible."]
        with torch.no_grad():
            prompts.context.copy_(clip.prompt_embeddings(["X X X"], cpu)[0][0, 1:4])
        assert torch.allclose(prompts.features(clip, cpu), clip.text(written, cpu), atol=1e-5)
        with torch.no_grad():
            prompts.context.normal_()
        features = prompts.features(clip, cpu)
        assert not torch.allclose(features, clip.text(written, cpu), atol=1e-3)
        features.sum().backward()
        assert prompts.context.grad is not None and prompts.context.grad.abs().sum() > 0


def test_stage_one_learns_the_prompts_and_stage_two_reads_them(tmp_path) -> None:
    from src.strategies.perceive_ir import QUALITY_LEVELS, quality_logits
    from src.utils.errors import ConfigError

    torch.manual_seed(0)
    module = build_model(compose("train", ["model=perceive_ir_tiny", "strategy=perceive_ir_prompts", "trainer=cpu",
                                           "logger=none"], tmp_path))
    strategy, net = module.strategy, module.net
    generator = torch.Generator().manual_seed(1)
    gt = torch.rand(3, 3, 32, 32, generator=generator)
    lq = (gt + 0.5 * torch.randn(3, 3, 32, 32, generator=generator)).clamp(0, 1)
    batch = {"lq": lq, "gt": gt, "family": ["noise"] * 3}
    total, terms = module.training_loss(batch)
    with torch.no_grad():
        outputs = net.passes(lq, net.clip.text([""] * 3, lq.device), net.clip.image(lq))
        restored = torch.stack(outputs).mean(0).clamp(0, 1)
        logits = quality_logits(net.clip.image(torch.cat([gt, restored, lq])),
                                strategy.quality.features(net.clip, lq.device))
    ranking = F.cross_entropy(logits, torch.tensor([0, 0, 0, 1, 1, 1, 2, 2, 2]))
    assert torch.allclose(terms["perceive_ir/quality_ce"], ranking, atol=1e-5)
    assert torch.allclose(total, ranking + terms["perceive_ir/l1_pass0"] + terms["perceive_ir/l1_pass1"], atol=1e-5)
    optimiser = torch.optim.Adam([strategy.quality.context], lr=0.05)
    first = float(ranking)
    for _ in range(8):
        optimiser.zero_grad()
        module.training_loss(batch)[0].backward()
        optimiser.step()
    assert float(module.training_loss(batch)[1]["perceive_ir/quality_ce"]) < first
    path = tmp_path / "stage1.ckpt"
    torch.save({"state_dict": module.state_dict()}, path)

    stage_two = ["model=perceive_ir_tiny", "trainer=cpu", "logger=none", "strategy=perceive_ir"]
    second = build_model(compose("train", [*stage_two, f"model.strategy.prompts={path}",
                                           "model.strategy.clip_weight=0.05"], tmp_path))
    assert not second.strategy.quality.context.requires_grad
    learned = second.strategy.level_features(second.net, lq.device)
    with torch.no_grad():
        assert torch.allclose(learned, strategy.quality.features(net.clip, lq.device), atol=1e-6)
    assert not torch.allclose(learned, second.net.clip.text(list(QUALITY_LEVELS), lq.device), atol=1e-3)
    empty = tmp_path / "empty.ckpt"
    torch.save({"state_dict": {"net.x": torch.zeros(1)}}, empty)
    third = build_model(compose("train", [*stage_two, f"model.strategy.prompts={empty}"], tmp_path))
    with pytest.raises(ConfigError, match="perceive_ir_prompts"):
        third.strategy.level_features(third.net, lq.device)
