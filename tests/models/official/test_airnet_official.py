"""Our AirNet computes the official function and loads official checkpoints (``shared/reference/airnet``).

The reference model is the full network (AirNet has no size arguments) with ``opt.batch_size = 1``; the
deformable convolutions run through ``torchvision.ops.deform_conv2d`` where the official code uses mmcv.
"""

from __future__ import annotations

from argparse import Namespace

import pytest
import torch

from src.models.official import from_official, load_strict
from src.models.official.airnet import batch_size_of, build, convert

TOL = 1e-5


@pytest.fixture(scope="module")
def ref(reference):
    return reference("airnet")


@pytest.fixture(scope="module")
def weights(ref) -> dict[str, torch.Tensor]:
    return ref.tensors("weights")


def _max_diff(model: torch.nn.Module, ref, output: str) -> float:
    with torch.no_grad():
        pred = model(ref.tensor("input"))
    return (pred - ref.tensor(output)).abs().max().item()


def test_main_vector(ref, weights) -> None:
    model = from_official("airnet", ref.meta["tiny_kwargs"], weights)
    assert not model.training
    assert all(k.startswith("net.") for k in model.state_dict())
    assert len(model.state_dict()) == ref.meta["tiny_state_dict_tensors"]
    assert sum(p.numel() for p in model.parameters()) == ref.meta["tiny_param_count"] == 8_930_313
    assert _max_diff(model, ref, "output") < TOL


def test_perturbed_vector(ref, weights) -> None:
    """Non-zero offsets (sub-pixel and out-of-image taps) and non-trivial BatchNorm statistics."""
    overrides = ref.tensors("perturbed_overrides")
    assert set(overrides) <= set(weights)
    assert any("conv_offset_mask" in k for k in overrides)
    model = from_official("airnet", ref.meta["tiny_kwargs"], {**weights, **overrides})
    assert _max_diff(model, ref, "perturbed_output") < TOL


def test_paper_checkpoint_fits(ref) -> None:
    """The 5-task configuration (batch 5: queue 256 x 1280) loads strictly; 8.93M parameters, 7.61M trained."""
    (config,) = ref.default_keys["configs"]
    assert config["kwargs"] == {"opt": {"batch_size": 5}}
    with torch.device("meta"):
        model = build(config["kwargs"])
        official = {e["key"]: torch.empty(e["shape"]) for e in config["state_dict"]}
    assert official["E.E.queue"].shape == (256, 1280)
    assert sum(p.numel() for p in model.parameters()) == config["params"]
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) == 7_610_377
    load_strict(model, convert(official), source=config["config"])


def test_queue_size_follows_the_batch_size(weights) -> None:
    """A checkpoint saved with another batch size fits only a model built with it (the queue length differs)."""
    with torch.device("meta"):
        three = build({"opt": {"batch_size": 3}})
    assert three.net.encoder.queue.shape == (256, 768)
    with pytest.raises(ValueError, match=r"shape mismatches.*net\.encoder\.queue: checkpoint \(256, 256\)"):
        load_strict(three, convert(weights))


def test_wrong_key_or_shape_is_named(ref, weights) -> None:
    kwargs = ref.meta["tiny_kwargs"]
    renamed = dict(weights)
    renamed["R.body.0.body.0.dgm1.dcn.conv_offset.weight"] = renamed.pop(
        "R.body.0.body.0.dgm1.dcn.conv_offset_mask.weight"
    )
    with pytest.raises(ValueError, match=r"missing keys.*net\.restorer\.groups\.0\.blocks\.0\.dgm1\.dcn\.offset_mask"
                                         r"\.weight") as err:
        from_official("airnet", kwargs, renamed)
    assert "unexpected keys (1): R.body.0.body.0.dgm1.dcn.conv_offset.weight" in str(err.value)
    with pytest.raises(ValueError, match=r"unexpected keys \(1\): E\.E\.extra"):
        from_official("airnet", kwargs, {**weights, "E.E.extra": torch.zeros(1)})


def test_key_mapping() -> None:
    names = [
        "R.head.0.weight", "R.body.2.body.4.dgm2.sft.conv_beta.2.weight", "R.body.2.body.5.bias", "R.body.5.weight",
        "E.E.encoder_k.E.1.backbone.4.num_batches_tracked", "E.E.encoder_q.E_pre.shortcut.1.running_var",
        "E.E.encoder_q.mlp.2.bias", "E.E.queue_ptr",
    ]
    converted = convert({n: torch.zeros(1) for n in names})
    assert list(converted) == [
        "net.restorer.head.weight", "net.restorer.groups.2.blocks.4.dgm2.sft.beta.2.weight",
        "net.restorer.groups.2.conv.bias", "net.restorer.conv.weight",
        "net.encoder.key.down.1.residual.4.num_batches_tracked", "net.encoder.query.stem.shortcut.1.running_var",
        "net.encoder.query.mlp.2.bias", "net.encoder.queue_ptr",
    ]


def test_official_arguments() -> None:
    assert batch_size_of({"opt": {"batch_size": 5}}) == 5
    assert batch_size_of({"batch_size": 3}) == 3
    assert batch_size_of({"opt": Namespace(batch_size=2, lr=1e-3, cuda=0)}) == 2  # other options are ignored
    with pytest.raises(ValueError, match="needs opt.batch_size"):
        batch_size_of({"opt": {}})
    with pytest.raises(ValueError, match="unknown official AirNet arguments: dim"):
        batch_size_of({"opt": {"batch_size": 1}, "dim": 256})
    with pytest.raises(ValueError, match="already set"):
        build({"batch_size": 1}, queue_size=8)
