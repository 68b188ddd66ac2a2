from .actbert_loss import ActBertLoss
from .retrieval_loss import RetrievalMatchingLoss
from .steps_loss import SegmentationLoss, StepLocalizationLoss
