"""Run folders are claimed atomically: runs started in the same second never share one."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from omegaconf import OmegaConf

from src.utils.run_dir import claim_unique_dir, register_resolvers


@pytest.mark.slow  # many threads racing for one name: 5 s
def test_concurrent_claims_of_one_name_get_distinct_folders(tmp_path):
    base = str(tmp_path / "runs" / "2026-12-04_08-00-00")
    with ThreadPoolExecutor(8) as pool:
        claimed = list(pool.map(lambda _: claim_unique_dir(base), range(16)))
    assert len(set(claimed)) == 16
    assert base in claimed and f"{base}_2" in claimed and f"{base}_16" in claimed


def test_a_sweep_resolves_one_claimed_folder_for_every_job(tmp_path):
    """Hydra recomposes each job's config and copies the master's resolver cache into it (as here)."""
    register_resolvers()
    base = tmp_path / "multiruns" / "t"
    base.mkdir(parents=True)  # another sweep started in the same second
    node = {"dir": "${unique_dir:" + str(base) + "}"}
    master = OmegaConf.create(node)
    assert master.dir == f"{base}_2"
    job = OmegaConf.create(node)
    OmegaConf.copy_cache(from_config=master, to_config=job)
    assert job.dir == f"{base}_2"
    assert sorted(p.name for p in base.parent.iterdir()) == ["t", "t_2"]


def test_a_folder_that_cannot_be_created_ends_with_one_line(tmp_path, capsys):
    (tmp_path / "file").write_text("")
    with pytest.raises(SystemExit) as done:
        claim_unique_dir(str(tmp_path / "file" / "runs" / "t"))
    assert done.value.code == 2
    assert capsys.readouterr().err.startswith(f"error: cannot create the run folder {tmp_path / 'file' / 'runs' / 't'}")


def test_the_run_name_carries_the_overrides_that_define_the_run(tmp_path):
    from src.utils.run_dir import run_name
    from tests.conftest import compose

    assert run_name("train", "") == "train"
    cfg = compose("train", ["logger=wandb", "model=restormer_tiny", "model.optimizer.lr=0.002",
                            f"ckpt_path={tmp_path / 'x.ckpt'}"], tmp_path)
    assert cfg.logger.wandb.name == "train logger=wandb,model.optimizer.lr=0.002,model=restormer_tiny"


def test_training_families_come_from_the_setting_or_its_training_sets():
    register_resolvers()

    def families(data: dict) -> list[str]:
        return list(OmegaConf.create({"data": data, "families": "${train_families:}"}).families)

    assert families({"families": ["rain", "haze"], "holdout": "haze"}) == ["rain"]
    assert families({"degradations": {"noise": {}, "blur": {}}}) == ["noise", "blur"]
    paired = {"family": "paired", "train": [{"input": "a", "family": "rain"}, {"input": "b"}, {"input": "c"}]}
    assert families(paired) == ["rain", "paired"]
    with pytest.raises(Exception, match="no training families"):
        families({"train": []})
