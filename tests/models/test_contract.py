"""The registry-driven contract test: every ``conf/model`` config, every head on every backbone that hosts one.

Parametrised by the config files themselves (:func:`tests.helpers.configs`), so a network added as one module
plus one config, or a config copied under a new name, is checked here without editing this file. The checks
run the paper sizes for real on a small odd-size input (a few seconds in all on CPU); heads are fitted to
every backbone config on the meta device (shapes only) and run for real on the tiny backbones.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest
import torch

from src.models.backbones.base import Backbone, FeatureInfo, NoHead
from src.run.assemble import build, build_model
from src.training.losses import Objective
from tests.conftest import SHARED_DIR, compose
from tests.helpers import RecordingHead, configs

#: paper-size models that restore by sampling (DA-CLIP's IR-SDE: 100 passes of a 49M-parameter U-Net, 20 s a
#: test on CPU): checked in the slow suite; their tiny configs (a few steps) run here
SAMPLING_PAPER_SIZES = {"daclip_irsde"}
#: ``conf/model/default.yaml`` holds the keys every model shares; it is not a model
MODEL_NAMES = [name for name in configs("model") if name != "default"]
MODELS = [pytest.param(name, marks=pytest.mark.slow) if name in SAMPLING_PAPER_SIZES else name for name in MODEL_NAMES]
BACKBONES = [pytest.param(name, marks=pytest.mark.slow) if name in SAMPLING_PAPER_SIZES else name
             for name in configs("model/backbone")]
HEADS = [name for name in configs("model/head") if name != "none"]
#: bf16 autocast against fp32 at initialisation (measured: at most 0.014 max, 0.003 mean, SwinIR the largest)
BF16_MAX, BF16_MEAN = 0.05, 0.01


@cache
def model_cfg(name: str, *overrides: str):
    return compose("train", [f"model={name}", "trainer=cpu", "logger=none", *overrides], Path("/nonexistent"))


@cache
def model(name: str):
    torch.manual_seed(0)
    return build_model(model_cfg(name))


@pytest.fixture(autouse=True, scope="module")
def _release_models():
    """The built models are shared by the tests of this module only; free their memory afterwards."""
    yield
    for cached in (model_cfg, model, backbone):
        cached.cache_clear()


def odd_input(net: Backbone, batch: int = 1) -> torch.Tensor:
    """A size that is a multiple of nothing the network works at, so its padding and cropping run; at least
    19 pixels, for AirNet's encoder (its key view is half the image, then two strides and a batch norm)."""
    side = max(net.multiple, 16)
    return torch.rand(batch, net.in_channels, side + 3, side + 5, generator=torch.Generator().manual_seed(1))


def small_input(net: Backbone) -> torch.Tensor:
    """Just above the multiple, odd: the paper sizes stay fast, the padding still runs."""
    m = net.multiple
    return torch.rand(1, net.in_channels, m + 3, m + 5, generator=torch.Generator().manual_seed(2))


def recorded_official_counts() -> set[int]:
    """Every parameter count the official implementations' test vectors record (``../shared/reference``)."""
    counts: set[int] = set()
    for path in (SHARED_DIR / "reference").glob("*/default_keys.json"):
        counts |= {c["params"] for c in json.loads(path.read_text())["configs"] if "params" in c}
    for path in (SHARED_DIR / "reference").glob("*/meta.json"):
        count = json.loads(path.read_text()).get("param_count")
        if count is not None:
            counts.add(count)
    return counts


def conditions(net: Backbone, batch: int) -> dict[str, torch.Tensor]:
    """The per-image condition a conditioned backbone (InstructIR) is called with: unit random vectors."""
    if not net.condition_dim:
        return {}
    g = torch.Generator().manual_seed(3)
    return {"condition": torch.nn.functional.normalize(torch.randn(batch, net.condition_dim, generator=g), dim=1)}


def net_and_head_parameters(module) -> Iterator[tuple[str, torch.nn.Parameter]]:
    yield from module.net.named_parameters(prefix="net")
    if module.head is not None:
        yield from module.head.named_parameters(prefix="head")


# ----------------------------------------------------------------------------------------------- every model


@pytest.mark.parametrize("name", MODELS)
def test_the_backbone_declares_the_contract(name):
    net = model(name).net
    assert isinstance(net, Backbone), f"{type(net).__name__} does not derive from Backbone"
    assert isinstance(net.in_channels, int) and isinstance(net.out_channels, int)
    assert isinstance(net.multiple, int) and net.multiple >= 1
    assert isinstance(net.scale, int) and net.scale >= 1
    assert isinstance(net.condition_dim, int) and net.condition_dim >= 0
    assert all(isinstance(c, int) and c > 0 for c in net.channels_per_level)
    assert all(isinstance(f, FeatureInfo) for f in net.feature_info)
    names = [f.name for f in net.feature_info]
    assert len(set(names)) == len(names), f"head positions named twice: {names}"
    assert all(net.multiple % f.reduction == 0 for f in net.feature_info), "a position finer than the multiple"
    assert isinstance(model(name).loss, Objective)


@pytest.mark.parametrize("name", MODELS)
def test_paper_sizes_build_on_the_meta_device_with_the_official_count(name):
    cfg = model_cfg(name)
    with torch.device("meta"):
        meta = build_model(cfg)
    count = sum(p.numel() for _, p in net_and_head_parameters(meta))
    assert count == sum(p.numel() for _, p in net_and_head_parameters(model(name)))
    recorded = cfg.model.official_parameters
    if recorded is None:
        pytest.skip(f"model={name} is not an official configuration (official_parameters: null)")
    assert count == recorded
    if SHARED_DIR.is_dir():
        assert recorded in recorded_official_counts(), f"{recorded} is in no ../shared/reference record"


@pytest.mark.parametrize("name", MODELS)
def test_a_training_step_on_an_odd_size_reaches_every_parameter(name):
    if model_cfg(name).model.training_free:
        assert not list(model(name).parameters()), f"model={name} is training-free but has parameters"
        pytest.skip(f"model={name} is training-free: nothing to train")
    module = copy.deepcopy(model(name)).train()  # the shared copy keeps its untouched batch-norm statistics
    lq = odd_input(module.net, batch=max(1, getattr(module.net, "cameras", 0)))  # RepNR: an image per camera
    scale = module.net.scale  # super-resolution networks return scale x the input's size
    gt = torch.rand(lq.shape[0], module.net.out_channels, lq.shape[-2] * scale, lq.shape[-1] * scale)
    pred, aux, _ = module.net.forward_train(lq, head=module.head, **conditions(module.net, lq.shape[0]))
    assert pred.shape == gt.shape and torch.isfinite(pred).all()
    assert all(v.ndim == 0 and torch.isfinite(v) for v in aux.values()), f"aux losses: {aux}"
    fields = module.example_fields(lq.shape[0])  # what the model's own strategy reads (LED's cameras)
    total, _ = module.training_loss({"family": ["noise"] * lq.shape[0], **fields, "lq": lq, "gt": gt})
    assert torch.isfinite(total)
    total.backward()
    trainable = {n: p for n, p in module.named_parameters() if p.requires_grad}
    missing = [n for n, p in trainable.items() if p.grad is None]
    assert not missing, f"trainable parameters without a gradient: {missing[:10]}"
    assert all(torch.isfinite(p.grad).all() for p in trainable.values())


@pytest.mark.parametrize("name", MODELS)
def test_bf16_autocast_stays_close_to_fp32_and_eval_changes_no_state(name):
    module = model(name).eval()
    lq = small_input(module.net)  # bf16 convolutions are emulated on most CPUs: the smallest odd size
    before = {k: v.clone() for k, v in module.state_dict().items()}

    def restore() -> torch.Tensor:
        torch.manual_seed(0)  # MoCE-IR's routers draw noise in evaluation too, as the official code does
        return module.net(lq, head=module.head, **conditions(module.net, lq.shape[0]))[0].float()

    with torch.no_grad():
        fp32, again = restore(), restore()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            bf16 = restore()
    assert torch.equal(fp32, again), "evaluation is not deterministic under a fixed seed"
    after = module.state_dict()
    assert all(torch.equal(v, after[k]) for k, v in before.items()), "evaluation changed the state"
    diff = (bf16 - fp32).abs()
    assert diff.max() < BF16_MAX and diff.mean() < BF16_MEAN, f"bf16 max {diff.max():.4f}, mean {diff.mean():.5f}"


# ----------------------------------------------------------------------------------------------- every backbone


@cache
def backbone(name: str) -> Backbone:
    """The paper-size (or tiny) backbone of ``conf/model/backbone/<name>.yaml``, built once, in eval mode."""
    torch.manual_seed(0)
    return build(model_cfg("restormer", f"model/backbone={name}").model.backbone, "model.backbone").eval()


@pytest.mark.parametrize("name", BACKBONES)
def test_heads_see_what_feature_info_says(name):
    """Every position in order, at its channels and reduction of the padded input; the aux losses come back
    summed by name; a backbone with no positions calls no head."""
    net = backbone(name)
    head = RecordingHead()
    lq = small_input(net)
    with torch.no_grad():
        out, aux = net(lq, head=head, **conditions(net, 1))
    assert out.shape == (1, net.out_channels, *(side * net.scale for side in lq.shape[-2:]))
    padded = tuple(-(-s // net.multiple) * net.multiple for s in lq.shape[-2:])
    expected = [(f.name, (1, f.channels, padded[0] // f.reduction, padded[1] // f.reduction)) for f in net.feature_info]
    assert [(n, f) for n, f, _ in head.seen] == expected
    assert all(image[-2:] == padded for _, _, image in head.seen)
    if net.feature_info:
        assert aux["balance"].item() == len(net.feature_info)
        assert {f"{f.name}_only" for f in net.feature_info} <= set(aux)


@pytest.mark.parametrize("head", HEADS)
@pytest.mark.parametrize("name", BACKBONES)
def test_every_head_fits_every_backbone_that_hosts_one(name, head):
    """Built from the paper-size backbone's ``feature_info``, the head keeps every feature's shape."""
    net = backbone(name)
    if not net.feature_info:
        pytest.skip(f"{name} publishes no head positions")
    node = model_cfg("restormer", f"model/backbone={name}", f"model/head={head}").model.head
    fitted = build(node, "model.head")(feature_info=net.feature_info).eval()
    lq = small_input(net)
    with torch.no_grad():
        out, aux = net(lq, head=fitted)
    assert out.shape == (1, net.out_channels, *lq.shape[-2:]) and torch.isfinite(out).all()
    assert all(torch.isfinite(v) for v in aux.values())


TINY_BACKBONES = [name for name in configs("model/backbone") if name.endswith("_tiny")]


@pytest.mark.parametrize("head", HEADS)
@pytest.mark.parametrize("name", TINY_BACKBONES)
def test_heads_train_on_the_tiny_backbones(name, head):
    if not backbone(name).feature_info:  # a head cannot even be built for it
        pytest.skip(f"{name} publishes no head positions")
    torch.manual_seed(0)
    module = build_model(model_cfg("restormer", f"model/backbone={name}", f"model/head={head}")).train()
    lq = odd_input(module.net, batch=2)
    total, _ = module.training_loss({"lq": lq, "gt": torch.rand_like(lq), "family": ["noise", "rain"]})
    total.backward()
    missing = [n for n, p in module.head.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing, f"head parameters without a gradient: {missing[:10]}"
    module.eval()  # no drop-path or dropout in the comparisons below
    with torch.no_grad():
        plain = module.net(lq, head=None)[0]
        identity = module.net(lq, head=NoHead(module.net.feature_info))[0]
        shifted = module.net(lq, head=RecordingHead(shift=0.5))[0]
        with torch.autocast("cpu", dtype=torch.bfloat16):
            bf16 = module.net(lq, head=module.head)[0].float()
    assert torch.equal(plain, identity) and not torch.allclose(plain, shifted)
    assert torch.isfinite(bf16).all()


def test_discovery_follows_the_files(tmp_path):
    """A model config copied under a new name is one more parameter of every test above."""
    (tmp_path / "model").mkdir()
    for name in ("default", "restormer", "restormer_tiny"):
        (tmp_path / "model" / f"{name}.yaml").write_text("")
    (tmp_path / "model" / "my_restormer.yaml").write_text("")
    assert [n for n in configs("model", tmp_path) if n != "default"] == ["my_restormer", "restormer",
                                                                           "restormer_tiny"]
    assert set(MODEL_NAMES) == {p.stem for p in (Path(__file__).parents[2] / "conf" / "model").glob("*.yaml")} - {
        "default"}
