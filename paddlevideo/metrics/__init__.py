from . import coin, crosstask, multiple_choice, retrieval
from .registry import METRICS
