"""Registries of datasets and pipeline steps."""

from ..utils.registry import Registry

DATASETS = Registry("DATASETS")
PIPELINES = Registry("PIPELINES")
