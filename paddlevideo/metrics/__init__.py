from . import retrieval
from .registry import METRICS
