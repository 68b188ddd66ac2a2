from . import captioning, multiple_choice, retrieval, youcook2_retrieval
from .registry import METRICS
