"""DataLoaders for training and validation: sharding, seeding and a resumable position.

Two ideas make runs reproducible and resumable regardless of worker count:

- The order of an epoch is a permutation drawn from ``(seed, epoch)`` only, cut into
  *global* batches of ``world_size × batch_size``; rank r takes the r-th slice of every
  global batch. The shards are disjoint, and one process with batch ``world_size ×
  batch_size`` sees exactly the same samples per step. Skipping the first k batches
  resumes mid-epoch.
- Every sample's random augmentation (masking, caption draw) is seeded from
  ``(seed, epoch, index)`` just before the dataset builds it, so it does not depend on
  which worker builds it or on what was drawn before: after a resume, or with a
  different ``num_workers``, sample i of epoch e is the same.

The sampler hands the dataset ``epoch × len(dataset) + index`` so that the epoch reaches
the workers with each index, also with persistent workers.
"""

import random

import numpy as np
import paddle

from ..utils.errors import ConfigError


def sample_seed(seed, epoch, index):
    """A 32-bit seed for sample ``index`` of ``epoch``, well mixed (SeedSequence)."""
    return int(np.random.SeedSequence([seed, epoch, index]).generate_state(1)[0])


class SeededDataset(paddle.io.Dataset):
    """Wraps a dataset: item ``epoch * n + i`` is ``dataset[i]`` with the RNGs seeded for it."""

    def __init__(self, dataset, seed):
        self.dataset = dataset
        self.seed = int(seed)
        self.size = len(dataset)

    def __len__(self):
        return self.size

    def __getitem__(self, code):
        epoch, index = divmod(int(code), self.size)
        s = sample_seed(self.seed, epoch, index)
        np.random.seed(s)
        random.seed(s)
        return self.dataset[index]


class ShardedBatchSampler(paddle.io.BatchSampler):
    """Batches of this rank's slice of each global batch, resumable at any batch.

    ``drop_last``: drop the final incomplete global batch, so every rank takes the same
    number of steps (training). Without it (validation) the last global batch is split
    as evenly as the ranks allow and a rank may get fewer batches.
    """

    def __init__(self, num_samples, batch_size, shuffle, drop_last, seed, rank=0, world_size=1):
        self.num_samples = int(num_samples)
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.seed = int(seed)
        self.rank, self.world_size = rank, world_size
        self.epoch = 0
        self.start_batch = 0

    @property
    def global_batch(self):
        return self.batch_size * self.world_size

    def num_batches(self):
        """Batches of a whole epoch (before any skipping)."""
        if self.drop_last:
            return self.num_samples // self.global_batch
        full, rest = divmod(self.num_samples, self.global_batch)
        return full + (1 if rest > self.rank else 0)

    def set_epoch(self, epoch, start_batch=0):
        """Iterate epoch ``epoch`` from its batch ``start_batch`` on."""
        self.epoch, self.start_batch = int(epoch), int(start_batch)

    def order(self):
        if not self.shuffle:
            return np.arange(self.num_samples)
        return np.random.default_rng([self.seed, self.epoch]).permutation(self.num_samples)

    def __iter__(self):
        order, offset = self.order(), self.epoch * self.num_samples
        for b in range(self.start_batch, self.num_batches()):
            chunk = order[b * self.global_batch:(b + 1) * self.global_batch]
            if len(chunk) == self.global_batch:
                local = chunk[self.rank * self.batch_size:(self.rank + 1) * self.batch_size]
            else:
                local = np.array_split(chunk, self.world_size)[self.rank]
            yield [int(offset + i) for i in local]

    def __len__(self):
        return max(self.num_batches() - self.start_batch, 0)


def _worker_init(seed, rank):
    """Seed the RNGs of each worker distinctly (the per-sample seeds override them)."""

    def init(worker_id):
        s = sample_seed(seed, 1_000_000 + rank, worker_id)
        np.random.seed(s)
        random.seed(s)

    return init


def build_dataloader(dataset, batch_size, num_workers=0, shuffle=True, drop_last=True, seed=0, rank=0,
                     world_size=1, where="DATASET.train"):
    """A paddle DataLoader over ``dataset`` with a ``ShardedBatchSampler`` (``loader.batch_sampler``)."""
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(f"batch size for {where} must be a positive integer, got {batch_size!r}")
    sampler = ShardedBatchSampler(len(dataset), batch_size, shuffle, drop_last, seed, rank, world_size)
    if sampler.num_batches() == 0:
        raise ConfigError(
            f"{where} has {len(dataset)} samples, fewer than one batch of {batch_size} x {world_size} process(es); "
            f"lower DATASET.batch_size"
        )
    return paddle.io.DataLoader(
        SeededDataset(dataset, seed), batch_sampler=sampler, num_workers=int(num_workers),
        worker_init_fn=_worker_init(seed, rank) if num_workers else None,
    )
