from .registry import LR_SCHEDULERS, OPTIMIZERS
