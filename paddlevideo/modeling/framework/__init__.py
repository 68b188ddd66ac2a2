
from .actbert import ActBert
