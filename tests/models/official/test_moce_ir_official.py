"""Our MoCEIR backbone + ExpertsHead computes official MoCE-IR and loads its checkpoints."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from src.models.heads.experts import ReplayRouterNoise, set_router_noise
from src.models.official import from_official, load_strict
from src.models.official.moce_ir import build, convert, convert_key
from src.models.official.wrapper import OfficialWrapper

TOL = 1e-5
CONF_DIR = str(Path(__file__).resolve().parents[3] / "conf")


@pytest.fixture(scope="module")
def ref(reference):
    return reference("moceir")


def _max_diff(model: torch.nn.Module, ref, output: str) -> float:
    with torch.no_grad():
        pred = model(ref.tensor("input"))
    return (pred - ref.tensor(output)).abs().max().item()


def _recorded_noise(ref) -> list[torch.Tensor]:
    noise = ref.tensors("routing_noise")
    return [noise[k] for k in sorted(noise)]


def test_main_vector_with_the_recorded_router_noise(ref) -> None:
    """The official forward drew ``randn_like(logits)`` per router call and scaled it by ``1 / num_experts``."""
    kwargs = ref.meta["tiny_kwargs"]
    model = from_official("moce_ir", kwargs, ref.tensors("weights"))
    assert isinstance(model, OfficialWrapper)
    assert sum(p.numel() for p in model.parameters()) == ref.meta["tiny_param_count"]
    assert len(model.state_dict()) == ref.meta["tiny_state_dict_tensors"]
    replay = ReplayRouterNoise(_recorded_noise(ref), scale=1.0 / kwargs["num_experts"])
    set_router_noise(model, replay)
    assert _max_diff(model, ref, "output") < TOL
    assert replay.remaining == 0


def test_main_vector_with_the_default_noise_and_the_recorded_seed(ref) -> None:
    model = from_official("moce_ir", ref.meta["tiny_kwargs"], ref.tensors("weights"))
    torch.manual_seed(1234)
    assert _max_diff(model, ref, "output") < TOL


def test_no_router_noise_vector(ref) -> None:
    model = from_official("moce_ir", ref.meta["tiny_kwargs"], ref.tensors("weights"), router_noise=False)
    assert _max_diff(model, ref, "output_no_router_noise") < TOL


def test_perturbed_vector(ref) -> None:
    weights, overrides = ref.tensors("weights"), ref.tensors("perturbed_overrides")
    assert set(overrides) <= set(weights)
    model = from_official("moce_ir", ref.meta["tiny_kwargs"], {**weights, **overrides}, router_noise=False)
    assert _max_diff(model, ref, "perturbed_output") < TOL


def test_routers_are_called_in_the_official_order(ref) -> None:
    official = next(v for v in ref.meta["variants"] if v["name"] == "no_router_noise")["router_modules_in_call_order"]
    ours = [convert_key(f"{name}.complexity", decoder_groups=3) for name in official]
    model = build(ref.meta["tiny_kwargs"])
    assert ours == [f"head.layers.{name}.router.complexity" for name in model.head.layers]
    assert list(model.head.layers) == [f.name for f in model.net.feature_info[1:]]


def test_eval_routes_each_image_of_a_batch_on_its_own(ref) -> None:
    """Official eval only runs batch size 1; ours gives every image what it would get alone."""
    model = from_official("moce_ir", ref.meta["tiny_kwargs"], ref.tensors("weights"), router_noise=False)
    x = ref.tensor("input")
    batch = torch.cat([x, x.flip(-1), 1 - x])
    with torch.no_grad():
        together = model(batch)
        alone = torch.cat([model(image[None]) for image in batch])
    assert (together - alone).abs().max().item() < TOL
    assert (together[0] - ref.tensor("output_no_router_noise")[0]).abs().max().item() < TOL


def test_paper_checkpoints_fit(ref) -> None:
    """Every paper configuration's official keys and shapes load strictly; parameter counts agree."""
    configs = ref.default_keys["configs"]
    assert {c["config"] for c in configs} == {"moceir", "moceir_s"}
    for config in configs:
        with torch.device("meta"):
            model = build(config["kwargs"])
            official = {e["key"]: torch.zeros(e["shape"]) for e in config["state_dict"]}
        assert sum(p.numel() for p in model.parameters()) == config["params"], config["config"]
        load_strict(model, convert(official), source=config["config"])


@pytest.mark.parametrize(("model_name", "config"), [("moce_ir", "moceir"), ("moce_ir_s", "moceir_s")])
def test_paper_configs_build_the_official_networks(ref, model_name: str, config: str) -> None:
    """``model=moce_ir`` / ``moce_ir_s``: the same state dict shapes as official ``MoCE_IR`` / ``MoCE_IR_S``."""
    paper = next(c for c in ref.default_keys["configs"] if c["config"] == config)
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose("train", overrides=[f"model={model_name}"]).model
    assert cfg.official == "src.models.official.moce_ir" and cfg.loss.fft_l1 == 0.1 and cfg.head.balance_weight == 0.01
    with torch.device("meta"):
        net = instantiate(cfg.backbone)
        head = instantiate(cfg.head)(feature_info=net.feature_info)
        official = build(paper["kwargs"])
    ours = {k: v.shape for k, v in OfficialWrapper(net, head).state_dict().items()}
    assert ours == {k: v.shape for k, v in official.state_dict().items()}
    assert sum(p.numel() for p in [*net.parameters(), *head.parameters()]) == paper["params"]


def test_tiny_config_is_the_reference_network(ref) -> None:
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose("train", overrides=["model=moce_ir_tiny"]).model
    net = instantiate(cfg.backbone)
    head = instantiate(cfg.head)(feature_info=net.feature_info)
    load_strict(OfficialWrapper(net, head), convert(ref.tensors("weights")))


def test_wrong_key_or_shape_is_named(ref) -> None:
    kwargs, weights = ref.meta["tiny_kwargs"], ref.tensors("weights")
    renamed = dict(weights)
    renamed["dec.1.2.layers.0.adapter.routing.gate.2.weights"] = renamed.pop(
        "dec.1.2.layers.0.adapter.routing.gate.2.weight"
    )
    with pytest.raises(ValueError, match=r"missing keys.*head\.layers\.dec1_0\.router\.gate\.weight"):
        from_official("moce_ir", kwargs, renamed)
    with pytest.raises(ValueError, match=r"unexpected keys \(1\): .*net\.extra_module\.weight"):
        from_official("moce_ir", kwargs, {**weights, "extra_module.weight": torch.zeros(1)})
    without = {k: v for k, v in weights.items() if k != "freq_embed.high_conv.0.conv.weight"}
    with pytest.raises(ValueError, match=r"missing keys \(1\): head\.frequency\.highpass\.weight"):
        from_official("moce_ir", kwargs, without)
    reshaped = {**weights, "dec.2.2.layers.0.mixer.kv_dwconv.weight": torch.zeros(16, 1, 3, 3)}
    with pytest.raises(ValueError, match=r"shape mismatches.*net\.decoders\.0\.blocks\.0\.cross\.kv_dw\.weight"):
        from_official("moce_ir", kwargs, reshaped)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"cls_dim": 4}, "unknown official MoCEIR arguments: cls_dim"),
        ({"levels": 3}, "levels=3 needs 3 heads"),
        ({"depth_type": "square"}, "unknown official depth_type"),
        ({"stage_depth": [1]}, "stage_depth needs 3 entries"),
        ({"expert_layer": "Attention"}, "only expert_layer=FFTAttention"),
    ],
)
def test_bad_official_arguments_are_refused(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build(kwargs)


def test_colliding_keys_are_an_error() -> None:
    with pytest.raises(ValueError, match="both map to 'net.embed.weight'"):
        convert({"patch_embed.proj.weight": torch.zeros(1), "embed.weight": torch.zeros(1)})


def test_every_converted_key_is_under_net_or_head() -> None:
    """So that a loader splitting ``net.``/``head.`` never drops an unknown official key before the strict check."""
    odd = ["freq_embed.x", "dec.0.2.layers.0.adapter.x", "dec.0.2.layers.0.x", "enc.0.0.layers.0.x", "zz"]
    assert all(k.startswith(("net.", "head.")) for k in convert({k: torch.zeros(1) for k in odd}))
