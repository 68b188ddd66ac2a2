from .registry import DATASETS, PIPELINES
