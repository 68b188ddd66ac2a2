from . import backbones, framework, heads, losses
from .builder import build_model
from .registry import BACKBONES, FRAMEWORKS, HEADS, LOSSES
from .weights import describe_checkpoint, load_backbone_weights, load_model_weights
