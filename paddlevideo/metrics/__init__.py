from .registry import METRICS
