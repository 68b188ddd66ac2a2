from .actbert_loss import ActBertLoss
from .caption_loss import CaptionLoss
from .retrieval_loss import RetrievalMatchingLoss
from .steps_loss import SegmentationLoss, StepLocalizationLoss
