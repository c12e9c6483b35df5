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


def test_openai_clip_reads_a_local_state_dict_in_open_clips_layout(tmp_path) -> None:
    """CLIP's image side is the suite's ViT, the text side open_clip's; both filled strictly from one file."""
    import pytest

    pytest.importorskip("open_clip")
    from open_clip.transformer import TextTransformer
    from safetensors.torch import save_file

    from src.models.backbones.perceive_ir import OpenAIClip, clip_features
    from src.models.layers.clip_vision import VisionTransformer

    vision = {"image_size": 32, "patch_size": 16, "width": 32, "layers": 1, "heads": 2, "output_dim": 512}
    text = {"context_length": 16, "width": 32, "heads": 2, "layers": 1, "output_dim": 512}
    torch.manual_seed(0)
    state = {f"visual.{k}": v for k, v in VisionTransformer(**vision).state_dict().items()}
    state.update(TextTransformer(vocab_size=49408, **text).state_dict())
    path = tmp_path / "clip.safetensors"
    save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    clip = OpenAIClip(str(path), vision=vision, text=text)
    images = torch.rand(2, 3, 40, 56)
    assert clip.image(images).shape == (2, 512) and clip.text(["a", "b"], torch.device("cpu")).shape == (2, 512)
    assert not torch.allclose(*clip.text(["a rainy street", "a hazy hill"], torch.device("cpu")))
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
