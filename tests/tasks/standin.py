"""A tiny stand-in model and dataset for fast training tests (registered on import).

They have what makes exact resume and multi-process equality hard: dropout, a
LayerNorm, per-sample random noise drawn from the global numpy RNG, and four named loss
parts like ActBERT's. ``nan_at`` lists the training forwards (1-based) whose loss is
NaN; ``nan_grad_at`` those whose loss is finite but whose gradient is NaN (only on rank
``nan_grad_rank`` if set); ``delay``
slows each forward so a test can kill a run mid-way.
"""

import os
import signal
import time

import numpy as np
import paddle
import paddle.nn as nn

from paddlevideo.loader.registry import DATASETS
from paddlevideo.modeling.registry import FRAMEWORKS
from paddlevideo.utils.errors import DataError

PARTS = ("loss_text", "loss_region", "loss_action", "loss_match")


@FRAMEWORKS.register()
class TinyPretrain(nn.Layer):
    def __init__(self, in_dim=8, hidden=16, dropout=0.1, nan_at=(), nan_grad_at=(), nan_grad_rank=None, delay=0.0):
        super().__init__()
        self.backbone = nn.Sequential(nn.Linear(in_dim, hidden), nn.ReLU(), nn.Dropout(dropout), nn.LayerNorm(hidden))
        self.head = nn.Linear(hidden, len(PARTS))
        self.nan_at, self.nan_grad_at, self.delay, self.calls = set(nan_at), set(nan_grad_at), delay, 0
        self.nan_grad_rank = nan_grad_rank  # None: every rank

    def forward(self, batch, mode="train"):
        """batch: x [B, in_dim], y [B, 4] -> loss and its four parts (0-d tensors)."""
        if self.delay:
            time.sleep(self.delay)
        pred = self.head(self.backbone(batch["x"]))  # [B, 4]
        err = ((pred - batch["y"]) ** 2).mean(axis=0)  # [4]
        out = {name: err[i] for i, name in enumerate(PARTS)}
        out["loss"] = err.sum()
        if mode == "train":
            self.calls += 1
            if self.calls in self.nan_at:
                out = {k: v * float("nan") for k, v in out.items()}
            rank_hit = self.nan_grad_rank in (None, paddle.distributed.get_rank())
            if self.calls in self.nan_grad_at and rank_hit:  # 0 * sqrt(0): the value 0, the gradient 0 * inf = NaN
                out["loss"] = out["loss"] + 0.0 * paddle.sqrt(self.head.weight.sum() * 0.0)
        return {"loss": out["loss"], **{k: out[k] for k in PARTS}}


@DATASETS.register()
class TinyNoisyDataset(paddle.io.Dataset):
    """Fixed inputs per index plus noise from the global numpy RNG (an 'augmentation')."""

    def __init__(self, num_samples=32, in_dim=8, noise=0.1):
        rng = np.random.RandomState(0)
        self.x = rng.randn(num_samples, in_dim).astype("float32")
        self.y = np.tanh(self.x[:, :4] * 2).astype("float32")
        self.noise = noise

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        x = self.x[i] + self.noise * np.random.randn(*self.x[i].shape).astype("float32")
        return {"x": x, "y": self.y[i]}


def tiny_config(output_dir, **run):
    """A config dict for the stand-ins (Adam, piecewise schedule as actbert.yaml)."""
    cfg = {
        "MODEL": {"framework": "TinyPretrain"},
        "DATASET": {"batch_size": 4, "num_workers": 0, "train": {"format": "TinyNoisyDataset"},
                    "valid": {"format": "TinyNoisyDataset", "num_samples": 12}},
        "OPTIMIZER": {"name": "Adam", "learning_rate": {"iter_step": True, "name": "CustomPiecewiseDecay",
                                                         "boundaries": [6], "values": [0.01, 0.001]},
                      "weight_decay": {"name": "L2", "value": 1e-4}},
        "model_name": "Tiny", "epochs": 2, "log_interval": 2, "output_dir": str(output_dir), "seed": 7,
    }
    cfg.update(run)
    return cfg


@DATASETS.register()
class TinyFaultyDataset(TinyNoisyDataset):
    """``TinyNoisyDataset`` whose item ``fail_at`` fails: ``fault`` 'data' raises a DataError
    (bad input), 'bug' a KeyError, 'kill' kills the process that builds it (SIGKILL), 'hang'
    sleeps for an hour (a hung read). Item 0 is always good, as the start-up check reads it."""

    def __init__(self, num_samples=32, fail_at=5, fault="data"):  # fault "none": no fault
        super().__init__(num_samples)
        self.fail_at, self.fault = fail_at, fault

    def __getitem__(self, i):
        if i == self.fail_at:
            if self.fault == "data":
                raise DataError(f"tiny.npy: item {i}: image_feature has size 7, expected 8")
            if self.fault == "bug":
                raise KeyError("no_such_field")
            if self.fault == "kill":
                os.kill(os.getpid(), signal.SIGKILL)
            if self.fault == "hang":
                time.sleep(3600)
        return super().__getitem__(i)
