from . import dataset, pipelines
from .builder import Compose, build_dataset, build_pipeline
from .registry import DATASETS, PIPELINES
