from . import actbert_dataset, msrvtt_dataset, msrvtt_mc_dataset, msrvtt_train_dataset, youcook2_dataset
