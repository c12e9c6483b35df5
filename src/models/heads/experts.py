"""MoCE-IR's mixture of complexity experts (Zamfir et al., CVPR 2025) as a head sized from ``feature_info``.

At each head position a router picks ``top_k`` of ``num_experts`` experts per image from the feature's
spatial mean plus a frequency embedding of the latent (a Laplacian high-pass, GELU, spatial mean, MLP), with
Gaussian noise on its logits. Expert ``i`` works at a low rank (``rank_type``; officially "spread":
``channels / 2**(E-1-i)``, so the last expert is full width) and mixes its feature by a product of FFTs inside
``4 * 2**i``-pixel patches (official ``FFTAttention``), modulated by the backbone's shared feature. The
selected outputs, times their gate values, are summed and projected. In training each position reports the
official balance loss (importance and load terms, squared coefficients of variation, halved and added).

Each :class:`ExpertLayer` counts how often its experts ran (the ``src.training.sparse.SparselyUsed``
protocol), so multi-GPU training needs no DDP unused-parameter search: the LightningModule anchors every
expert in the loss with a zero weight and, before the optimiser step, clears the gradients of experts no
rank used, exactly as the official ``find_unused_parameters=True`` run leaves them (``None``, skipped by AdamW).

Official quirks kept: the router noise is drawn in eval mode too (``router_noise_in_eval``); the Laplacian kernel is
trainable (the official ``freeze`` assigns ``requires_grad_`` instead of calling it); the expert's depth
loop recomputes the same pass, so an expert is applied once. Every image is routed on its own, in eval mode
too (the official eval path only works for batch size 1; for one image both give the same).

The router noise is a replaceable callable ``router.router_noise_source(logits) -> noise`` (see
:func:`set_router_noise`), so tests can replay the noise the official code drew.

The head reads two context tensors when the backbone passes them (``context_keys``): ``shared`` (the
modulating feature; default: the feature itself) and ``latent`` (the source of the frequency embedding,
needed when ``feature_info`` holds the ``frequency_source`` position). On a backbone without a ``latent``
position (Restormer) the routers use the feature alone.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from src.models.backbones.base import FeatureInfo, Head
from src.models.layers.norm import ChannelLayerNorm

RouterNoiseSource = Callable[[Tensor], Tensor]

#: rank of expert ``i`` of ``n`` at a position of ``c`` channels, for each official ``rank_type``
RANK_RULES: dict[str, Callable[[int, int, int, int], int]] = {
    "constant": lambda rank, i, n, c: rank,
    "lin": lambda rank, i, n, c: rank + i,
    "double": lambda rank, i, n, c: rank + 2 * i,
    "exp": lambda rank, i, n, c: rank ** (i + 1),
    "fact": lambda rank, i, n, c: math.factorial(rank + i),
    "spread": lambda rank, i, n, c: c // 2 ** (n - 1 - i),
}


class GaussianRouterNoise:
    """``randn_like(logits) * std``: the official router noise (a class, so models with it still pickle)."""

    def __init__(self, std: float) -> None:
        self.std = std

    def __call__(self, logits: Tensor) -> Tensor:
        return torch.randn_like(logits) * self.std


def no_router_noise(logits: Tensor) -> Tensor:
    """No router noise: routing is deterministic."""
    return torch.zeros_like(logits)


class ReplayRouterNoise:
    """Hands out given noise tensors in call order (times ``scale``), e.g. those an official forward drew."""

    def __init__(self, tensors: Iterable[Tensor], scale: float = 1.0) -> None:
        self._tensors = list(tensors)
        self._next = 0
        self.scale = scale

    @property
    def remaining(self) -> int:
        """Recorded tensors not handed out yet (0 once a replay used them all)."""
        return len(self._tensors) - self._next

    def __call__(self, logits: Tensor) -> Tensor:
        if not self.remaining:
            raise RuntimeError(f"ReplayRouterNoise ran out of recorded noise tensors after {len(self._tensors)} calls")
        noise = self._tensors[self._next]
        self._next += 1
        if noise.shape != logits.shape:
            raise ValueError(f"recorded noise {tuple(noise.shape)} does not fit logits {tuple(logits.shape)}")
        return noise.to(logits) * self.scale


def patch_fourier_product(q: Tensor, k: Tensor, patch: int) -> Tensor:
    """Inverse FFT of ``FFT(q) * FFT(k)`` in each ``patch x patch`` tile (zero-padded at the bottom/right).

    A circular convolution of q with k inside each tile; computed in float32 (FFTs in half precision are
    neither supported everywhere nor accurate), cropped back to the input size.
    """
    h, w = q.shape[-2:]
    pad = (0, (-w) % patch, 0, (-h) % patch)
    tiles = "b c (h p1) (w p2) -> b c h w p1 p2"
    qt, kt = (rearrange(F.pad(t.float(), pad), tiles, p1=patch, p2=patch) for t in (q, k))
    out = torch.fft.irfft2(torch.fft.rfft2(qt) * torch.fft.rfft2(kt), s=(patch, patch))
    return rearrange(out, "b c h w p1 p2 -> b c (h p1) (w p2)")[..., :h, :w]


class FourierAttention(nn.Module):
    """Official ``FFTAttention``: ``proj(norm(patch_fourier_product(q, k)) * v)``.

    q: 1x1 then depth-wise 3x3; k, v: 1x1 then depth-wise 7x7 (the depth-wise convolutions have a bias, the
    1x1 ones not). The norm is a channel LayerNorm with bias whatever the network's norm type.
    """

    def __init__(self, channels: int, patch: int) -> None:
        super().__init__()
        self.patch = patch
        self.q = nn.Conv2d(channels, channels, 1, bias=False)
        self.q_dw = nn.Conv2d(channels, channels, 3, padding=1, groups=channels)
        self.kv = nn.Conv2d(channels, channels * 2, 1, bias=False)
        self.kv_dw = nn.Conv2d(channels * 2, channels * 2, 7, padding=3, groups=channels * 2)
        self.norm = ChannelLayerNorm(channels)
        self.proj = nn.Conv2d(channels, channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        q = self.q_dw(self.q(x))
        k, v = self.kv_dw(self.kv(x)).chunk(2, dim=1)
        # float32 from the FFT through the norm, as officially; back to the features' dtype for the projection
        return self.proj((self.norm(patch_fourier_product(q, k, self.patch)) * v).to(v.dtype))


class ComplexityExpert(nn.Module):
    """Official ``ModExpert``: ``x + up(body(down(x)) * silu(modulation(shared)))``, at ``rank`` channels."""

    def __init__(self, channels: int, rank: int, patch: int) -> None:
        super().__init__()
        self.down = nn.Conv2d(channels, rank, 1, bias=False)
        self.modulation = nn.Conv2d(channels, rank, 1, bias=False)
        self.up = nn.Conv2d(rank, channels, 1, bias=False)
        self.body = FourierAttention(rank, patch)

    def forward(self, x: Tensor, shared: Tensor) -> Tensor:
        return x + self.up(self.body(self.down(x)) * F.silu(self.modulation(shared)))


class FrequencyEmbedding(nn.Module):
    """Official ``FrequencyEmbedding``: Laplacian high-pass (depth-wise, trainable), GELU, spatial mean, MLP."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.highpass = nn.Conv2d(channels, channels, 3, padding=1, groups=channels, bias=False)
        laplacian = torch.tensor([[-1.0, -1.0, -1.0], [-1.0, 8.0, -1.0], [-1.0, -1.0, -1.0]])
        with torch.no_grad():
            self.highpass.weight.copy_(laplacian.expand_as(self.highpass.weight))
        self.mlp = nn.Sequential(nn.Linear(channels, 2 * channels), nn.GELU(), nn.Linear(2 * channels, channels))

    def forward(self, latent: Tensor) -> Tensor:
        return self.mlp(F.gelu(self.highpass(latent)).mean(dim=(-2, -1)))


@dataclass
class Routing:
    """Per image: the chosen experts ``(B, k)``, their gate values ``(B, k)``, and the balance loss in training."""

    indices: Tensor
    gates: Tensor
    balance: Tensor | None


class NoisyTopKRouter(nn.Module):
    """Official ``RoutingFunction``: top-k of ``softmax(logits + noise)``, logits from the pooled feature
    (``gate``) plus the frequency embedding (``frequency_gate``, absent without one).

    ``noise_std`` (official ``1 / num_experts``) scales the default noise and the load loss; ``router_noise_source``
    makes the noise. With ``router_noise_in_eval`` off, eval-mode routing is noise-free. ``complexity`` (a buffer,
    saved in checkpoints) is each expert's parameter count scaled by ``complexity_scale``; with
    ``use_complexity`` it weights the importance loss.
    """

    def __init__(
        self,
        channels: int,
        num_experts: int,
        top_k: int,
        complexity: Tensor,
        frequency_channels: int | None = None,
        use_complexity: bool = False,
        noise: bool = True,
        router_noise_in_eval: bool = True,
    ) -> None:
        super().__init__()
        self.top_k = top_k
        self.num_experts = num_experts
        self.use_complexity = use_complexity
        self.noise_std = 1.0 / num_experts
        self.router_noise_in_eval = router_noise_in_eval
        self.router_noise_source: RouterNoiseSource = GaussianRouterNoise(self.noise_std) if noise else no_router_noise
        self.gate = nn.Linear(channels, num_experts, bias=False)
        self.frequency_gate = nn.Linear(frequency_channels, num_experts, bias=False) if frequency_channels else None
        self.register_buffer("complexity", complexity)

    def forward(self, feature: Tensor, frequency: Tensor | None = None) -> Routing:
        logits = self.gate(F.adaptive_avg_pool2d(feature, 1).flatten(1))
        if self.frequency_gate is not None:
            if frequency is None:
                raise ValueError("this router was built with a frequency gate but got no frequency embedding")
            logits = logits + self.frequency_gate(frequency)
        noisy = logits + self.router_noise_source(logits) if self.training or self.router_noise_in_eval else logits
        gates, indices = noisy.softmax(dim=-1).topk(self.top_k, dim=-1)
        balance = None
        if self.training:
            balance = 0.5 * self.importance_loss(logits) + 0.5 * self.load_loss(logits, noisy)
        return Routing(indices, gates, balance)

    def importance_loss(self, logits: Tensor) -> Tensor:
        """Squared coefficient of variation of the batch's summed (noise-free) routing probabilities."""
        importance = logits.softmax(dim=-1).sum(dim=0)
        if self.use_complexity:
            importance = importance * self.complexity
        return (importance.std() / (importance.mean() + 1e-8)) ** 2

    def load_loss(self, logits: Tensor, noisy: Tensor) -> Tensor:
        """Squared coefficient of variation of each expert's mean probability of making the top-k under noise.

        As officially: the threshold is the image's k-th largest noisy logit, and an expert's probability is
        ``1 - Phi((threshold - logit) / noise_std)``.
        """
        threshold = noisy.topk(self.top_k, dim=-1).values[:, -1:]
        z = (threshold - logits) / self.noise_std
        p = 1.0 - 0.5 * (1.0 + torch.erf(z / math.sqrt(2.0)))
        load = p.mean(dim=0)
        return (load.std() / (load.mean() + 1e-8)) ** 2


class ExpertLayer(nn.Module):
    """Official ``AdapterLayer`` at one position: route each image, run its experts, gate, sum, 1x1 projection."""

    def __init__(
        self,
        channels: int,
        ranks: Sequence[int],
        patches: Sequence[int],
        top_k: int,
        frequency_channels: int | None,
        use_complexity: bool,
        complexity_scale: str,
        noise: bool,
        router_noise_in_eval: bool,
    ) -> None:
        super().__init__()
        self.experts = nn.ModuleList(ComplexityExpert(channels, r, p) for r, p in zip(ranks, patches, strict=True))
        self.proj = nn.Conv2d(channels, channels, 1, bias=False)
        sizes = torch.tensor([float(sum(p.numel() for p in e.parameters())) for e in self.experts])
        scale = {"max": sizes.max(), "min": sizes.min(), "none": torch.tensor(1.0)}[complexity_scale]
        self.router = NoisyTopKRouter(
            channels, len(self.experts), top_k, sizes / scale, frequency_channels, use_complexity, noise,
            router_noise_in_eval,
        )
        #: images routed to each expert by training forwards since ``reset_usage`` (a plain attribute, not a
        #: buffer: DDP would broadcast rank 0's buffers over the other ranks' counts)
        self._usage: Tensor | None = None

    def forward(self, feature: Tensor, shared: Tensor, frequency: Tensor | None) -> tuple[Tensor, Tensor | None]:
        routing = self.router(feature, frequency)
        if self.training and torch.is_grad_enabled():
            # tensor ops only (no host sync, compile-friendly); read once per optimiser step
            experts = torch.arange(len(self.experts), device=routing.indices.device)
            hits = (routing.indices.reshape(-1, 1) == experts).sum(dim=0)
            self._usage = hits if self._usage is None else self._usage + hits
        out = torch.zeros_like(feature, dtype=torch.promote_types(feature.dtype, torch.float32))
        for e, expert in enumerate(self.experts):
            hit = routing.indices == e
            rows = hit.any(dim=1).nonzero().flatten()
            if rows.numel() == 0:
                continue
            gate = (routing.gates * hit).sum(dim=1)[rows]
            y = expert(feature[rows], shared[rows]) * gate[:, None, None, None]
            out = out.index_add(0, rows, y.to(out.dtype))
        return self.proj(out.to(feature.dtype)), routing.balance

    # -- src.training.sparse.SparselyUsed: top-k routing leaves experts unused in a step
    def usage_groups(self) -> list[list[nn.Parameter]]:
        """One group per expert (an expert runs whole or not at all)."""
        return [list(expert.parameters()) for expert in self.experts]

    def usage_counts(self) -> Tensor:
        if self._usage is None:
            return torch.zeros(len(self.experts), dtype=torch.long, device=self.proj.weight.device)
        return self._usage

    def reset_usage(self) -> None:
        self._usage = None


class ExpertsHead(Head):
    """A mixture of complexity experts at every position of ``feature_info`` (one :class:`ExpertLayer` each).

    Args:
        feature_info: the backbone's head positions.
        num_experts, top_k: experts per position and how many each image uses (official 4 and 1).
        rank, rank_type: expert widths (see :data:`RANK_RULES`; official ``rank_type="spread"``, which
            ignores ``rank``).
        patch_size: FFT tile side of the first expert; it doubles with each expert (official 4).
        use_complexity, complexity_scale: weight the importance loss by the experts' scaled parameter
            counts (official ``with_complexity``, off in the paper recipe; ``complexity_scale`` "max"/"min"/"none").
        frequency_source: the position whose feature (passed as ``latent=``) feeds the frequency embedding;
            it gets no experts. Not in ``feature_info`` (or ``None``): routing from the feature alone.
        balance_weight: weight of the balance loss, averaged over the positions (official 0.01).
        router_noise: Gaussian noise (std ``1 / num_experts``) on the router logits; off: none.
        router_noise_in_eval: also in eval mode, as officially (the output is then random).
    """

    #: context tensors this head reads when the backbone offers them (see ``backbones.moce_ir.call_head``)
    context_keys = ("shared", "latent")

    def __init__(
        self,
        feature_info: Sequence[FeatureInfo],
        num_experts: int = 4,
        top_k: int = 1,
        rank: int = 2,
        rank_type: str = "spread",
        patch_size: int = 4,
        use_complexity: bool = False,
        complexity_scale: str = "max",
        frequency_source: str | None = "latent",
        balance_weight: float = 0.01,
        router_noise: bool = True,
        router_noise_in_eval: bool = True,
    ) -> None:
        super().__init__()
        if rank_type not in RANK_RULES:
            raise ValueError(f"rank_type must be one of {sorted(RANK_RULES)}, not {rank_type!r}")
        if complexity_scale not in ("max", "min", "none"):
            raise ValueError(f"complexity_scale must be 'max', 'min' or 'none', not {complexity_scale!r}")
        if num_experts < 2 or not 1 <= top_k <= num_experts:
            raise ValueError(f"need num_experts >= 2 and 1 <= top_k <= num_experts, got {num_experts}, {top_k}")
        source = next((f for f in feature_info if f.name == frequency_source), None)
        positions = [f for f in feature_info if f is not source]
        if not positions:
            raise ValueError("ExpertsHead needs at least one head position besides the frequency source")
        self.frequency_source = source.name if source is not None else None
        self.balance_weight = float(balance_weight)
        self.frequency = FrequencyEmbedding(source.channels) if source is not None else None

        patches = [patch_size * 2**i for i in range(num_experts)]
        self.layers = nn.ModuleDict()
        for info in positions:
            ranks = [RANK_RULES[rank_type](rank, i, num_experts, info.channels) for i in range(num_experts)]
            if min(ranks) < 1:
                raise ValueError(f"{info.name}: expert ranks {ranks} ({rank_type!r} at {info.channels} channels)")
            self.layers[info.name] = ExpertLayer(
                info.channels,
                ranks,
                patches,
                top_k,
                source.channels if source is not None else None,
                use_complexity,
                complexity_scale,
                router_noise,
                router_noise_in_eval,
            )

    def degradation_embeddings(self) -> dict[str, nn.Module]:
        """Each position's routing logits from its pooled feature (the frequency embedding's term, where there is
        one, is added after this layer and left out)."""
        return {f"{name}.routing": layer.router.gate for name, layer in self.layers.items()}

    def forward(
        self, name: str, feature: Tensor, image: Tensor, shared: Tensor | None = None, latent: Tensor | None = None
    ) -> tuple[Tensor, dict[str, Tensor]]:
        if name == self.frequency_source:
            return feature, {}
        if name not in self.layers:
            raise KeyError(f"ExpertsHead has no position {name!r}; built for {list(self.layers)}")
        frequency = None
        if self.frequency is not None:
            if latent is None:
                raise ValueError(f"ExpertsHead at {name!r} needs the latent (latent=) for its frequency embedding")
            frequency = self.frequency(latent)
        out, balance = self.layers[name](feature, feature if shared is None else shared, frequency)
        if balance is None:
            return out, {}
        return out, {"moe_balance": balance * (self.balance_weight / len(self.layers))}

    def routers(self) -> list[NoisyTopKRouter]:
        """The routers, in position order."""
        return [layer.router for layer in self.layers.values()]


def set_router_noise(module: nn.Module, source: RouterNoiseSource) -> None:
    """Use ``source`` for the noise of every router inside ``module`` (one shared callable, call order)."""
    routers = [m for m in module.modules() if isinstance(m, NoisyTopKRouter)]
    if not routers:
        raise ValueError(f"{type(module).__name__} holds no router")
    for router in routers:
        router.router_noise_source = source
