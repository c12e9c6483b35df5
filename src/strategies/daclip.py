"""DA-CLIP's own training (``strategy=daclip_controller``): the controller learns to read degradations.

DA-CLIP (Luo et al., ICLR 2024) trains, before its restorer, a copy of CLIP's image encoder (the *controller*) that
feeds the frozen one through zero-initialised projections. Each training image is a degraded one with two texts:
a caption of its clean content and the name of its degradation. The objective is the sum of two CLIP
contrastive losses (open_clip's ``ClipLoss``: symmetric cross-entropy over the batch's image-text similarities,
scaled by a learned temperature): the controlled encoder's *content* embedding against the caption's text
embedding, and the controller's *degradation* embedding against the degradation name's. CLIP (both towers) is
frozen; the controller and the temperature train (the release: AdamW 2e-5, weight decay 0.05, 100 warm-up steps,
cosine, batch 512, 30 epochs).

Here the captions are the data's (``data.captions=<file>``, as the release reads them from its CSV's titles), the
degradation names DA-CLIP's for the suite's families (``rain`` -> ``rainy``, ...; a family without one keeps its
own name). The starting point is CLIP's open_clip state dict (``clip_weights``: the release starts from ViT-B/32
``laion2b_s34b_b79k``; the controller is its image tower copied, the projections zero) or a DA-CLIP checkpoint
(continued), or, without a file, a small seeded stand-in for tests. The strategy's tensors are saved under
DA-CLIP's names below ``strategy.daclip.``, so the run's checkpoint is itself a DA-CLIP checkpoint:
``model.backbone.encoder=daclip model.backbone.clip_weights=<run>/checkpoints/last.ckpt`` restores with it.

Only the controller trains: the restorer (``model=daclip_irsde``) is frozen and evaluated as it is (its
validation numbers are not this stage's; the logged ``daclip/degradation_accuracy`` is: the share of the batch
whose degradation embedding is nearest to its own family's name among the training families' names). The
release's duplicates are kept: two images of one degradation in a batch are each other's negatives.
CLIP's preprocessing (``preprocess``): ``float``, resize and centre crop on the device (the default: what the
restorer's ``clip_preprocess=float`` reads), or ``release``, the release's training transform (open_clip's random
resized crop through PIL, on the CPU).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from src.models.layers.clip_text import FAMILY_NAMES, TEXT_B_32, require_open_clip, text_tower_state
from src.models.layers.clip_vision import (
    CLIP_MEAN,
    CLIP_STD,
    VIT_B_32,
    ControlledVision,
    clip_preprocess,
    from_daclip_state,
    read_clip_state,
    release_8bit,
)
from src.models.official import load_strict
from src.strategies.base import Strategy
from src.utils.errors import ConfigError

#: a small seeded CLIP for runs without weights (tests): a two-block image tower, a one-block text tower, 512-wide
#: embeddings
STAND_IN_VISION = {"image_size": 32, "patch_size": 16, "width": 32, "layers": 2, "heads": 2, "output_dim": 512}
STAND_IN_TEXT = {"context_length": 16, "width": 32, "heads": 2, "layers": 1, "output_dim": 512}
#: where CLIP's weights come from, for the message when the file is absent
CLIP_WEIGHTS_HINT = ("model.strategy.clip_weights must be CLIP ViT-B/32 as an open_clip state dict (DA-CLIP starts "
                     "from open_clip's laion2b_s34b_b79k: open_clip_pytorch_model.bin of laion/CLIP-ViT-B-32-"
                     "laion2B-s34B-b79K) or a DA-CLIP checkpoint to continue")
#: open_clip's bound on the learned temperature (its training clamps ``logit_scale`` to [0, ln 100])
MAX_LOGIT_SCALE = math.log(100)


class DaclipModel(ControlledVision):
    """DA-CLIP's trained model under the release's names: the frozen image tower ``visual``, the controller
    ``visual_control``, the temperature ``logit_scale`` and CLIP's frozen text tower ``clip`` (open_clip's
    ``TextTransformer`` with its tokenizer)."""

    def __init__(self, vision: Mapping[str, Any], text: Mapping[str, Any]) -> None:
        super().__init__(**vision)
        require_open_clip()
        from open_clip.tokenizer import SimpleTokenizer
        from open_clip.transformer import TextTransformer

        sizes = {**TEXT_B_32, **text}
        self.clip = TextTransformer(**sizes)
        self.tokenizer = SimpleTokenizer(context_length=sizes["context_length"])

    def copy_controller(self) -> None:
        """The release's ``initial_controller``: the controller's tower becomes the image tower (its zero
        projections stay zero), so training starts from CLIP's own embedding."""
        control = self.visual_control
        own = dict(self.visual.named_parameters())
        for name, param in control.named_parameters():
            source = own.get(name.replace("transformer.transformer.", "transformer."))
            if source is not None:
                param.data.copy_(source.data)

    def encode_text(self, texts: Sequence[str], device: torch.device) -> Tensor:
        """Normalised text embeddings (no gradient: the text tower is frozen)."""
        with torch.no_grad():
            return F.normalize(self.clip(self.tokenizer(list(texts)).to(device)).float(), dim=-1)


def daclip_model(clip_weights: str | None, vision: Mapping[str, Any] | None, text: Mapping[str, Any] | None,
                 seed: int) -> DaclipModel:
    """From CLIP's open_clip state dict (controller copied from the image tower), from a DA-CLIP checkpoint (as it
    is), or seeded with the stand-in's sizes where no file is given."""
    if not clip_weights:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = DaclipModel({**STAND_IN_VISION, **(vision or {})}, {**STAND_IN_TEXT, **(text or {})})
        model.copy_controller()
        return model
    model = DaclipModel(vision or VIT_B_32, text or {})
    state = read_clip_state(clip_weights, CLIP_WEIGHTS_HINT)
    image = from_daclip_state(state)
    continued = any(k.startswith("visual_control.") for k in image)
    if "logit_scale" not in image:
        raise ValueError(f"model.strategy.clip_weights={clip_weights} holds no logit_scale: {CLIP_WEIGHTS_HINT}")
    if not continued:
        image.update({k: v for k, v in model.state_dict().items() if k.startswith("visual_control.")})
    load_strict(model, {**image, **{f"clip.{k}": v for k, v in text_tower_state(state).items()}},
                source=f"model.strategy.clip_weights={clip_weights}")
    if not continued:
        model.copy_controller()
    return model


def degradation_name(family: str) -> str:
    """DA-CLIP's name of a family (its ten), or the family's own name."""
    return FAMILY_NAMES.get(family, family)


class DaclipControllerTraining(Strategy):
    """DA-CLIP's contrastive training of its controller (content vs caption, degradation vs name)."""

    def __init__(self, families: Sequence[str] = (), clip_weights: str | None = None,
                 vision: Mapping[str, Any] | None = None, text: Mapping[str, Any] | None = None,
                 caption_weight: float = 1.0, degradation_weight: float = 1.0, seed: int = 0,
                 preprocess: str = "float") -> None:
        super().__init__()
        if preprocess not in ("float", "release"):
            raise ConfigError(f"model.strategy.preprocess={preprocess!r}: expected float or release")
        self.preprocess = preprocess
        self.families = [str(f) for f in families or []]
        self.caption_weight, self.degradation_weight = float(caption_weight), float(degradation_weight)
        self.daclip = daclip_model(clip_weights, vision, text, seed)
        self.__dict__["contrastive"] = None
        self.__dict__["named"] = {}  # degradation name -> its text embedding (the text tower is frozen)

    def bind(self, module: Any) -> None:
        if not all(hasattr(module.net, name) for name in ("unet", "contexts")):
            raise ConfigError(f"strategy=daclip_controller trains DA-CLIP's controller for its restorer "
                              f"(model=daclip_irsde), not {type(module.net).__name__}")
        trainable = {id(p) for p in self.daclip.visual_control.parameters()} | {id(self.daclip.logit_scale)}
        for param in module.parameters():
            param.requires_grad_(id(param) in trainable)

    def example_fields(self, batch: int) -> dict[str, Any]:
        return {"caption": [f"a photograph of scene {i}" for i in range(batch)]}

    def clip_input(self, lq: Tensor) -> Tensor:
        """CLIP's input of the batch: the float resize and centre crop, or the release's training transform
        (open_clip's ``image_transform(is_train=True)``: a random resized crop of 90-100% of the area, bicubic,
        through PIL on the release's 8-bit values)."""
        size = self.daclip.visual.image_size
        if self.preprocess == "float":
            return clip_preprocess(lq, size).to(lq.dtype)
        from open_clip.transform import image_transform

        transform = image_transform(size, is_train=True, mean=CLIP_MEAN, std=CLIP_STD)
        return torch.stack([transform(pil) for pil in release_8bit(lq)]).to(device=lq.device, dtype=lq.dtype)

    def name_features(self, names: Sequence[str], device: torch.device) -> Tensor:
        """The text embeddings of degradation names, each encoded once."""
        missing = sorted(set(names) - set(self.named))
        if missing:
            self.named.update(zip(missing, self.daclip.encode_text(missing, device).cpu()))
        return torch.stack([self.named[n] for n in names]).to(device)

    def clip_loss(self, module: Any) -> Any:
        """open_clip's ``ClipLoss``, gathering features over the run's processes as the release does."""
        if self.contrastive is None:
            from open_clip.loss import ClipLoss

            trainer = getattr(module, "_trainer", None)
            rank, world = (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)
            self.__dict__["contrastive"] = ClipLoss(rank=rank, world_size=world)
        return self.contrastive

    def training_loss(self, module: Any, batch: Mapping[str, Any]) -> tuple[Tensor, dict[str, Tensor]]:
        lq, families = batch["lq"], [str(f) for f in batch["family"]]
        captions = batch.get("caption")
        if self.caption_weight and (captions is None or not any(str(c) for c in captions)):
            raise ConfigError("strategy=daclip_controller contrasts each image's content with its caption: give "
                              "data.captions=<file of captions> (or model.strategy.caption_weight=0 to train on "
                              "the degradation names only)")
        model = self.daclip
        with torch.no_grad():
            model.logit_scale.clamp_(0, MAX_LOGIT_SCALE)
        content, degradation = model(self.clip_input(lq))
        content, degradation = F.normalize(content.float(), dim=-1), F.normalize(degradation.float(), dim=-1)
        names = [degradation_name(f) for f in families]
        scale, contrastive = model.logit_scale.exp(), self.clip_loss(module)
        terms = {"daclip/degradation": contrastive(degradation, self.name_features(names, lq.device), scale)}
        total = self.degradation_weight * terms["daclip/degradation"]
        if self.caption_weight:
            terms["daclip/content"] = contrastive(content, model.encode_text([str(c) for c in captions],
                                                                              lq.device), scale)
            total = total + self.caption_weight * terms["daclip/content"]
        known = sorted({degradation_name(f) for f in self.families} | set(names))
        nearest = (degradation @ self.name_features(known, lq.device).T).argmax(dim=1)
        truth = torch.tensor([known.index(n) for n in names], device=lq.device)
        terms = {k: v.detach() for k, v in terms.items()}
        terms["daclip/degradation_accuracy"] = (nearest == truth).float().mean()
        terms["daclip/logit_scale"] = scale.detach()
        return module.complete_objective(total, terms, batch, {}, None)
