from . import lr, optimizer
from .lr import build_lr
from .optimizer import build_optimizer
from .registry import LR_SCHEDULERS, OPTIMIZERS
