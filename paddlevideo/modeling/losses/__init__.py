from .actbert_loss import ActBertLoss
from .retrieval_loss import RetrievalMatchingLoss
