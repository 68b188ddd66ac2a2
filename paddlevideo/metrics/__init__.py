from . import captioning, coin, crosstask, multiple_choice, retrieval, youcook2_retrieval
from .registry import METRICS
