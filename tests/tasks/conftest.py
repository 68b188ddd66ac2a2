"""The demo model pretrained once per test session, and its zero-shot evaluation, shared by the
demo end-to-end tests."""

import json

import pytest
from demo_helpers import CONFIGS, PRETRAIN_EPOCHS, demo_test_overrides, run_python


@pytest.fixture(scope="session")
def demo_pretrained(tmp_path_factory):
    """(demo data dir, pretraining output dir, checkpoint, training log): the demo corpus and the
    demo model pretrained on it (the slowest part of the suite)."""
    tmp = tmp_path_factory.mktemp("demo_pretrained")
    data, out = tmp / "demo", tmp / "out"
    run_python(["tools/make_demo_data.py", "--out", str(data)])
    train = ["-o", f"output_dir={out}", "-o", f"epochs={PRETRAIN_EPOCHS}", "-o", f"save_interval={PRETRAIN_EPOCHS}"]
    for split, npy, captions in (("train", "actbert_train_data.npy", "caption_train.json"),
                                 ("valid", "actbert_val_data.npy", "caption_val.json")):
        train += ["-o", f"DATASET.{split}.file_path={data / npy}", "-o", f"DATASET.{split}.vocab_file={data}/vocab.txt",
                  "-o", f"PIPELINE.{split}.transform.1.caption_path={data / captions}"]
    log = run_python(["main.py", "-c", str(CONFIGS / "actbert_demo.yaml"), *train])
    return data, out, out / f"ActBert_demo_epoch_{PRETRAIN_EPOCHS:05d}.pdparams", log


@pytest.fixture(scope="session")
def demo_zero_shot(demo_pretrained, tmp_path_factory):
    """(output dir, text->video metrics): ``main.py --test`` of the pretrained demo model on the
    held-out demo test set, run once as a user would (the demo's step 4)."""
    data, _, checkpoint, _ = demo_pretrained
    out = tmp_path_factory.mktemp("demo_zero_shot")
    run_python(["main.py", "--test", "-c", str(CONFIGS / "actbert_msrvtt_demo.yaml"), "-w", str(checkpoint),
                *demo_test_overrides(data, out)])
    return out, json.loads((out / "msrvtt_metrics.json").read_text())["t2v"]
