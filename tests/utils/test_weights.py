"""Safe weight loading: wrappers, prefixes, safetensors, CUDA-saved files, and refusal of code pickles."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from src.utils.weights import UnsafeCheckpointError, UnusableCheckpointError, load_state_dict_file, strip_prefixes


@pytest.fixture
def weights() -> dict[str, torch.Tensor]:
    return {
        "conv.weight": torch.randn(4, 3, 3, 3),
        "conv.bias": torch.randn(4),
        "norm.steps": torch.tensor(7),
    }


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_raw_pth_round_trip(tmp_path: Path, weights) -> None:
    torch.save(weights, tmp_path / "w.pth")
    assert _same(load_state_dict_file(tmp_path / "w.pth"), weights)


def test_safetensors_round_trip(tmp_path: Path, weights) -> None:
    save_file(weights, tmp_path / "w.safetensors")
    assert _same(load_state_dict_file(tmp_path / "w.safetensors"), weights)


def test_lightning_ckpt_with_net_prefix(tmp_path: Path, weights) -> None:
    ckpt = {
        "epoch": 3,
        "global_step": 120,
        "state_dict": {f"net.{k}": v for k, v in weights.items()},
        "optimizer_states": [{"state": {}, "param_groups": [{"lr": 1e-3}]}],
        "hyper_parameters": {"lr": 1e-3},
    }
    torch.save(ckpt, tmp_path / "last.ckpt")
    assert _same(strip_prefixes(load_state_dict_file(tmp_path / "last.ckpt"), ("net.",)), weights)


@pytest.mark.parametrize("wrapper", ["params", "params_ema", "model", "state_dict"])
def test_framework_wrappers_are_removed(tmp_path: Path, weights, wrapper: str) -> None:
    torch.save({wrapper: weights, "iter": 10}, tmp_path / "w.pth")
    assert _same(load_state_dict_file(tmp_path / "w.pth"), weights)


def test_explicit_key_picks_one_of_several(tmp_path: Path, weights) -> None:
    other = {k: v + 1 for k, v in weights.items()}
    torch.save({"params": weights, "params_ema": other}, tmp_path / "w.pth")
    assert _same(load_state_dict_file(tmp_path / "w.pth"), other)
    assert _same(load_state_dict_file(tmp_path / "w.pth", key="params"), weights)
    with pytest.raises(KeyError, match="no 'ema' entry"):
        load_state_dict_file(tmp_path / "w.pth", key="ema")


def test_module_prefix_from_data_parallel(tmp_path: Path, weights) -> None:
    torch.save({f"module.{k}": v for k, v in weights.items()}, tmp_path / "w.pth")
    assert _same(strip_prefixes(load_state_dict_file(tmp_path / "w.pth"), ("module.",)), weights)


def test_strip_prefixes_is_explicit_and_never_overwrites(weights) -> None:
    nested = {f"net.module.{k}": v for k, v in weights.items()}
    assert _same(strip_prefixes(nested, ("net.", "module.")), weights)
    assert _same(strip_prefixes(weights, ("module.",)), weights)
    with pytest.raises(ValueError, match="two keys equal: 'conv.bias'"):
        strip_prefixes({"conv.bias": torch.zeros(1), "module.conv.bias": torch.zeros(1)}, ("module.",))


def test_a_pickle_that_needs_code_is_refused(tmp_path: Path, weights) -> None:
    path = tmp_path / "full_pickle.pth"
    torch.save({"state_dict": weights, "args": argparse.Namespace(lr=1)}, path)
    with pytest.raises(UnsafeCheckpointError, match=r"full_pickle\.pth is not a weights-only checkpoint"):
        load_state_dict_file(path)


def test_not_a_state_dict_is_an_error(tmp_path: Path) -> None:
    torch.save({"epoch": 3, "notes": ["a"]}, tmp_path / "w.pth")
    with pytest.raises(ValueError, match="no state dict found"):
        load_state_dict_file(tmp_path / "w.pth")
    with pytest.raises(FileNotFoundError):
        load_state_dict_file(tmp_path / "missing.pth")


def test_released_legacy_pickle_is_refused(shared_dir: Path) -> None:
    path = shared_dir / "data" / "weights" / "legacy_full_pickle_do_not_trust.pth"
    with pytest.raises(UnsafeCheckpointError) as err:
        load_state_dict_file(path)
    assert path.name in str(err.value) and "not a weights-only checkpoint" in str(err.value)


def test_cuda_saved_weights_load_on_cpu(shared_dir: Path) -> None:
    state = load_state_dict_file(shared_dir / "data" / "weights" / "zero_dce_epoch99.pth")
    assert "e_conv1.weight" in state
    assert all(t.device.type == "cpu" for t in state.values())


def test_model_prefix_of_kair_dncnn_is_kept(shared_dir: Path) -> None:
    state = load_state_dict_file(shared_dir / "data" / "weights" / "dncnn_25.pth")
    assert state and all(k.startswith("model.") for k in state)


@pytest.mark.parametrize("suffix", [".ckpt", ".pth", ".safetensors"])
@pytest.mark.parametrize("cut, reason", [(0, "is empty (0 bytes)"), (0.5, "cannot be read: ")])
def test_an_empty_or_truncated_file_is_one_line_naming_it(tmp_path: Path, weights, suffix, cut, reason) -> None:
    path = tmp_path / f"w{suffix}"
    if suffix == ".safetensors":
        save_file({k: v for k, v in weights.items() if v.ndim}, path)
    else:
        torch.save(weights, path)
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * cut)])
    with pytest.raises(UnusableCheckpointError) as err:
        load_state_dict_file(path)
    message = str(err.value)
    assert f"model.pretrained={path}" in message and reason in message and "\n" not in message
