"""Sharded, seeded, resumable training batches."""

import numpy as np
import pytest
import standin  # noqa: F401

from paddlevideo.loader.dataloader import ShardedBatchSampler, build_dataloader
from paddlevideo.utils.errors import ConfigError


def batches(sampler, epoch, start=0):
    sampler.set_epoch(epoch, start)
    return [list(b) for b in sampler]


def test_ranks_take_disjoint_slices_of_the_single_process_batches():
    one = batches(ShardedBatchSampler(20, 4, True, True, seed=3, rank=0, world_size=1), 2)
    ranks = [batches(ShardedBatchSampler(20, 2, True, True, seed=3, rank=r, world_size=2), 2) for r in (0, 1)]
    assert len(one) == len(ranks[0]) == len(ranks[1]) == 5
    for b, full in enumerate(one):
        assert ranks[0][b] + ranks[1][b] == full
    flat = [i for r in ranks for b in r for i in b]
    assert len(flat) == len(set(flat)) == 20


def test_order_depends_on_epoch_and_skipping_resumes():
    s = ShardedBatchSampler(20, 4, True, True, seed=3)
    assert batches(s, 1) != batches(s, 2)
    assert batches(s, 2)[3:] == batches(s, 2, start=3)
    assert len(s) == 2


def test_validation_shards_cover_everything_once():
    shards = [batches(ShardedBatchSampler(11, 2, False, False, seed=0, rank=r, world_size=2), 0) for r in (0, 1)]
    flat = sorted(i for s in shards for b in s for i in b)
    assert flat == list(range(11))


def collect(loader, epoch):
    loader.batch_sampler.set_epoch(epoch)
    return np.concatenate([b["x"].numpy() for b in loader])


def test_sample_noise_is_the_same_with_workers_and_after_skipping():
    ds = standin.TinyNoisyDataset(num_samples=16)
    plain = collect(build_dataloader(ds, 4, num_workers=0, seed=5), 1)
    workers = collect(build_dataloader(ds, 4, num_workers=2, seed=5), 1)
    np.testing.assert_array_equal(plain, workers)
    loader = build_dataloader(ds, 4, num_workers=0, seed=5)
    loader.batch_sampler.set_epoch(1, start_batch=2)
    np.testing.assert_array_equal(np.concatenate([b["x"].numpy() for b in loader]), plain[8:])
    assert not np.array_equal(collect(loader, 2)[:4], plain[:4])


def test_dataset_smaller_than_a_batch():
    with pytest.raises(ConfigError, match="fewer than one batch"):
        build_dataloader(standin.TinyNoisyDataset(num_samples=3), 4)
