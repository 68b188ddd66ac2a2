
from . import multimodal
