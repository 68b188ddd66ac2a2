
from .actbert_loss import ActBertLoss
