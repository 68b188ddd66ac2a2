from . import actbert_dataset, msrvtt_dataset
