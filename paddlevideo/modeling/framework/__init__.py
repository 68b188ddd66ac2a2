from .actbert import ActBert
from .actbert_retrieval import ActBertRetrieval
