"""Retrieval: scoring captions against videos, its evaluation, export, predictor and search."""
