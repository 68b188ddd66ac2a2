from . import multiple_choice, retrieval
from .registry import METRICS
