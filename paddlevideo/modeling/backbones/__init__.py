
from .actbert import ActBertConfig, BertForMultiModalPreTraining
