"""A checkpoint is data: no route through ``src.eval``, ``src.restore`` or ``model.pretrained`` runs code it names.

Each test crafts a checkpoint the way an attacker would (it passes ``weights_only=True``) and asserts that the
marker file its code would create never appears, and that the refusal names the offending key.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from src.eval import evaluate
from src.restore import restore
from src.run.assemble import build_model
from src.run.from_checkpoint import STORED_KEY, run_config
from src.run.stored_config import StoredConfigError, allowed_targets
from src.utils.weights import UnsafeCheckpointError, UnusableCheckpointError
from tests.conftest import compose

ROOT = Path(__file__).resolve().parents[2]
TINY = ["model=restormer_tiny", "model.backbone.dim=8", "trainer=cpu", "logger=none"]
#: the stored data of the genuine checkpoint: one family, small test images (the stored group is what eval uses)
SMALL_DATA = ["data.families=[noise]", "data.test_source.max_side=48"]


class _Payload:
    """Pickled into a file: unpickling it creates the marker (what ``torch.load(weights_only=False)`` would do)."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.fixture(scope="module")
def genuine(tmp_path_factory) -> dict:
    """A real checkpoint's content (tiny Restormer weights and its stored run config)."""
    folder = tmp_path_factory.mktemp("genuine")
    cfg = compose("eval", [*TINY, *SMALL_DATA], folder)
    model = build_model(cfg)
    return {"state_dict": model.state_dict(), STORED_KEY: run_config(cfg)}


def _craft(tmp_path: Path, genuine: dict, group: str, node: dict) -> Path:
    stored = {**genuine[STORED_KEY], group: node}
    path = tmp_path / "crafted.ckpt"
    torch.save({"state_dict": genuine["state_dict"], STORED_KEY: stored}, path)
    torch.load(path, weights_only=True)  # the file passes the pickle guard: only the config check can stop it
    return path


def _routes(marker: Path, payload: Path) -> dict[str, tuple[str, dict]]:
    """Injection routes: (group, stored node) per name."""
    return {
        "open_truncates_a_file": ("model", {"_target_": "builtins.open", "file": str(marker), "mode": "w"}),
        "torch_load_runs_a_pickle": ("model", {"_target_": "torch.load", "f": str(payload), "weights_only": False}),
        "nested_target_in_the_backbone": (
            "model",
            {"_target_": "src.training.restoration_module.RestorationModule",
             "backbone": {"_target_": "builtins.exec", "_args_": [f"open({str(marker)!r}, 'w')"]}},
        ),
        "data_target": ("data", {"_target_": "builtins.open", "file": str(marker), "mode": "w"}),
        "metrics_target": ("metrics", {"_target_": "builtins.open", "file": str(marker), "mode": "w"}),
        "a_target_of_another_group": (
            "model", {"_target_": "lightning.pytorch.loggers.csv_logs.CSVLogger", "save_dir": str(marker)}
        ),
        "target_inside_a_list": ("data", {"_target_": "src.data.synthetic_mix.synthetic_datamodule",
                                          "extra": [{"_target_": "os.system", "_args_": [f"touch {marker}"]}]}),
    }


ROUTES = list(_routes(Path("m"), Path("p")))


@pytest.fixture
def marker_and_payload(tmp_path: Path) -> tuple[Path, Path]:
    marker, payload = tmp_path / "marker", tmp_path / "payload.pt"
    torch.save(_Payload(marker), payload)
    assert not marker.exists()
    return marker, payload


@pytest.mark.parametrize("route", ROUTES)
def test_eval_refuses_a_stored_target_the_conf_tree_does_not_place_there(tmp_path, genuine, route,
                                                                         marker_and_payload):
    marker, payload = marker_and_payload
    group, node = _routes(marker, payload)[route]
    ckpt = _craft(tmp_path, genuine, group, node)
    cfg = compose("eval", [*TINY, f"ckpt_path={ckpt}"], tmp_path / "run")
    with pytest.raises(StoredConfigError, match=rf"ckpt_path=.*crafted\.ckpt: stored config key `{group}\S*_target_`"):
        evaluate(cfg)
    assert not marker.exists()


@pytest.mark.parametrize("route", ["open_truncates_a_file", "torch_load_runs_a_pickle"])
def test_restore_refuses_it_too(tmp_path, genuine, route, marker_and_payload):
    marker, payload = marker_and_payload
    ckpt = _craft(tmp_path, genuine, *_routes(marker, payload)[route])
    photo = tmp_path / "in" / "a.png"
    photo.parent.mkdir()
    from PIL import Image

    Image.new("RGB", (8, 8)).save(photo)
    cfg = compose("restore", [*TINY[:2], f"ckpt_path={ckpt}", f"input={photo.parent}", f"output={tmp_path / 'out'}"],
                  tmp_path / "run")
    with pytest.raises(StoredConfigError, match="stored config key `model._target_`"):
        restore(cfg)
    assert not marker.exists()


def test_a_group_named_on_the_command_line_is_not_read_from_the_checkpoint(tmp_path, genuine, marker_and_payload):
    """The user's own choice replaces the stored group, so the crafted part is never looked at, let alone built."""
    marker, payload = marker_and_payload
    ckpt = _craft(tmp_path, genuine, "metrics", {"_target_": "builtins.open", "file": str(marker), "mode": "w"})
    cfg = compose("eval", [*TINY, f"ckpt_path={ckpt}"], tmp_path / "run")
    record = evaluate(cfg, overridden={"metrics"})
    assert record["metrics"] == "promptir"
    assert not marker.exists()


def test_interpolations_and_non_plain_values_are_refused(tmp_path, genuine):
    node = {**genuine[STORED_KEY]["model"], "pretrained": "${oc.env:HOME}"}
    ckpt = _craft(tmp_path, genuine, "model", node)
    with pytest.raises(StoredConfigError, match=r"`model.pretrained` holds the interpolation"):
        evaluate(compose("eval", [*TINY, f"ckpt_path={ckpt}"], tmp_path / "run"))
    ckpt = _craft(tmp_path, genuine, "model", {**genuine[STORED_KEY]["model"], "official": torch.zeros(1)})
    with pytest.raises(StoredConfigError, match=r"`model.official` holds a Tensor"):
        evaluate(compose("eval", [*TINY, f"ckpt_path={ckpt}"], tmp_path / "run"))


def test_a_full_pickle_checkpoint_is_refused_before_unpickling(tmp_path, genuine, marker_and_payload):
    marker, _ = marker_and_payload
    ckpt = tmp_path / "pickle.ckpt"
    torch.save({"state_dict": genuine["state_dict"], STORED_KEY: genuine[STORED_KEY], "x": _Payload(marker)}, ckpt)
    with pytest.raises(UnsafeCheckpointError, match="unpickling it would import code"):
        evaluate(compose("eval", [*TINY, f"ckpt_path={ckpt}"], tmp_path / "run"))
    with pytest.raises(UnsafeCheckpointError):
        build_model(compose("eval", [*TINY, f"model.pretrained={ckpt}"], tmp_path / "run2"))
    assert not marker.exists()


def test_pretrained_reads_only_the_tensors_of_a_crafted_checkpoint(tmp_path, genuine, marker_and_payload):
    """``model.pretrained`` never looks at a stored config: the crafted targets are ignored, the weights load."""
    marker, payload = marker_and_payload
    ckpt = _craft(tmp_path, genuine, "model", _routes(marker, payload)["torch_load_runs_a_pickle"][1])
    model = build_model(compose("eval", [*TINY, f"model.pretrained={ckpt}"], tmp_path / "run"))
    key = next(iter(genuine["state_dict"]))
    assert torch.equal(model.state_dict()[key], genuine["state_dict"][key])
    assert not marker.exists()


@pytest.mark.parametrize(
    "content, message",
    [
        ({"state_dict": {"w": "not a tensor"}}, "state_dict entries that are not tensors"),
        ({"weights": {}}, "is not a Lightning checkpoint"),
        ({"state_dict": {}, STORED_KEY: ["model"]}, f"`{STORED_KEY}` is a list"),
    ],
)
def test_other_fields_of_a_checkpoint_are_checked(tmp_path, content, message):
    ckpt = tmp_path / "odd.ckpt"
    torch.save(content, ckpt)
    with pytest.raises(UnusableCheckpointError, match=message):
        evaluate(compose("eval", [*TINY, f"ckpt_path={ckpt}"], tmp_path / "run"))


def test_the_allowlist_comes_from_the_conf_tree(tmp_path):
    """A config file added to the tree (global package or group) extends the allowlist; nothing else does."""
    conf = tmp_path / "conf"
    (conf / "model" / "backbone").mkdir(parents=True)
    (conf / "experiment").mkdir()
    (conf / "model" / "backbone" / "mine.yaml").write_text("_target_: my.Backbone\nwidth: 8\n")
    (conf / "experiment" / "x.yaml").write_text("# @package _global_\nmodel:\n  loss:\n    _target_: my.Loss\n"
                                                 "data:\n  _target_: my.Data\n")
    allowed = allowed_targets(conf)
    assert allowed["model"] == {"my.Backbone", "my.Loss"}
    assert allowed["data"] == {"my.Data"}
    real = allowed_targets()
    assert "src.training.restoration_module.RestorationModule" in real["model"]
    assert not any(t.startswith(("builtins.", "os.", "torch.load")) for group in real.values() for t in group)


@pytest.mark.slow  # a fresh Python process: ~6 s on 2 cores
def test_command_line_prints_one_line_naming_the_key(tmp_path, genuine, marker_and_payload):
    marker, payload = marker_and_payload
    ckpt = _craft(tmp_path, genuine, "model", _routes(marker, payload)["open_truncates_a_file"][1])
    done = subprocess.run(
        [sys.executable, "-m", "src.eval", f"ckpt_path={ckpt}", "logger=none", "trainer=cpu",
         f"hydra.run.dir={tmp_path / 'run'}"],
        cwd=ROOT, capture_output=True, text=True, timeout=120, env={**os.environ, "HYDRA_FULL_ERROR": "0"},
    )
    assert done.returncode == 2, done.stderr
    error_lines = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1 and "`model._target_` names 'builtins.open'" in error_lines[0]
    assert "Traceback" not in done.stderr
    assert not marker.exists()
