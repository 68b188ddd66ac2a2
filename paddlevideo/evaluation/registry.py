"""Registry of evaluators, keyed by the ``METRIC.name`` they report."""

from ..utils.registry import Registry

EVALUATORS = Registry("EVALUATORS")
