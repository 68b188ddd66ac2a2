from .actbert import ActBert
from .actbert_caption import ActBertCaption
from .actbert_retrieval import ActBertRetrieval
from .actbert_steps import ActBertSegmentation, ActBertStepLocalization
