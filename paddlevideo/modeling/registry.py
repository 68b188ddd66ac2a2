"""Registries of model components."""

from ..utils.registry import Registry

FRAMEWORKS = Registry("FRAMEWORKS")
BACKBONES = Registry("BACKBONES")
HEADS = Registry("HEADS")
LOSSES = Registry("LOSSES")
