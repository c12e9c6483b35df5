"""The network under test, built from the suite's own Hydra configs so it is exactly the one training uses.

Only the parts the timed loop needs are kept (backbone, head, loss, optimiser factory); no Lightning Trainer
runs, so the timings hold the network, the loss and the optimiser step and nothing else.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch._dynamo
from torch import Tensor, nn

from src.training import speed
from src.training.speed import SpeedSettings
from src.utils.conf import CONF_DIR


def available_models() -> list[str]:
    """Names ``model=<name>`` accepts (the files of ``conf/model``, less the shared ``default.yaml``)."""
    return sorted(p.stem for p in (CONF_DIR / "model").glob("*.yaml") if p.stem != "default")


def check_models(names: Sequence[str]) -> None:
    """Raise a ``ValueError`` that lists the available models when a name is unknown."""
    known = available_models()
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"unknown model {', '.join(unknown)}; available models: {', '.join(known)}")


class Trainee(nn.Module):
    """The LightningModule's training objective as one ``(lq, gt) -> loss`` module, so a DDP wrapper sees every
    parameter in one forward; the loss is ``RestorationModule.training_loss`` itself, not a copy of it."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module

    @property
    def net(self) -> nn.Module:
        return self.module.net

    @property
    def head(self) -> nn.Module | None:
        return self.module.head

    def forward(self, lq: Tensor, gt: Tensor) -> Tensor:
        return self.module.training_loss({"lq": lq, "gt": gt, **self.module.example_fields(lq.shape[0])})[0]

    def restore(self, lq: Tensor) -> Tensor:
        """Inference as ``RestorationModule.forward`` computes it, but through the (possibly compiled) network
        itself, so ``--compile-inference`` can time compiled inference."""
        condition, _ = self.module.condition_for({"lq": lq, **self.module.example_fields(lq.shape[0])})
        return self.net(lq, head=self.head, **({} if condition is None else {"condition": condition}))[0]


class OfficialTrainee(nn.Module):
    """The official network under the suite's objective: ``(lq, gt) -> loss`` with the same loss module as ours,
    so the timed difference is the network (the networks with an official twin read nothing else of a batch)."""

    def __init__(self, official: nn.Module, loss: nn.Module,
                 call: Callable[[nn.Module, Tensor], tuple[Tensor, dict[str, Tensor]]]) -> None:
        super().__init__()
        self.official = official
        self.loss = loss
        self._call = call

    @property
    def net(self) -> nn.Module:
        return self.official

    @property
    def head(self) -> nn.Module | None:
        return None

    def forward(self, lq: Tensor, gt: Tensor) -> Tensor:
        pred, outputs = self._call(self.official, lq)
        return self.loss.objective(pred, {"lq": lq, "gt": gt}, outputs)[0]

    def restore(self, lq: Tensor) -> Tensor:
        return self._call(self.official, lq)[0]


@dataclass
class Built:
    """A network ready to time, with what is needed to make its optimiser."""

    trainee: Trainee | OfficialTrainee
    optimizer_factory: Callable[..., torch.optim.Optimizer]
    multiple: int
    parameters: int


def build(model: str, overrides: Sequence[str], settings: SpeedSettings, device: str, seed: int,
          official_code: Sequence[str] = (), official: bool = False) -> Built:
    """A fresh network of ``model=<model>`` (same seed, so every setting starts from the same weights). With
    ``official_code`` (folders of official repositories) the weights are the official network's initialisation
    converted into ours, and ``official`` times the official network itself."""
    from src.run.assemble import build_model, compose

    cfg = compose("train", [f"model={model}", *overrides])
    torch.manual_seed(seed)
    module = build_model(cfg)
    trainee: Trainee | OfficialTrainee = Trainee(module)
    if official_code:
        from src.bench import official as official_code_

        spec = official_code_.official_network(model)
        torch.manual_seed(seed)
        official_net = official_code_.build_official(spec, official_code_.find_root(spec, official_code))
        official_code_.convert_into(module, official_net, spec)
        if official:
            trainee = OfficialTrainee(official_net, module.loss, spec.call)
    trainee = trainee.to(device)
    prepare(trainee, settings)
    return Built(
        trainee=trainee,
        optimizer_factory=module.optimizer_factory,
        multiple=module.net.multiple,
        parameters=sum(p.numel() for p in trainee.parameters()),
    )


#: compiled variants one measurement may hold of one backbone class (train/eval, sizes, settings side by side)
RECOMPILE_LIMIT = 64


def forget_compiled() -> None:
    """Drop compiled code of earlier measurements (their networks are gone), so it never counts against the
    recompile limit of the next: past that limit dynamo silently runs eager, which would falsify the figures."""
    torch.compiler.reset()


def prepare(trainee: Trainee, settings: SpeedSettings) -> None:
    """Memory format for backbone and head, compilation of the backbone (which calls the head inside)."""
    if settings.channels_last and trainee.head is not None:
        trainee.head.to(memory_format=torch.channels_last)
    if settings.compile:
        # every instance of a backbone class shares its forward's code object, and so its compile cache
        torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, RECOMPILE_LIMIT)
    speed.prepare_network(trainee.net, settings)


def make_optimizer(built: Built, settings: SpeedSettings) -> torch.optim.Optimizer:
    """The config's optimiser on the trainable parameters, fused when the settings ask for it."""
    params = [p for p in built.trainee.parameters() if p.requires_grad]
    extra: dict[str, Any] = {"fused": True} if settings.fused_adamw else {}
    return built.optimizer_factory(params=params, **extra)
