"""LED's strategies: pre-training sends each camera's samples through its branch; fine-tuning trains the
generalised branch, then the parallel convolutions, nothing else; the result folds into the plain U-Net."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from src.models.backbones.led_unet import LedUNet
from src.models.layers.repnr import RepNRConv2d, deploy, set_camera
from src.run.assemble import build_model
from src.train import train
from src.utils.errors import ConfigError
from tests.conftest import compose

RUN = ["trainer=cpu", "logger=none", "callbacks.progress_bar=null", "callbacks.model_summary=null", "metrics=raw",
       "data=raw_synthetic", "data.patch_size=16", "data.batch_size=4", "data.samples_per_epoch=8",
       "data.embedded_max_side=96", "data.synthetic_ratios=[100]", "trainer.max_epochs=1", "test=false",
       "model/scheduler=none"]


def _module(tmp_path, *overrides):
    torch.manual_seed(0)
    return build_model(compose("train", ["model=led_repnr_tiny", *RUN, *overrides], tmp_path))


def test_pretraining_loss_is_the_size_weighted_mean_of_each_cameras_loss(tmp_path) -> None:
    module = _module(tmp_path, "strategy=led_pretrain")
    with torch.no_grad():  # cameras that differ (they start alike)
        for layer in (m for m in module.net.modules() if isinstance(m, RepNRConv2d)):
            for i, (scale, shift) in enumerate(zip(layer.align_weights, layer.align_biases)):
                scale.fill_(1 + 0.2 * i)
                shift.fill_(0.05 * i)
    generator = torch.Generator().manual_seed(1)
    lq, gt = torch.rand(5, 4, 32, 32, generator=generator), torch.rand(5, 4, 32, 32, generator=generator)
    cameras = torch.tensor([3, 0, 3, 1, 3])
    total, _ = module.training_loss({"lq": lq, "gt": gt, "family": ["raw"] * 5, "camera": cameras})
    expected = 0.0
    for camera in (0, 1, 3):
        rows = cameras == camera
        set_camera(module.net, camera)
        expected += F.l1_loss(module.net(lq[rows])[0], gt[rows]) * rows.sum() / 5
    assert torch.allclose(total, expected)
    set_camera(module.net, 0)
    assert not torch.allclose(total, F.l1_loss(module.net(lq)[0], gt))  # one camera for all would differ
    layer = next(m for m in module.net.modules() if isinstance(m, RepNRConv2d))
    assert not layer.align_weights[-1].requires_grad and layer.align_weights[0].requires_grad


def test_pretraining_refuses_a_plain_network_and_data_without_cameras(tmp_path) -> None:
    with pytest.raises(ConfigError, match="RepNR"):
        build_model(compose("train", ["model=led_tiny", "strategy=led_pretrain", *RUN], tmp_path))
    module = _module(tmp_path, "strategy=led_pretrain")
    with pytest.raises(ConfigError, match="camera"):
        module.training_loss({"lq": torch.rand(1, 4, 16, 16), "gt": torch.rand(1, 4, 16, 16), "family": ["raw"]})
    with pytest.raises(ConfigError, match="aux=true"):
        _module(tmp_path, "strategy=led_finetune")


def _tensors(path):
    state = torch.load(path, map_location="cpu", weights_only=True)["state_dict"]
    return {k: v for k, v in state.items() if k.startswith("net.")}


@pytest.mark.slow  # three training runs
def test_pretrain_then_finetune_in_two_phases_then_deploy(tmp_path) -> None:
    pre = tmp_path / "pre"
    train(compose("train", ["model=led_repnr_tiny", "strategy=led_pretrain", *RUN], pre))
    pretrained = _tensors(pre / "checkpoints" / "last.ckpt")
    # evaluation set the generalised branch to the cameras' mean, and the checkpoint holds it
    mean = torch.stack([pretrained[f"net.conv1_1.align_weights.{i}"] for i in range(5)]).mean(0)
    assert torch.allclose(pretrained["net.conv1_1.align_weights.5"], mean)

    def finetune(folder, align_steps):
        train(compose("train", ["model=led_repnr_tiny", "model.backbone.aux=true", "strategy=led_finetune",
                                f"model.strategy.align_steps={align_steps}", "model.strategy.aux_lr=1e-3",
                                f"model.pretrained={pre / 'checkpoints' / 'last.ckpt'}", *RUN], folder))
        return _tensors(folder / "checkpoints" / "last.ckpt")

    aligned = finetune(tmp_path / "align", align_steps=2)  # 2 steps (8 samples of 4): alignment only
    both = finetune(tmp_path / "both", align_steps=1)  # 1 step of alignment, then 1 of the parallel convolutions
    generalised = [k for k in pretrained if ".align_weights.5" in k or ".align_biases.5" in k]
    for key, value in pretrained.items():
        if key not in generalised:  # main kernels, camera branches: frozen in both runs
            assert torch.equal(aligned[key], value) and torch.equal(both[key], value), key
    # the generalised branch trains (the deepest layers of an untrained tiny U-Net get gradients too small for
    # Adam to move a float32 1.0 in two steps)
    assert "net.conv1_1.align_weights.5" in [k for k in generalised if not torch.equal(aligned[k], pretrained[k])]
    aux = [k for k in both if ".aux_" in k]
    assert aux and all(not aligned[k].any() for k in aux)  # zero-initialised, untouched in the alignment phase
    assert any(both[k].any() for k in aux)

    net = LedUNet(channels=8, cameras=5, aux=True)
    net.load_state_dict({k.removeprefix("net."): v for k, v in both.items()})
    x = torch.rand(1, 4, 40, 48, generator=torch.Generator().manual_seed(2))
    set_camera(net, -1)
    with torch.no_grad():
        expected = net(x)[0]
        plain = deploy(net)
        assert not any(isinstance(m, RepNRConv2d) for m in plain.modules())
        assert torch.allclose(plain(x)[0], expected, atol=1e-5)
        assert set(plain.state_dict()) == set(LedUNet(channels=8).state_dict())  # model=led loads it
