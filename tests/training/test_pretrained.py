"""``model.pretrained=PATH`` with official releases in every format they ship in, and our own checkpoints."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file

from src.run.assemble import build_model
from tests.conftest import compose

#: our restormer_tiny config sized like the reference's tiny official model (dim 8)
TINY_OFFICIAL = ["model=restormer_tiny", "model.backbone.dim=8"]


def _build(tmp_path, path):
    return build_model(compose("train", [*TINY_OFFICIAL, f"model.pretrained={path}"], tmp_path)).eval()


def _save(kind: str, state: dict, path):
    if kind == "lightning_ckpt":
        torch.save({"state_dict": {f"net.{k}": v for k, v in state.items()}, "epoch": 3}, path)
    elif kind == "raw_pth":
        torch.save(state, path)
    elif kind == "module_prefix":
        torch.save({f"module.{k}": v for k, v in state.items()}, path)
    elif kind == "params_wrapper":
        torch.save({"params": state}, path)
    elif kind == "safetensors":
        save_file({k: v.contiguous() for k, v in state.items()}, str(path))


@pytest.mark.parametrize("kind", ["lightning_ckpt", "raw_pth", "module_prefix", "params_wrapper", "safetensors"])
def test_official_restormer_weights_load_in_every_release_format(kind, tmp_path, reference):
    ref = reference("restormer")
    path = tmp_path / ("w.safetensors" if kind == "safetensors" else "w.pth")
    _save(kind, ref.tensors("weights"), path)
    model = _build(tmp_path, path)
    with torch.no_grad():
        out = model(ref.tensor("input"))
    assert (out - ref.tensor("output")).abs().max() < 1e-5


def test_our_own_checkpoint_round_trips(tmp_path):
    first = build_model(compose("train", TINY_OFFICIAL, tmp_path))
    torch.save({"state_dict": first.state_dict()}, tmp_path / "ours.ckpt")
    second = _build(tmp_path, tmp_path / "ours.ckpt")
    x = torch.rand(1, 3, 24, 24)
    with torch.no_grad():
        assert torch.equal(first.eval()(x), second(x))


def test_a_file_that_fits_nothing_lists_the_keys(tmp_path):
    torch.save({"conv.weight": torch.zeros(3, 3, 3, 3)}, tmp_path / "bad.pth")
    with pytest.raises(ValueError, match="conv.weight"):
        _build(tmp_path, tmp_path / "bad.pth")


def test_a_pickled_object_checkpoint_is_refused(tmp_path, shared_dir):
    legacy = shared_dir / "data" / "weights" / "legacy_full_pickle_do_not_trust.pth"
    with pytest.raises(ValueError, match="legacy_full_pickle_do_not_trust"):
        _build(tmp_path, legacy)


def test_model_official_can_only_name_a_converter_of_the_suite():
    """``model.official`` is a dotted path, but only into src.models.official: a stored config cannot make the
    loader import anything else."""
    from src.models.official import available, converter_module

    assert converter_module("src.models.official.restormer") is converter_module("restormer")
    assert {"restormer", "promptir", "zero_dce"} <= set(available()) and "wrapper" not in available()
    for name in ("os", "builtins.exec", "src.models.official..wrapper", "src.models.official.os.path", "../x",
                 "src.models.official.wrapper"):
        with pytest.raises(KeyError, match="names no converter module of src.models.official"):
            converter_module(name)


def test_a_mismatch_is_grouped_with_its_likely_fix(tmp_path):
    """Released BN-folded DnCNN weights into the batch-norm network: a few lines naming the fix, not 200 keys."""
    from src.models.backbones.dncnn import DnCNN
    from src.models.official import load_strict

    folded = DnCNN(batch_norm=False).state_dict()
    with pytest.raises(ValueError) as err:
        load_strict(DnCNN(batch_norm=True), folded, source="model.pretrained=dncnn_25.pth")
    message = str(err.value)
    assert len(message) < 1000 and len(message.splitlines()) == 3, message
    assert "missing keys (75): body.*.norm.bias (x15), " in message and "body.*.norm.weight (x15)" in message
    assert "likely fix: every missing key belongs to a batch norm" in message and "batch_norm=false" in message


@pytest.mark.parametrize("name", ["edsr", "rcan"])
def test_super_resolution_releases_load_and_fine_tune_other_scales_from_x2(name, tmp_path, reference, caplog):
    """The released .pt files are plain state dicts; x3/x4 start from x2 weights with the up-sampler left fresh
    (``model.pretrained_lax``), as the official loaders do, and only where asked."""
    ref = reference(name)
    path = tmp_path / f"{name}_x2.pt"
    torch.save(ref.tensors("weights"), path)
    model = build_model(compose("train", [f"model={name}_tiny", f"model.pretrained={path}"], tmp_path)).eval()
    with torch.no_grad():
        assert (model(ref.tensor("input")) - ref.tensor("output")).abs().max() < 1e-5
    x4 = [f"model={name}_tiny", "model.backbone.scale=4", f"model.pretrained={path}"]
    fresh = r"net\.upsample\.1\.conv\.bias, net\.upsample\.1\.conv\.weight"
    with pytest.raises(ValueError, match=r"missing keys \(2\): " + fresh):
        build_model(compose("train", x4, tmp_path))
    with caplog.at_level("INFO"):
        model = build_model(compose("train", [*x4, "model.pretrained_lax=[net.upsample.]"], tmp_path))
    assert "net.upsample.1.conv.bias, net.upsample.1.conv.weight" in caplog.text
    weights = ref.tensors("weights")
    assert torch.equal(model.net.upsample[0].conv.weight, weights["tail.0.0.weight"])  # same shape: copied
    assert torch.equal(model.net.body[0].conv1.weight if name == "edsr" else model.net.body[0].blocks[0].conv1.weight,
                       weights["body.0.body.0.weight"] if name == "edsr" else weights["body.0.body.0.body.0.weight"])


def test_the_released_instructir_layout_loads(tmp_path, reference):
    """im_instructir-7d.pt is a plain state dict; the model is then called with the instruction embedding."""
    ref = reference("instructir")
    path = tmp_path / "im_instructir.pt"
    torch.save(ref.tensors("weights"), path)
    model = build_model(compose("train", ["model=instructir_tiny", f"model.pretrained={path}"], tmp_path)).eval()
    inputs = ref.tensors("input")
    with torch.no_grad():
        out = model(inputs["input"], condition=inputs["text_embedding"])
    assert (out - ref.tensor("output")).abs().max() < 1e-5


def test_the_official_instruction_head_loads_into_the_instruction_module(tmp_path, reference):
    ref = reference("instructir")
    path = tmp_path / "lm_instructir-7d.pt"
    torch.save(ref.tensors("lm_head_weights"), path)
    model = build_model(compose("train", ["model=instructir_tiny", f"model.instruction_pretrained={path}"], tmp_path))
    io = ref.tensors("lm_head_io")
    with torch.no_grad():
        embedding, logits = model.instruction.head(io["sentence_embedding"])
    assert (embedding - io["text_embedding"]).abs().max() < 1e-5 and (logits - io["deg_pred"]).abs().max() < 1e-5
    torch.save({"fc1.weight": torch.zeros(3, 3)}, path)
    with pytest.raises(Exception, match="instruction_pretrained"):
        build_model(compose("train", ["model=instructir_tiny", f"model.instruction_pretrained={path}"], tmp_path))
