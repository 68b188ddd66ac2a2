from . import (
    actbert_dataset,
    coin_dataset,
    crosstask_dataset,
    msrvtt_dataset,
    msrvtt_mc_dataset,
    msrvtt_train_dataset,
    youcook2_dataset,
)
