"""The run settings of a config: its lower-case top-level keys, with defaults and meanings.

``RunSettings`` is the one list of them: ``utils.config`` derives the valid top-level keys
(``RUN_KEYS``) from its fields, training and test read their values from it.
"""

import os
from dataclasses import dataclass, field, fields

from .errors import ConfigError


def _setting(default, help_text):
    """A RunSettings field: its default and its one-line meaning (``RUN_KEYS``)."""
    return field(default=default, metadata={"help": help_text})


@dataclass
class RunSettings:
    """The lower-case run settings of a config, with their defaults."""

    model_name: str = _setting("ActBert", "name used in log lines and checkpoint file names")
    epochs: int = _setting(1, "number of training epochs")
    log_interval: int = _setting(10, "steps between training log lines")
    output_dir: str = _setting("", "where checkpoints, logs and metrics go")  # "": output/{model_name}
    save_interval: int = _setting(1, "epochs between checkpoints")  # {model_name}_epoch_*.pdparams/.pdopt
    val_interval: int = _setting(1, "epochs between validations (with --validate)")
    # None: drawn at random, logged and kept in the resume checkpoint
    seed: int = _setting(None, "random seed (also --seed)")
    log_level: str = _setting("INFO", "python logging level")
    device: str = _setting(None, "cpu, gpu or gpu:N (default: a GPU when available, else the CPU)")
    grad_accum_steps: int = _setting(1, "micro-batches accumulated per optimiser step")
    checkpoint_steps: int = _setting(0, "optimiser steps between resume checkpoints (0: epoch ends only)")
    max_nonfinite_steps: int = _setting(5, "consecutive non-finite-loss steps skipped before training stops")
    best_metric: str = _setting("loss", "validation value that selects {model_name}_best.pdparams (default loss)")
    best_mode: str = _setting("min", "min or max: which direction of best_metric is better")
    # ActBERT has parameters unused by the loss (value_av)
    find_unused_parameters: bool = _setting(True, "multi-process: allow parameters without gradient (default true)")
    amp: bool = _setting(False, "mixed precision (also --amp)")
    amp_level: str = _setting("O1", "O1 or O2 (also --amp_level)")
    amp_dtype: str = _setting("float16", "float16 (with loss scaling) or bfloat16")
    # Applied by main.py before Paddle is imported.
    num_threads: int = _setting(None, "CPU threads per process (default: cores / processes on the node)")
    # Needs `pip install visualdl`.
    use_visualdl: bool = _setting(False, "also write VisualDL scalars to {output_dir}/vdl")
    resume_epoch: int = _setting(
        0, "PaddleVideo's resume: continue after epoch N from {model_name}_epoch_N.pdparams/.pdopt")

    @classmethod
    def from_cfg(cls, cfg, **flags):
        """Settings from ``cfg``'s top level, then command-line ``flags`` that are not None."""
        values = {f.name: cfg[f.name] for f in fields(cls) if cfg.get(f.name) is not None}
        values.update({k: v for k, v in flags.items() if v is not None and v is not False})
        run = cls(**values)
        run.output_dir = run.output_dir or os.path.join("output", run.model_name)
        run.check()
        return run

    def check(self):
        for key in ("epochs", "log_interval", "save_interval", "val_interval", "grad_accum_steps",
                    "max_nonfinite_steps"):
            value = getattr(self, key)
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"{key} must be a positive integer, got {value!r}")
        if not isinstance(self.resume_epoch, int) or self.resume_epoch < 0:
            raise ConfigError(f"resume_epoch must be an epoch number (0: start fresh), got {self.resume_epoch!r}")
        if self.best_mode not in ("min", "max"):
            raise ConfigError(f"best_mode must be 'min' or 'max', got {self.best_mode!r}")


def run_keys():
    """{key: meaning} of every run setting."""
    return {f.name: f.metadata["help"] for f in fields(RunSettings)}
