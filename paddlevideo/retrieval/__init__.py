"""Retrieval: scoring captions against videos, its evaluation, export, predictor and search."""

from . import evaluation, youcook2  # noqa: F401  (register the retrieval evaluators)
