"""Registry of metrics."""

from ..utils.registry import Registry

METRICS = Registry("METRICS")
