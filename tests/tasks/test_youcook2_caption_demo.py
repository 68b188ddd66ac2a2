"""The YouCook2 captioning demo learns: a tiny ActBertCaption (frozen, randomly initialised
encoder; decoder trained 120 steps) on the synthetic corpus beats the trivial captioner
(the most frequent training sentence for every segment) clearly on held-out segments, by
the real metric path (pycocoevalcap, one corpus call each); the outputs are written."""

import csv
import json
import shutil

import numpy as np
import paddle
import pytest

from paddlevideo.captioning import evaluate_captions
from paddlevideo.loader.dataloader import collate_batch, to_tensors
from paddlevideo.loader.dataset.youcook2_dataset import YouCook2CaptionDataset
from paddlevideo.modeling.framework.actbert_caption import ActBertCaption
from tools.demo_youcook2 import make_youcook2_demo

WIDTH = 32


def tiny_model(vocab_size):
    streams = {"hidden_size": WIDTH, "num_attention_heads": 2, "intermediate_size": 2 * WIDTH,
               "v_hidden_size": WIDTH, "v_num_attention_heads": 2, "v_intermediate_size": 2 * WIDTH,
               "a_hidden_size": WIDTH, "a_num_attention_heads": 2, "a_intermediate_size": 2 * WIDTH,
               "bi_hidden_size": WIDTH, "bi_num_attention_heads": 2}
    backbone = {"name": "BertForMultiModalPreTraining", "vocab_size": vocab_size, "max_position_embeddings": 64,
                "v_feature_size": 16, "a_feature_size": 16, "v_target_size": 5, "a_target_size": 4,
                "num_hidden_layers": 2, "v_num_hidden_layers": 2, "a_num_hidden_layers": 2,
                "t_ent_attention_id": [0, 1], "v_ent_attention_id": [0, 1], "a_ent_attention_id": [0, 1], **streams}
    decoder = {"name": "CaptionDecoder", "vocab_size": vocab_size, "d_model": WIDTH, "num_layers": 2, "num_heads": 2,
               "dim_feedforward": 2 * WIDTH, "dropout": 0.1, "max_length": 48}
    paddle.seed(0)
    return ActBertCaption(backbone, decoder, freeze_encoder=True, bos_id=2, eos_id=3, pad_id=0, unk_id=1,
                          beam_size=2, max_decode_length=46)


@pytest.mark.skipif(shutil.which("java") is None, reason="needs Java (installed by .ci/run)")
def test_captioning_demo_beats_the_most_frequent_sentence(tmp_path):
    info = make_youcook2_demo(str(tmp_path / "data"), seed=0, num_videos=64, feature_dim=16)
    data = tmp_path / "data"
    common = dict(file_path=str(data / "youcookii_annotations_trainval.json"),
                  features_path=str(data / "youcook2.lmdb"), vocab_file=str(data / "vocab.txt"), max_region_num=16,
                  max_seq_length=48)
    train = YouCook2CaptionDataset(subset="training", **common)
    valid = YouCook2CaptionDataset(subset="validation", **common)
    net = tiny_model(info["vocab_size"])
    optimizer = paddle.optimizer.AdamW(learning_rate=2e-3,
                                       parameters=[p for p in net.parameters() if not p.stop_gradient])
    rng = np.random.default_rng(0)
    net.train()
    for _ in range(120):
        loss = net(to_tensors(collate_batch(train, rng.choice(len(train), 32, replace=False))))["loss"]
        loss.backward()
        optimizer.step()
        optimizer.clear_grad()
    result = evaluate_captions(net, valid, str(tmp_path / "out"), batch_size=64, train_dataset=train)
    model, baseline = result["metrics"], result["baseline"]
    print("\nheld-out segments:", len(valid.segments))
    for name in model:
        print(f"{name:8s} model {model[name]:7.1f}   most frequent sentence {baseline[name]:7.1f}")
    assert model["CIDEr"] > baseline["CIDEr"] + 100 and model["CIDEr"] > 3 * baseline["CIDEr"]
    assert model["METEOR"] > baseline["METEOR"] + 10 and model["BLEU-4"] > baseline["BLEU-4"] + 10
    report = json.loads((tmp_path / "out" / "caption_metrics.json").read_text())
    assert report["metrics"] == model and report["segments"] == len(valid.segments) and report["freeze_encoder"]
    with open(tmp_path / "out" / "captions.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(valid.segments)
    assert [(r["video_id"], int(r["segment"]), r["reference"]) for r in rows] == [
        (s.video_id, s.index, s.sentence) for s in valid.segments]
    assert sum(r["generated"] == r["reference"] for r in rows) > len(rows) / 3
