"""Official TransWeather (jeya-maria-jose/TransWeather, ``transweather_model.py``) -> our :class:`TransWeather`.

``Transweather()`` takes no arguments (``official_kwargs`` must be empty). Renames: ``Tenc`` -> ``encoder``
(``patch_embed<i>`` -> ``patch_embed.<i-1>``, ``block<i>.<j>`` -> ``stages.<i-1>.<j>``, ``norm<i>`` -> ``norms.<i-1>``,
``mini_patch_embed<i>`` -> ``mini_embed.<i-1>``, ``patch_block<i>.0`` -> ``mini_blocks.<i-1>``, ``pnorm<i>`` ->
``mini_norms.<i-1>``), ``Tdec`` -> ``decoder`` (``patch_embed1`` -> ``patch_embed``, ``block1.<j>`` -> ``blocks.<j>``,
``norm1`` -> ``norm``), in attention ``sr`` -> ``reduce``, in Mix-FFN ``dwconv.dwconv`` -> ``dwconv``, ``convtail`` ->
``tail`` (``convd<k>x.conv2d`` -> ``up<k>``, ``dense_<n>.0.conv<m>.conv2d`` -> ``res<2^n>.conv<m>``,
``conv_output.conv2d`` -> ``unused_output``), ``clean.conv2d`` -> ``clean``. Released files are
``{"state_dict": ...}`` of a DataParallel model (``module.`` prefixes).
"""

from __future__ import annotations

from collections.abc import Mapping

from torch import Tensor

from src.models.backbones.transweather import TransWeather
from src.models.official.wrapper import OfficialWrapper, Rules, rename_by_rules

RULES: Rules = (
    (r"^Tenc\.patch_embed(\d)\.", lambda m: f"encoder.patch_embed.{int(m[1]) - 1}."),
    (r"^Tenc\.mini_patch_embed(\d)\.", lambda m: f"encoder.mini_embed.{int(m[1]) - 1}."),
    (r"^Tenc\.block(\d)\.", lambda m: f"encoder.stages.{int(m[1]) - 1}."),
    (r"^Tenc\.norm(\d)\.", lambda m: f"encoder.norms.{int(m[1]) - 1}."),
    (r"^Tenc\.patch_block(\d)\.0\.", lambda m: f"encoder.mini_blocks.{int(m[1]) - 1}."),
    (r"^Tenc\.pnorm(\d)\.", lambda m: f"encoder.mini_norms.{int(m[1]) - 1}."),
    (r"^Tdec\.patch_embed1\.", "decoder.patch_embed."),
    (r"^Tdec\.block1\.", "decoder.blocks."),
    (r"^Tdec\.norm1\.", "decoder.norm."),
    (r"\.attn\.sr\.", ".attn.reduce."),
    (r"\.mlp\.dwconv\.dwconv\.", ".mlp.dwconv."),
    (r"^convtail\.convd(\d+)x\.conv2d\.", r"tail.up\1."),
    (r"^convtail\.dense_(\d)\.0\.conv(\d)\.conv2d\.", lambda m: f"tail.res{2 ** int(m[1])}.conv{m[2]}."),
    (r"^convtail\.conv_output\.conv2d\.", "tail.unused_output."),
    (r"^clean\.conv2d\.", "clean."),
)


class TransWeatherWrapper(OfficialWrapper):
    """Called on the official [-1, 1] input, as the reference vectors are: ``y = model(2 * x - 1)``."""

    def forward(self, x: Tensor) -> Tensor:
        return self.net.official(x)


def build(official_kwargs: Mapping, **options) -> TransWeatherWrapper:
    """Our TransWeather (the official class has no size arguments)."""
    if official_kwargs:
        raise ValueError(f"the official Transweather() takes no arguments, got {sorted(official_kwargs)}")
    return TransWeatherWrapper(TransWeather(**options))


def convert(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Official keys -> ours (``net.*``); a key no rule matches is kept (prefixed), to be named by the load."""
    return rename_by_rules(state_dict, RULES)
