"""Instructions for instruction-guided restorers (InstructIR): from a batch's families or a user's sentence to
the embedding the network is conditioned on, with the intent classifier's logits for its loss.

InstructIR's text path is a frozen sentence encoder (``bge-micro-v2``: 384-d, attention-mask mean pooling,
L2-normalised) and an instruction head (``LMHead``: ``fc1`` to 256-d, L2-normalised, the network's condition;
``fc2`` to logits over the degradation families, trained with cross-entropy beside the image loss). Where no
text model is at hand, :class:`FamilyInstructions` stands in for the encoder with one learned sentence embedding
per family, so the model trains and restores anywhere; a user's instruction is then mapped to the family it
names.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class InstructionHead(nn.Module):
    """``LMHead``: ``embedding = normalize(fc1(sentence))`` (the condition), ``logits = fc2(embedding)``."""

    def __init__(self, embedding_dim: int = 384, hidden_dim: int = 256, num_classes: int = 7) -> None:
        super().__init__()
        self.fc1 = nn.Linear(embedding_dim, hidden_dim)
        self.fc2 = nn.Linear(hidden_dim, num_classes)

    def forward(self, sentence: Tensor) -> tuple[Tensor, Tensor]:
        embedding = F.normalize(self.fc1(sentence), p=2, dim=1)
        return embedding, self.fc2(embedding)


class FamilyInstructions(nn.Module):
    """The no-text-model fallback: a learned sentence embedding per family, through :class:`InstructionHead`.

    ``families`` fixes the classes of the intent classifier (their order is the logits' order). A user's
    instruction names its family by word ("remove the rain" -> ``rain``; aliases in ``aliases``)."""

    def __init__(self, families: Sequence[str], embedding_dim: int = 384, text_dim: int = 256,
                 aliases: dict[str, Sequence[str]] | None = None) -> None:
        super().__init__()
        if not families:
            raise ValueError("model.instruction.families is empty: name the degradation families it tells apart")
        self.families = list(families)
        self.sentences = nn.Embedding(len(self.families), embedding_dim)
        self.head = InstructionHead(embedding_dim, text_dim, len(self.families))
        self.aliases = {f: [f, *(aliases or {}).get(f, [])] for f in self.families}

    def indices(self, families: Sequence[str]) -> Tensor:
        unknown = sorted(set(families) - set(self.families))
        if unknown:
            raise ValueError(f"families {unknown} have no instruction: model.instruction.families is {self.families}")
        return torch.tensor([self.families.index(f) for f in families], device=self.sentences.weight.device)

    def for_families(self, families: Sequence[str]) -> tuple[Tensor, Tensor]:
        """The condition (B x text_dim) and the intent logits of a batch's families."""
        return self.head(F.normalize(self.sentences(self.indices(families)), p=2, dim=1))

    def family_of(self, instruction: str) -> str:
        """The family an instruction names, by whole words; an instruction naming none or several is refused."""
        words = set(re.findall(r"[a-z0-9-]+", instruction.lower()))
        named = [f for f, names in self.aliases.items() if words & {n.lower() for n in names}]
        if len(named) != 1:
            raise ValueError(f"instruction {instruction!r} names {named if named else 'no family'}; without a "
                             f"text model it must name one of {self.families} (or an alias: {self.aliases})")
        return named[0]

    def for_instruction(self, instruction: str) -> Tensor:
        """The condition (1 x text_dim) of a user's instruction."""
        return self.for_families([self.family_of(instruction)])[0]
