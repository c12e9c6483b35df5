"""The IR-SDE (Luo et al., ICML 2023), the mean-reverting SDE DA-CLIP restores with (Algolzw's ``IRSDE``).

``dx = theta_t (mu - x) dt + sigma_t dw`` drifts a clean image ``x_0`` towards the degraded one ``mu`` while noise
grows to ``sigma_bar_T``; restoring runs it backwards. Its marginal is Gaussian:
``x_t ~ N(mu + (x_0 - mu) exp(-theta_bar_t dt), sigma_bar_t^2)`` with ``sigma_t^2 = 2 max_sigma^2 theta_t`` and
``sigma_bar_t^2 = max_sigma^2 (1 - exp(-2 theta_bar_t dt))``, ``theta_bar_t`` the cumulative sum of the schedule
(from 0 at t = 0) and ``dt = -log(eps) / theta_bar_T`` (so ``exp(-theta_bar_T dt) = eps``). The schedule is the
cosine one (``theta_t = 1 - alpha_bar`` of the improved-DDPM cosine, truncated at both ends), linear or
constant. Training matches one reverse SDE step of the predicted noise with the optimal ``x_{t-1}`` given ``x_0``
(an L1 "matching" loss); sampling runs the posterior ``x_{t-1} ~ N(mean(x_t, x_0_hat), std_t^2)`` from
``mu + max_sigma * z`` down to t = 1. With fewer sampling steps than training steps (``steps``) the schedule is
built for ``steps`` and the network sees the time rescaled to the training range, as the release's ``sample_T``.
All in float32, as the release computes it.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

SCHEDULES = ("cosine", "linear", "constant")


def theta_schedule(kind: str, steps: int) -> Tensor:
    """``steps + 1`` values of theta (index = time step 0 ... steps)."""
    if kind == "cosine":
        x = torch.linspace(0, steps + 2, steps + 3, dtype=torch.float32)
        alpha_bar = torch.cos(((x / (steps + 2)) + 0.008) / 1.008 * math.pi * 0.5) ** 2
        return 1 - (alpha_bar / alpha_bar[0])[1:-1]
    if kind == "linear":
        scale = 1000 / (steps + 1)
        return torch.linspace(scale * 1e-4, scale * 0.02, steps + 1, dtype=torch.float32)
    if kind == "constant":
        return torch.ones(steps + 1, dtype=torch.float32)
    raise ValueError(f"IR-SDE schedule {kind!r}: expected one of {SCHEDULES}")


class IRSDE(nn.Module):
    """The schedule (as buffers, outside the state dict) and the SDE's steps; ``mu`` is passed to each call."""

    def __init__(self, max_sigma: float = 50.0, steps: int = 100, schedule: str = "cosine", eps: float = 0.005,
                 sample_steps: int | None = None) -> None:
        super().__init__()
        if steps < 1 or (sample_steps is not None and sample_steps < 1):
            raise ValueError(f"IR-SDE steps must be >= 1, got steps={steps}, sample_steps={sample_steps}")
        self.max_sigma = max_sigma / 255 if max_sigma >= 1 else max_sigma
        self.steps = int(steps)
        self.sample_steps = int(sample_steps or steps)
        #: the network's time for step t of the sampling schedule is t * time_scale
        self.time_scale = self.steps / self.sample_steps
        thetas = theta_schedule(schedule, self.sample_steps)
        cumsum = torch.cumsum(thetas, dim=0) - thetas[0]
        dt = -1 / cumsum[-1] * math.log(eps)
        for name, value in (("thetas", thetas), ("sigmas", torch.sqrt(self.max_sigma**2 * 2 * thetas)),
                            ("thetas_cumsum", cumsum), ("dt", dt.reshape(1)),
                            ("sigma_bars", torch.sqrt(self.max_sigma**2 * (1 - torch.exp(-2 * cumsum * dt))))):
            self.register_buffer(name, value, persistent=False)

    # ------------------------------------------------------------------ the forward process
    def mu_bar(self, x0: Tensor, mu: Tensor, t: Tensor | int) -> Tensor:
        return mu + (x0 - mu) * torch.exp(-self.thetas_cumsum[t] * self.dt)

    def noisy_state(self, x0: Tensor, mu: Tensor, t: Tensor, noise: Tensor) -> Tensor:
        """``x_t`` of ``x0`` at steps ``t`` (B x 1 x 1 x 1) for the standard normal ``noise``."""
        return self.mu_bar(x0, mu, t) + self.sigma_bars[t] * noise

    def initial_state(self, mu: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Where sampling starts: ``mu + max_sigma * z`` (the release's ``noise_state``)."""
        noise = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        return mu + noise * self.max_sigma

    # ------------------------------------------------------------------ the reverse process
    def score(self, noise: Tensor, t: Tensor | int) -> Tensor:
        return -noise / self.sigma_bars[t]

    def x0_from_noise(self, xt: Tensor, noise: Tensor, mu: Tensor, t: Tensor | int) -> Tensor:
        return (xt - mu - self.sigma_bars[t] * noise) * torch.exp(self.thetas_cumsum[t] * self.dt) + mu

    def optimum_step(self, xt: Tensor, x0: Tensor, mu: Tensor, t: Tensor | int) -> Tensor:
        """The mean of ``x_{t-1}`` given ``x_t`` and ``x_0`` (the posterior mean)."""
        a = torch.exp(-self.thetas[t] * self.dt)
        b = torch.exp(-self.thetas_cumsum[t] * self.dt)
        c = torch.exp(-self.thetas_cumsum[t - 1] * self.dt)
        return a * (1 - c**2) / (1 - b**2) * (xt - mu) + c * (1 - a**2) / (1 - b**2) * (x0 - mu) + mu

    def optimum_std(self, t: Tensor | int) -> Tensor:
        a = torch.exp(-2 * self.thetas[t] * self.dt)
        b = torch.exp(-2 * self.thetas_cumsum[t] * self.dt)
        c = torch.exp(-2 * self.thetas_cumsum[t - 1] * self.dt)
        variance = (1 - a) * (1 - c) / (1 - b)
        return (0.5 * torch.log(torch.clamp(variance, min=1e-20 * self.dt))).exp() * self.max_sigma

    def sde_step_mean(self, xt: Tensor, score: Tensor, mu: Tensor, t: Tensor | int) -> Tensor:
        """One reverse-SDE step without its noise (what training matches with :meth:`optimum_step`)."""
        return xt - (self.thetas[t] * (mu - xt) - self.sigmas[t] ** 2 * score) * self.dt

    def posterior_step(self, xt: Tensor, noise: Tensor, mu: Tensor, t: int,
                       generator: torch.Generator | None = None) -> Tensor:
        mean = self.optimum_step(xt, self.x0_from_noise(xt, noise, mu, t), mu, t)
        z = torch.randn(xt.shape, generator=generator, device=xt.device, dtype=xt.dtype)
        return mean + self.optimum_std(t) * z

    def matching_loss(self, noise: Tensor, xt: Tensor, x0: Tensor, mu: Tensor, t: Tensor) -> Tensor:
        """The release's L1 matching loss: per image the mean |reverse SDE step - optimal x_{t-1}|, then the
        batch mean."""
        prediction = self.sde_step_mean(xt, self.score(noise, t), mu, t)
        target = self.optimum_step(xt, x0, mu, t)
        return (prediction - target).abs().flatten(1).mean(dim=1).mean()
