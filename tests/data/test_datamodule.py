from __future__ import annotations

import torch

from src.data.datasets.sources import EmbeddedImages
from src.data.degradations import GaussianNoise, SyntheticRain
from src.data.synthetic_mix import synthetic_datamodule


def _dm(seed: int = 0, **kw):
    return synthetic_datamodule(
        {"noise": GaussianNoise(quantize=True), "rain": SyntheticRain()},
        patch_size=32,
        batch_size=4,
        samples_per_epoch=8,
        seed=seed,
        test_source=EmbeddedImages("test", max_side=64),
        **kw,
    )


def test_training_samples_follow_the_contract_and_are_reproducible():
    a, b = _dm(), _dm()
    batch_a = next(iter(a.train_dataloader()))
    batch_b = next(iter(b.train_dataloader()))
    assert batch_a["lq"].shape == batch_a["gt"].shape == (4, 3, 32, 32)
    assert batch_a["lq"].dtype == torch.float32
    assert float(batch_a["lq"].min()) >= 0 and float(batch_a["lq"].max()) <= 1
    assert set(batch_a["family"]) <= {"noise", "rain"}
    assert torch.equal(batch_a["lq"], batch_b["lq"]) and torch.equal(batch_a["gt"], batch_b["gt"])
    other = next(iter(_dm(seed=1).train_dataloader()))
    assert not torch.equal(other["gt"], batch_a["gt"])


def test_evaluation_pixels_do_not_depend_on_the_training_seed_or_order():
    a, b = _dm(seed=0), _dm(seed=7)
    assert a.test_benchmarks == ["synth_noise", "synth_rain"]
    ds_a, ds_b = a.test_sets["synth_rain"], b.test_sets["synth_rain"]
    last = ds_b[len(ds_b) - 1]  # access in another order first
    assert torch.equal(ds_a[len(ds_a) - 1]["lq"], last["lq"])
    sample = ds_a[0]
    assert sample["benchmark"] == "synth_rain" and sample["lq"].shape[-1] % 16 == 0


def test_loader_state_resumes_mid_epoch():
    dm = _dm()
    loader = dm.train_dataloader()
    full = [b["gt"] for b in loader]
    resumed = dm.train_dataloader()
    resumed.load_state_dict({"epoch": 0, "batches": 1, "batch_size": 4})
    rest = [b["gt"] for b in resumed]
    assert len(rest) == len(full) - 1 and all(torch.equal(x, y) for x, y in zip(rest, full[1:]))
    end = dm.train_dataloader()
    end.load_state_dict({"epoch": 0, "batches": len(full), "batch_size": 4})
    assert end.sampler.epoch == 1


def test_describe_mix_reports_counts_and_shares():
    text = _dm().describe_mix()
    assert "8 samples per epoch" in text and "noise:" in text and "%" in text


def test_a_held_out_family_is_tested_but_never_trained():
    import pytest

    dm = _dm(holdout="rain")
    assert list(dm.train_sets) == ["noise"]
    assert set(dm.test_sets) == {"synth_noise", "synth_rain"}
    assert dm.benchmark_groups == {"synth_noise": "seen", "synth_rain": "unseen family"}
    assert _dm().benchmark_groups == {}
    with pytest.raises(ValueError, match=r"not \['snow'\]"):
        _dm(holdout=["snow"])
    with pytest.raises(ValueError, match="not all of them"):
        _dm(holdout=["noise", "rain"])


def test_extra_benchmarks_are_test_only_seeded_and_grouped():
    import pytest

    from src.data.degradations import SaltAndPepper

    extras = {"salt_pepper": {"group": "unseen family", "degradation": SaltAndPepper()}}
    dm, again = _dm(extra_benchmarks=extras), _dm(extra_benchmarks=extras, seed=7)
    assert list(dm.train_sets) == ["noise", "rain"]
    assert dm.benchmark_groups["synth_salt_pepper"] == "unseen family" and dm.benchmark_groups["synth_noise"] == "seen"
    first, second = dm.test_sets["synth_salt_pepper"][0], again.test_sets["synth_salt_pepper"][0]
    assert torch.equal(first["lq"], second["lq"])  # the training seed never moves test pixels
    with pytest.raises(ValueError, match="extra_benchmarks.bad needs a group and a degradation"):
        _dm(extra_benchmarks={"bad": {"group": "mixed"}})


def test_the_generalisation_benchmarks_compose_and_build(tmp_path):
    import hydra

    from tests.conftest import compose

    cfg = compose("train", ["+data/benchmarks=generalisation", "data.test_source.max_side=48"], tmp_path)
    dm = hydra.utils.instantiate(cfg.data)
    groups = set(dm.benchmark_groups.values())
    assert groups == {"seen", "unseen level", "mixed", "unseen family"}
    assert dm.test_sets["synth_rain_noise50"][0]["lq"].shape == dm.test_sets["synth_rain_noise50"][0]["gt"].shape


def test_any_setting_serves_captions_by_image_name(tmp_path):
    """``data.captions`` is the datamodule's: training and evaluation samples carry their image's caption."""
    plain = _dm()
    names = {str(plain.train_sets["noise"][(0, i)]["name"]) for i in range(len(plain.train_sets["noise"]))}
    test_name = str(next(iter(plain.test_sets.values()))[0]["name"])
    file = tmp_path / "captions.tsv"
    file.write_text("".join(f"{n}\tcaption of {n}\n" for n in sorted(names | {test_name})))
    dm = _dm(captions=str(file))
    batch = next(iter(dm.train_dataloader()))
    assert batch["caption"] == [f"caption of {n}" for n in batch["name"]]
    evaluation = next(iter(dm.test_dataloader()[0]))
    assert evaluation["caption"] == [f"caption of {test_name}"]
    assert "caption" not in next(iter(plain.train_dataloader()))
