from .actbert import ActBert
from .actbert_retrieval import ActBertRetrieval
from .actbert_steps import ActBertSegmentation, ActBertStepLocalization
