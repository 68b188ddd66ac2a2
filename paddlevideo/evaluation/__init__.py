"""Evaluators: how a model is scored on a validation or test set, chosen by ``METRIC``.

``build_evaluator`` finds the evaluator registered under ``METRIC.name`` (or, without a
``METRIC`` section, under the dataset's ``default_metric``); training's validation and
``main.py --test`` then call ``evaluator.evaluate(net, data)`` whatever the task.
"""

from . import caption  # noqa: F401  (registers the captioning evaluator)
from .base import EvalSettings, Evaluator
from .builder import build_evaluator
from .loss import LOSS_METRIC, LossEvaluator
from .registry import EVALUATORS
from .steps import COINEvaluator, CrossTaskEvaluator

__all__ = ["EVALUATORS", "LOSS_METRIC", "COINEvaluator", "CrossTaskEvaluator", "EvalSettings", "Evaluator",
           "LossEvaluator", "build_evaluator"]
