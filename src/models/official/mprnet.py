"""Official MPRNet (swz30/MPRNet, ``Deblurring|Denoising|Deraining/MPRNet.py``) -> our :class:`MPRNet`.

The three official files differ only in their constructor defaults; the keys are the same. Renames, applied in
order to each key: stage and part names (``stage1_encoder`` -> ``encoder1``, ``stage3_orsnet`` -> ``refine``,
``sam12`` -> ``sam1``, ``concat12`` -> ``fuse12``, ...), level lists (``encoder_level2.1`` -> ``levels.1.1``),
resampling (``down12.down.1`` -> ``down.0.conv``), cross-stage fusion (``csff_enc2`` -> ``fuse_enc.1``),
original-resolution blocks (``orb2.body.3`` -> ``orbs.1.cabs.3``, the last index the block's convolution) and
the channel-attention block's inside (``body.0``/``body.1``/``body.2`` -> ``conv1``/``act``/``conv2``,
``CA.conv_du.0``/``.2`` -> ``attention.squeeze``/``.excite``). The one shared PReLU appears under every
block's key in both state dicts. Released files are ``{"state_dict": ...}`` of a DataParallel model
(``module.`` prefixes), which ``model.pretrained`` strips.
"""

from __future__ import annotations

from collections.abc import Mapping

from torch import Tensor

from src.models.backbones.mprnet import MPRNet
from src.models.official.wrapper import OfficialWrapper, Rules, rename_by_rules

ARGUMENTS = ("in_c", "out_c", "n_feat", "scale_unetfeats", "scale_orsnetfeats", "num_cab", "kernel_size",
             "reduction", "bias")
#: (pattern, replacement) applied in order with re.sub
RULES: Rules = (
    (r"^shallow_feat(\d)\.", lambda m: f"shallow.{int(m[1]) - 1}."),
    (r"^stage(\d)_encoder\.", r"encoder\1."),
    (r"^stage(\d)_decoder\.", r"decoder\1."),
    (r"^stage3_orsnet\.", "refine."),
    (r"^sam12\.", "sam1."),
    (r"^sam23\.", "sam2."),
    (r"^concat(\d\d)\.", r"fuse\1."),
    (r"\.(encoder|decoder)_level(\d)\.", lambda m: f".levels.{int(m[2]) - 1}."),
    (r"\.down12\.down\.1\.", ".down.0.conv."),
    (r"\.down23\.down\.1\.", ".down.1.conv."),
    (r"\.up21\.up\.1\.", ".ups.0.conv."),
    (r"\.up32\.up\.1\.", ".ups.1.conv."),
    (r"\.skip_attn(\d)\.", lambda m: f".skips.{int(m[1]) - 1}."),
    (r"\.csff_(enc|dec)(\d)\.", lambda m: f".fuse_{m[1]}.{int(m[2]) - 1}."),
    (r"\.orb(\d)\.body\.(\d+)\.(weight|bias)$", lambda m: f".orbs.{int(m[1]) - 1}.conv.{m[3]}"),
    (r"\.orb(\d)\.body\.(\d+)\.", lambda m: f".orbs.{int(m[1]) - 1}.cabs.{m[2]}."),
    (r"\.up_(enc|dec)1\.up\.1\.", r".\1_up1.conv."),
    (r"\.up_(enc|dec)2\.(\d)\.up\.1\.", r".\1_up2.\2.conv."),
    (r"\.conv_(enc|dec)(\d)\.", lambda m: f".{m[1]}_proj.{int(m[2]) - 1}."),
    (r"\.CA\.conv_du\.0\.", ".attention.squeeze."),
    (r"\.CA\.conv_du\.2\.", ".attention.excite."),
    (r"\.body\.0\.(weight|bias)$", r".conv1.\1"),
    (r"\.body\.1\.weight$", ".act.weight"),
    (r"\.body\.2\.(weight|bias)$", r".conv2.\1"),
)


def build(official_kwargs: Mapping, **options) -> OfficialWrapper:
    """Our MPRNet configured like the official ``MPRNet(**official_kwargs)`` (deblurring defaults)."""
    unknown = sorted(set(official_kwargs) - set(ARGUMENTS))
    if unknown:
        raise ValueError(f"unknown official MPRNet arguments: {', '.join(unknown)}; accepted: {', '.join(ARGUMENTS)}")
    kwargs = dict(official_kwargs)
    if "in_c" in kwargs:
        kwargs["in_channels"] = kwargs.pop("in_c")
    if "out_c" in kwargs:
        kwargs["out_channels"] = kwargs.pop("out_c")
    return OfficialWrapper(MPRNet(**{**kwargs, **options}))


def convert(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Official keys -> ours (``net.*``); a key no rule matches is kept (prefixed), to be named by the load."""
    return rename_by_rules(state_dict, RULES)
