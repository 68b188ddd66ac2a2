"""Retrieval: scoring captions against videos, its evaluation, export, predictor and search."""

from . import evaluation  # noqa: F401  (registers the retrieval evaluators)
