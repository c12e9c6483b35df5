from __future__ import annotations

from collections import Counter

import pytest

from src.data.sampler import MixSampler


def test_same_seed_and_epoch_give_same_order_and_epochs_differ():
    a, b = MixSampler([10, 20], [1, 1], 50, seed=3), MixSampler([10, 20], [1, 1], 50, seed=3)
    assert list(a) == list(b)
    a.set_epoch(1)
    assert [i for _, i in a] != [i for _, i in b]
    assert all(e == 1 for e, _ in a)


def test_weighted_shares_follow_weights_not_sizes():
    sampler = MixSampler([5, 500], weights=[3, 1], num_samples=4000, seed=0)
    counts = sampler.family_counts(0)
    assert sum(counts) == 4000
    assert counts[0] / 4000 == pytest.approx(0.75, abs=0.03)
    # indices stay inside each family's range and cycle through the small family evenly
    small = Counter(i for _, i in sampler if i < 5)
    assert max(small.values()) - min(small.values()) <= 1


def test_concat_mode_visits_every_sample_once():
    sampler = MixSampler([7, 3], mode="concat", seed=1)
    assert sorted(i for _, i in sampler) == list(range(10))


def test_resume_skips_consumed_samples_once():
    full = [i for _, i in MixSampler([10, 10], [1, 1], 20, seed=5)]
    sampler = MixSampler([10, 10], [1, 1], 20, seed=5)
    sampler.resume(0, 8)
    assert [i for _, i in sampler] == full[8:]
    assert [i for _, i in sampler] == full  # the skip applies to the resumed epoch only


def test_rank_shards_are_disjoint_and_cover_the_epoch(monkeypatch):
    import src.data.sampler as module

    sampler = MixSampler([9, 4], [1, 1], 13, seed=2)
    shards = []
    for rank in range(2):
        monkeypatch.setattr(module, "_rank_world", lambda rank=rank: (rank, 2))
        shards.append([i for _, i in sampler])
    assert len(shards[0]) == len(shards[1]) == 7
    assert set(shards[0]) | set(shards[1]) == set(sampler.epoch_indices(0).tolist())


@pytest.mark.parametrize(
    "kwargs",
    [dict(sizes=[3, 0], weights=[1, 1]), dict(sizes=[3], weights=[-1]), dict(sizes=[3], mode="nope")],
)
def test_bad_arguments_are_reported(kwargs):
    with pytest.raises(ValueError):
        MixSampler(**kwargs)
