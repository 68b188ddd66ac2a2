"""Registries of optimisers and learning-rate schedules."""

from ..utils.registry import Registry

OPTIMIZERS = Registry("OPTIMIZERS")
LR_SCHEDULERS = Registry("LR_SCHEDULERS")
