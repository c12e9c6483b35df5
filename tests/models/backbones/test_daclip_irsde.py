"""DA-CLIP's IR-SDE restorer: the sampler reaches the clean image with an oracle noise, fewer steps rescale the
time, tiles bound the memory, sampling is repeatable and in float32, training draws what a resumed run draws."""

from __future__ import annotations

import pytest
import torch

from src.models.backbones.daclip_irsde import DaclipIRSDE, tile_windows
from src.models.layers.irsde import IRSDE
from src.strategies.irsde import IRSDETraining


@pytest.mark.parametrize("steps", [100, 20])
def test_posterior_sampling_with_the_true_noise_returns_the_clean_image(steps: int) -> None:
    """With the noise that made x_t, x_0's estimate is exact and every posterior step is the true posterior:
    sampling from mu + max_sigma z ends at x_0 (up to the last step's std, 1e-11)."""
    sde = IRSDE(50, 100, "cosine", 0.005, sample_steps=steps)
    generator = torch.Generator().manual_seed(0)
    x0, mu = torch.rand(1, 3, 16, 16, generator=generator), torch.rand(1, 3, 16, 16, generator=generator)
    x = sde.initial_state(mu, generator)
    for t in range(steps, 0, -1):
        oracle = (x - sde.mu_bar(x0, mu, t)) / sde.sigma_bars[t]
        x = sde.posterior_step(x, oracle, mu, t, generator)
    assert (x - x0).abs().max() < 1e-4
    assert sde.time_scale == 100 / steps and sde.thetas.shape == (steps + 1,)
    assert torch.allclose(torch.exp(-sde.thetas_cumsum[-1] * sde.dt), torch.tensor(0.005), rtol=1e-4)


def tiny(**options) -> DaclipIRSDE:
    torch.manual_seed(0)
    return DaclipIRSDE(width=32, multipliers=(1, 1, 1, 1), sample_steps=3, **options).eval()


def test_sampling_is_repeatable_float32_and_tiles_cover_the_image() -> None:
    net = tiny()
    lq = torch.rand(1, 3, 40, 56, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        first, second = net(lq)[0], net(lq)[0]
        with torch.autocast("cpu", dtype=torch.bfloat16):
            autocast = net(lq)[0]
    assert torch.equal(first, second) and torch.equal(first, autocast) and first.dtype == torch.float32
    assert tile_windows(56, 32, 8) == [0, 24] and tile_windows(20, 32, 8) == [0]
    tiled = tiny(tile=32, tile_overlap=16)
    whole_noise = net.predict_noise(lq, lq, 50.0, net.contexts(lq))
    with torch.no_grad():
        restored = tiled(lq)[0]
        tiled_noise = tiled.predict_noise(lq, lq, 50.0, net.contexts(lq))
    assert restored.shape == lq.shape and torch.isfinite(restored).all()
    # away from the tile borders the convolutions see what they see whole; the global attention does not
    assert (tiled_noise - whole_noise).abs().mean() < whole_noise.abs().mean()
    with pytest.raises(ValueError, match="larger than tile_overlap"):
        tiny(tile=16, tile_overlap=16)


class _Module:
    """What the strategy reads of the LightningModule."""

    def __init__(self, net, step):
        self.net, self.global_step, self._trainer = net, step, None

    def complete_objective(self, total, terms, batch, aux, intent):
        return total, terms


def test_training_matches_one_reverse_step_with_draws_keyed_by_the_step() -> None:
    net = tiny().train()
    generator = torch.Generator().manual_seed(2)
    batch = {"lq": torch.rand(2, 3, 32, 32, generator=generator), "gt": torch.rand(2, 3, 32, 32, generator=generator)}
    strategy = IRSDETraining(seed=3)
    first, terms = strategy.training_loss(_Module(net, 7), batch)
    again, _ = strategy.training_loss(_Module(net, 7), batch)
    other, _ = strategy.training_loss(_Module(net, 8), batch)
    assert torch.equal(first, again) and not torch.equal(first, other)
    # the same objective written out: the strategy's draws, then the release's formulas
    draws = torch.Generator().manual_seed((3 * 1_000_003 + 7 * 7919) % 2**63)
    t = torch.randint(1, 101, (2, 1, 1, 1), generator=draws)
    z = torch.randn(batch["gt"].shape, generator=draws)
    sde, lq, gt = net.sde, batch["lq"], batch["gt"]
    xt = sde.mu_bar(gt, lq, t) + sde.sigma_bars[t] * z
    content, degradation = net.contexts(lq)
    noise = net.unet(xt, lq, t.reshape(-1), degradation, content)
    step = xt - (sde.thetas[t] * (lq - xt) + sde.sigmas[t] ** 2 * noise / sde.sigma_bars[t]) * sde.dt
    assert torch.allclose(first, (step - sde.optimum_step(xt, gt, lq, t)).abs().mean(), atol=1e-6)
    assert set(terms) == {"irsde/matching_l1"}
    first.backward()
    assert net.unet.prompt.grad is not None and net.unet.final_conv.weight.grad.abs().sum() > 0


def test_daclip_names_degradations_by_its_text_tower(tmp_path, reference) -> None:
    """The degradation embedding against the text embeddings of DA-CLIP's ten names (open_clip's tokenizer and
    text transformer, filled from the checkpoint's clip.* text keys); the probe scores it per family."""
    pytest.importorskip("open_clip")
    from open_clip.tokenizer import SimpleTokenizer
    from open_clip.transformer import TextTransformer
    from safetensors.torch import save_file

    from src.analysis.probe import zero_shot_record
    from src.models.layers.clip_text import DACLIP_DEGRADATIONS

    ref = reference("daclip_controller")
    text = {"context_length": 16, "width": 32, "heads": 2, "layers": 1, "output_dim": 512}
    torch.manual_seed(0)
    tower = TextTransformer(**{"vocab_size": 49408, **text}).eval()
    path = tmp_path / "daclip.safetensors"
    save_file({**ref.tensors("weights"), **{f"clip.{k}": v.contiguous() for k, v in tower.state_dict().items()}},
              str(path))
    net = DaclipIRSDE(width=32, multipliers=(1, 1, 1, 1), encoder="daclip", clip_weights=str(path),
                      clip_vision=ref.meta["tiny_kwargs"]["vision"], clip_text=text)
    images = torch.rand(3, 3, 64, 64)
    names, scores = net.classify(images)
    with torch.no_grad():
        tokens = SimpleTokenizer(context_length=16)(list(DACLIP_DEGRADATIONS))
        words = torch.nn.functional.normalize(tower(tokens), dim=-1)
        _, degradation = net.contexts(images)
    assert names == DACLIP_DEGRADATIONS and scores.shape == (3, 10)
    assert torch.allclose(scores, torch.nn.functional.normalize(degradation, dim=-1) @ words.T, atol=1e-5)
    record = zero_shot_record(net, {"haze": list(images), "unknown": list(images)}, torch.device("cpu"))
    assert set(record["per_family"]) == {"haze"} and record["names"] == {"haze": "hazy"}
    assert record["accuracy"] == float((scores.argmax(1) == DACLIP_DEGRADATIONS.index("hazy")).float().mean())
    with pytest.raises(ValueError, match="encoder=daclip"):
        tiny().classify(images)
