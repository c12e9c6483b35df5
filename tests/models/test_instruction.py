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
