"""RepNR (LED, Jin et al., ICCV 2023): re-parameterisable convolutions with one branch per (virtual) camera.

LED pre-trains a denoiser on many virtual cameras at once: every convolution gets, per camera, a channel-wise
alignment of its input (a scale and a shift) and, for fine-tuning, a parallel auxiliary convolution. Both are
linear, so they fold into one convolution: kernel ``W * a`` (each input channel's taps scaled by its alignment
scale) plus the auxiliary kernel, bias ``sum(W * b) + bias`` plus the auxiliary bias. The forward runs that folded
convolution (the official "reparameterize" form, the one training and testing use; its bias acts as if the
shifted input were also shifted where the convolution pads, while the official "trivial" form pads after the
shift with zeros and so differs at the borders where the shifts are non-zero). Branch ``-1`` is the generalised
camera used at test time (:func:`generalize` sets it to the cameras' mean); :func:`deploy` writes its folded
weights into plain convolutions, giving the plain network back. Parameter names are the official ones
(``main_weight``, ``align_weights.<i>``, ...), so official RepNR checkpoints load as they are.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class RepNRConv2d(nn.Module):
    """A convolution with ``branches + 1`` channel alignments of its input and an optional auxiliary convolution."""

    def __init__(self, conv: nn.Conv2d, branches: int, aux: bool = True, aux_bias: bool = True) -> None:
        super().__init__()
        if conv.padding_mode != "zeros" or conv.bias is None:
            raise ValueError("RepNR folds zero-padded convolutions with a bias")
        self.stride, self.padding, self.dilation, self.groups = conv.stride, conv.padding, conv.dilation, conv.groups
        self.main_weight = nn.Parameter(conv.weight.detach().clone())
        self.main_bias = nn.Parameter(conv.bias.detach().clone())
        shape = (1, conv.in_channels, 1, 1)
        self.align_weights = nn.ParameterList(nn.Parameter(torch.ones(shape)) for _ in range(branches + 1))
        self.align_biases = nn.ParameterList(nn.Parameter(torch.zeros(shape)) for _ in range(branches + 1))
        self.aux_weight = nn.Parameter(torch.zeros_like(conv.weight)) if aux else None
        self.aux_bias = nn.Parameter(torch.zeros_like(conv.bias)) if aux and aux_bias else None
        #: the camera whose alignment is used (-1: the generalised one)
        self.branch = -1

    def folded(self, branch: int | None = None) -> tuple[Tensor, Tensor]:
        """The single convolution's kernel and bias for ``branch`` (default: the current one)."""
        index = self.branch if branch is None else branch
        scale, shift = self.align_weights[index], self.align_biases[index]
        weight = self.main_weight * scale  # (out, in, kh, kw) x (1, in, 1, 1)
        taps = shift.expand(1, -1, *self.main_weight.shape[-2:])
        bias = F.conv2d(taps, self.main_weight, self.main_bias).reshape(-1)  # sum over in-channels and taps
        if self.aux_weight is not None:
            weight = weight + self.aux_weight
            if self.aux_bias is not None:
                bias = bias + self.aux_bias
        return weight, bias

    def forward(self, x: Tensor) -> Tensor:
        weight, bias = self.folded()
        return F.conv2d(x, weight, bias, self.stride, self.padding, self.dilation, self.groups)


def to_repnr(net: nn.Module, branches: int, keep: Iterable[str] = (), aux: bool = True,
             aux_bias: bool = True) -> nn.Module:
    """``net`` with every ``nn.Conv2d`` (not transposed ones, not the child names in ``keep``) made a
    :class:`RepNRConv2d` of ``branches`` cameras, in place; returns ``net``."""
    kept = set(keep)
    for name, child in list(net.named_children()):
        if name in kept:
            continue
        if type(child) is nn.Conv2d:
            setattr(net, name, RepNRConv2d(child, branches, aux, aux_bias))
        else:
            to_repnr(child, branches, kept, aux, aux_bias)
    return net


def set_camera(net: nn.Module, branch: int) -> None:
    """Use camera ``branch`` (-1: the generalised one) in every RepNR convolution of ``net``."""
    for module in net.modules():
        if isinstance(module, RepNRConv2d):
            module.branch = branch


@torch.no_grad()
def generalize(net: nn.Module) -> nn.Module:
    """Set the generalised branch (-1) of every RepNR convolution to the mean of the camera branches' alignments
    (LED's ``generalize()``, before fine-tuning or deploying for an unseen camera), in place; returns ``net``."""
    for module in net.modules():
        if isinstance(module, RepNRConv2d):
            for params in (module.align_weights, module.align_biases):
                params[-1].copy_(torch.stack([p for p in list(params)[:-1]]).mean(dim=0))
    return net


@torch.no_grad()
def deploy(net: nn.Module, branch: int = -1) -> nn.Module:
    """``net`` with every RepNR convolution replaced by a plain one holding its folded ``branch``, in place."""
    for name, child in list(net.named_children()):
        if isinstance(child, RepNRConv2d):
            weight, bias = child.folded(branch)
            out_channels, in_per_group, kh, kw = weight.shape
            plain = nn.Conv2d(in_per_group * child.groups, out_channels, (kh, kw), child.stride, child.padding,
                              child.dilation, child.groups).to(weight.device, weight.dtype)
            plain.weight.copy_(weight)
            plain.bias.copy_(bias)
            setattr(net, name, plain)
        else:
            deploy(child, branch)
    return net
