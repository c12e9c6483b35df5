"""``python -m src.analysis.mac``: which layers matter most for restoring what a mask hid (RAM's Mask Attribute
Conductance, Qin et al., ECCV 2024), ranked for ``strategy=ram_finetune``.

    python -m src.analysis.mac ckpt_path=<the ram_pretrain run>/checkpoints/last.ckpt
    python -m src.train strategy=ram_finetune model.strategy.ranking=<this run>/mac_ranking.json ...

For each degraded image the input is revealed along a path from nothing (zeros) towards the image: at step
``s`` of ``T`` a share ``alpha = 1 - r + r s / T`` of its pixels is shown, in a random order, each through a
steep sigmoid (``k``) of how far down the order it sits. The quantity explained is the output's total gradient
magnitude (``sum sqrt(dx^2 + dy^2)``, its detail), and each layer's conductance is the sum over steps of
``d quantity / d output_l`` at the new point times the change of the layer's output, ``mean |.|`` over its
elements, summed over images (DragonisCV/RAM ``scripts/mac_analysis.py``). A layer is a module that owns
parameters, in parameter order. The run folder gets ``mac_ranking.json`` (the layers in hook order with their
conductance and the ranking), ``mac_ranking.txt`` (names, most important first) and a bar chart of the top.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import hydra
import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from scipy.special import expit
from torch import Tensor, nn

from src.analysis.features import analysed_model, analysis_device, family_samples
from src.run.assemble import build
from src.run.config_tree import show_config
from src.run.from_checkpoint import overridden_groups
from src.utils.atomic import write_text_atomic
from src.utils.conf import CONF_DIR
from src.utils.errors import ConfigError, exit_on_user_error
from src.utils.run_dir import register_resolvers

log = logging.getLogger(__name__)
JSON_NAME = "mac_ranking.json"


def parameter_layers(parts: Mapping[str, nn.Module | None]) -> list[tuple[str, nn.Module]]:
    """``(name, module)`` of every module that owns parameters, in parameter order, named under each part's
    prefix (``net.``, ``head.``); a module owning top-level parameters of a part is left out (as officially)."""
    layers: list[tuple[str, nn.Module]] = []
    seen: set[str] = set()
    for prefix, root in parts.items():
        if root is None:
            continue
        modules = dict(root.named_modules())
        for name, _ in root.named_parameters():
            owner = name.rpartition(".")[0]
            full = f"{prefix}.{owner}"
            if owner and full not in seen:
                seen.add(full)
                layers.append((full, modules[owner]))
    return layers


def soft_mask(order: np.ndarray, alpha: float, k: float) -> np.ndarray:
    """The path's reveal mask over ``len(order)`` pixels: the first ``ceil(n alpha)`` of ``order`` shown through
    ``sigmoid(k (alpha - i / n))`` (the i-th in order), the rest hidden."""
    n = len(order)
    count = int(math.ceil(n * alpha))
    mask = np.zeros(n, dtype=np.float64)
    mask[order[:count]] = expit(k * (alpha - np.arange(count) / n))
    return mask


def detail(output: Tensor) -> Tensor:
    """The output's total gradient magnitude: ``sum sqrt(dx^2 + dy^2)`` over the (H-1) x (W-1) forward
    differences of every channel."""
    corner = output[..., :-1, :-1]
    down = corner - output[..., 1:, :-1]
    right = corner - output[..., :-1, 1:]
    return torch.sqrt(down * down + right * right).sum()


def _first_tensor(value: Any) -> Tensor | None:
    if isinstance(value, Tensor):
        return value
    if isinstance(value, list | tuple):
        for item in value:
            found = _first_tensor(item)
            if found is not None:
                return found
    return None


def conductance(forward: Callable[[Tensor], Tensor], layers: Sequence[tuple[str, nn.Module]], image: Tensor,
                order: np.ndarray, steps: int = 200, reveal: float = 0.5, k: float = 10000.0) -> np.ndarray:
    """Each layer's Mask Attribute Conductance for one image (``1 x C x H x W``) along the path ``order``."""
    outputs: dict[int, Tensor] = {}
    grads: dict[int, Tensor] = {}

    def hook(index: int) -> Callable:
        def keep(module: nn.Module, args: Any, output: Any) -> None:
            tensor = _first_tensor(output)
            if tensor is None or not tensor.requires_grad:
                return
            outputs[index] = tensor.detach()
            tensor.register_hook(lambda grad: grads.__setitem__(index, grad.detach()))
        return keep

    handles = [module.register_forward_hook(hook(i)) for i, (_, module) in enumerate(layers)]
    accumulated: dict[int, Tensor] = {}
    previous: dict[int, Tensor] = {}
    height, width = image.shape[-2:]
    try:
        for step in range(steps):
            alpha = 1.0 - reveal + reveal * step / steps
            mask = torch.from_numpy(soft_mask(order, alpha, k).reshape(height, width)).float().to(image.device)
            point = (image * mask).requires_grad_(True)
            outputs.clear()
            grads.clear()
            detail(forward(point)).backward()
            if step:
                for i in outputs:
                    if i in grads and i in previous:
                        change = grads[i] * (outputs[i] - previous[i])
                        accumulated[i] = accumulated[i] + change if i in accumulated else change
            previous = dict(outputs)
    finally:
        for handle in handles:
            handle.remove()
    values = np.zeros(len(layers))  # a layer whose output never needed a gradient conducts nothing
    for i, value in accumulated.items():
        values[i] = float(value.abs().mean())
    return values


def reveal_order(model: Any, kind: str, rng: np.random.RandomState) -> Callable[[Tensor], np.ndarray]:
    """How the path orders an image's pixels: ``random`` (RAM: one permutation per image) or ``adasam`` (RAM++:
    least likely to be masked first, by the mask generator a ``strategy=ram_plus_pretrain`` checkpoint holds)."""
    if kind == "random":
        return lambda image: rng.permutation(image.shape[-2] * image.shape[-1])
    if kind == "adasam":
        strategy = getattr(model, "strategy", None)
        if getattr(strategy, "mask_generator", None) is None:
            raise ConfigError("mac.order=adasam reveals in the order of RAM++'s mask generator: give ckpt_path= of a "
                              "strategy=ram_plus_pretrain run and keep its model (no model=... on the command line, "
                              "which rebuilds it without its strategy); this model has no mask generator")
        return strategy.reveal_order
    raise ConfigError(f"mac.order={kind!r}: expected random (RAM) or adasam (RAM++)")


def rank(layers: Sequence[str], values: np.ndarray) -> list[dict[str, Any]]:
    """Layers by conductance, highest first (ties in numpy's ``argsort`` order reversed, as officially)."""
    order = np.argsort(values)[::-1]
    return [{"rank": r, "index": int(i), "layer": layers[i], "conductance": float(values[i])}
            for r, i in enumerate(order)]


def run_mac(cfg: DictConfig, overridden: Iterable[str] = ()) -> dict[str, Any]:
    """Rank the layers of the configured model; writes the ranking files in ``cfg.paths.output_dir``."""
    options = cfg.mac
    out = Path(cfg.paths.output_dir)
    cfg, model, weights = analysed_model(cfg, overridden)
    show_config(cfg, out)
    device = analysis_device(str(options.device))
    model.eval().to(device)
    layers = parameter_layers({"net": model.net, "head": model.head})
    if not layers:
        raise ConfigError("the model owns no parameters: nothing to rank")
    samples = family_samples(build(cfg.data, "data"), int(options.per_family), int(cfg.seed))
    images = [image for family in sorted(samples) for image in samples[family]]
    rng = np.random.RandomState(int(cfg.seed))
    totals = np.zeros(len(layers))
    log.info("MAC: %d layers, %d images (%s per family), %d steps each", len(layers), len(images),
             options.per_family, options.steps)

    def forward(x: Tensor) -> Tensor:
        return model.net(x, head=model.head)[0]

    order_of = reveal_order(model, str(options.get("order", "random")), rng)
    for n, image in enumerate(images, 1):
        order = order_of(image.to(device))
        totals += conductance(forward, layers, image[None].to(device), order, int(options.steps),
                              float(options.reveal), float(options.k))
        log.info("MAC: image %d of %d", n, len(images))
    names = [name for name, _ in layers]
    record = {
        "model": OmegaConf.to_container(cfg.model, resolve=True).get("backbone", {}).get("_target_"),
        "weights": weights,
        "data": cfg.data.get("name"),
        "images": len(images),
        "protocol": {"steps": int(options.steps), "reveal": float(options.reveal), "k": float(options.k),
                     "order": str(options.get("order", "random")),
                     "seed": int(cfg.seed)},
        "layers_in_hook_order": names,
        "conductance_in_hook_order": totals.tolist(),
        "ranked": rank(names, totals),
    }
    write_text_atomic(out / JSON_NAME, json.dumps(record, indent=1) + "\n")
    write_text_atomic(out / "mac_ranking.txt", "\n".join(r["layer"] for r in record["ranked"]) + "\n")
    if options.pictures:
        write_bar_chart(out / "mac_ranking.png", record["ranked"][: int(options.top)])
    for row in record["ranked"][:10]:
        print(f"{row['rank']:3d}  {row['conductance']:.6g}  {row['layer']}")
    print(f"ranking of {len(names)} layers written to {out / JSON_NAME}")
    return record


def write_bar_chart(path: Path, ranked: Sequence[Mapping[str, Any]]) -> None:
    """The top layers' conductance as horizontal bars, most important on top."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 0.25 * len(ranked) + 1))
    ax.barh([r["layer"] for r in ranked][::-1], [r["conductance"] for r in ranked][::-1], color="tab:blue")
    ax.set_xlabel("mask attribute conductance")
    ax.set_title(f"the {len(ranked)} layers that matter most (RAM's MAC)")
    ax.tick_params(axis="y", labelsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="mac")
@exit_on_user_error
def main(cfg: DictConfig) -> None:
    run_mac(cfg, overridden_groups())


register_resolvers()

if __name__ == "__main__":
    main()
