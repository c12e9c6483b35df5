"""How to run a restorer on one image: the ``inference`` config group (``conf/inference/*.yaml``).

Kept apart from the tiling code so a config can be checked (and its errors name the key) before any
image is read.
"""

from __future__ import annotations

from dataclasses import dataclass

#: ``max_pixels`` measured for the network and the machine (:mod:`src.inference.memory_budget`)
AUTO = "auto"
#: with ``max_pixels: auto``, images up to this size run whole without measuring anything: 512x512 needs at
#: most a few GB even for the paper-size transformers (Restormer: about 10-15 KiB per pixel on CPU)
AUTO_WHOLE_PIXELS = 512 * 512


@dataclass(frozen=True)
class InferenceConfig:
    """Whole image or tiles, and whether to average the eight flips/rotations.

    Args:
        tile: side of square tiles; ``None`` runs the whole image unless it exceeds ``max_pixels``.
        overlap: pixels shared by neighbouring tiles, blended with a raised-cosine ramp.
        max_pixels: images with more pixels than this are tiled with ``auto_tile`` even when ``tile`` is
            ``None`` (``None``: never tile automatically; ``"auto"``: what fits in half the memory available
            now, measured for the network by :mod:`src.inference.memory_budget` before the first image).
        auto_tile: tile side used for that automatic tiling.
        self_ensemble: average the outputs of the 8 dihedral transforms (x8 compute, usually +0.1-0.3 dB).
        tile_batch: tiles sent through the network together (more speed on a GPU, more memory).
    """

    tile: int | None = None
    overlap: int = 32
    max_pixels: int | str | None = AUTO
    auto_tile: int = 512
    self_ensemble: bool = False
    tile_batch: int = 1

    def __post_init__(self) -> None:
        if self.overlap < 0:
            raise ValueError(f"inference.overlap must be >= 0, got {self.overlap}")
        for key in ("tile", "auto_tile"):
            value = getattr(self, key)
            if value is not None and value <= self.overlap:
                raise ValueError(f"inference.{key}={value} must be larger than inference.overlap={self.overlap}")
        if self.max_pixels != AUTO and self.max_pixels is not None and (
            isinstance(self.max_pixels, bool) or not isinstance(self.max_pixels, int) or self.max_pixels <= 0
        ):
            raise ValueError(f"inference.max_pixels must be a positive number, auto or null, got {self.max_pixels!r}")
        if self.tile_batch < 1:
            raise ValueError(f"inference.tile_batch must be >= 1, got {self.tile_batch}")

    def needs_budget(self, height: int, width: int) -> bool:
        """Whether ``max_pixels: auto`` must be measured before an image of this size can be placed."""
        return self.tile is None and self.max_pixels == AUTO and height * width > AUTO_WHOLE_PIXELS

    def tile_for(self, height: int, width: int) -> int | None:
        """The tile side for an image of this size, or ``None`` to run it whole."""
        if self.tile is not None:
            return self.tile
        if self.max_pixels == AUTO:
            if height * width <= AUTO_WHOLE_PIXELS:
                return None
            raise ValueError("inference.max_pixels=auto must be resolved for the network first (memory_budget)")
        if self.max_pixels is not None and height * width > self.max_pixels:
            return self.auto_tile
        return None
