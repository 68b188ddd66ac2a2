"""The step tasks end to end through main.py on small synthetic corpora (tools/demo_steps.py):
the demo configs train, --test writes the metrics, and the figures rise clearly above their
baselines (COIN: all-background; CrossTask: the uniform assignment). Corpora and step counts
are cut down from the demo configs' (16-d features, few videos) to keep each test short."""

import json

import pytest
from demo_helpers import CONFIGS

import main
from paddlevideo.utils.logger import setup_logger
from tools.demo_steps import make_coin_demo, make_crosstask_demo

FEATURES = ["-o", "MODEL.backbone.v_feature_size=16", "-o", "MODEL.backbone.a_feature_size=16"]


def run_main(capsys, *argv):
    setup_logger()  # --test keeps the logger a previous in-process run set up, on a stream capsys closed
    status = main.main([str(a) for a in argv])
    out = capsys.readouterr()
    assert status in (0, None), out.err[-3000:] + out.out[-3000:]
    return out.out + out.err


def data_overrides(keys):
    """``-o DATASET.<split>.<key>=<value>`` for every split and key."""
    splits = ("train", "valid", "test")
    return [x for split in splits for k, v in keys.items() for x in ("-o", f"DATASET.{split}.{k}={v}")]


def test_coin_demo_beats_all_background(tmp_path, capsys):
    data = tmp_path / "coin"
    info = make_coin_demo(str(data), seed=0, num_videos=60, feature_dim=16)
    common = [*FEATURES, "-o", f"MODEL.num_classes={info['num_classes']}", "-o", f"output_dir={tmp_path / 'out'}",
              *data_overrides({"file_path": data / "COIN.json", "features_dir": data / "features",
                               "vocab_file": data / "vocab.txt"})]
    config = CONFIGS / "actbert_coin_demo.yaml"
    run_main(capsys, "-c", config, *common, "-o", "epochs=4", "-o", "save_interval=4")
    log = run_main(capsys, "--test", "-c", config, *common, "-w",
                   tmp_path / "out" / "ActBert_coin_demo_epoch_00004.pdparams")
    metrics = json.loads((tmp_path / "out" / "coin_metrics.json").read_text())
    assert "all-background baseline" in log and "accuracy on non-background seconds" in log
    assert metrics["frame_accuracy"] > metrics["background_baseline"] + 25, metrics
    assert metrics["non_background_accuracy"] > 60, metrics  # all-background: 0
    predictions = json.loads((tmp_path / "out" / "coin_predictions.json").read_text())["videos"]
    assert len(predictions) == metrics["videos"] and metrics["missing"] == [
        v for v in info["no_features"] if v in metrics["missing"]]


@pytest.mark.parametrize("n_train", [4])
def test_crosstask_demo_beats_the_uniform_assignment(tmp_path, capsys, n_train):
    data = tmp_path / "crosstask"
    make_crosstask_demo(str(data), seed=0, videos_per_task=n_train + 3, feature_dim=16)
    config = CONFIGS / "actbert_crosstask_demo.yaml"
    common = [*FEATURES, "-o", f"output_dir={tmp_path / 'out'}",
              *data_overrides({"root": data / "crosstask_release", "features_dir": data / "features",
                               "vocab_file": data / "vocab.txt", "split_file": data / "split.json",
                               "n_train": n_train})]
    run_main(capsys, "-c", config, *common, "-o", "epochs=2", "-o", "save_interval=2")
    split = json.loads((data / "split.json").read_text())
    assert all(len(v) == n_train for v in split["train"].values())
    run_main(capsys, "--test", "-c", config, *common, "-w",
             tmp_path / "out" / "ActBert_crosstask_demo_epoch_00002.pdparams")
    metrics = json.loads((tmp_path / "out" / "crosstask_metrics.json").read_text())
    assert metrics["recall"] > metrics["uniform_recall"] + 10, metrics
    assert set(metrics["per_task"]) == set(split["tasks"]) and len(metrics["per_task"]) == 18


def test_crosstask_zero_shot_from_a_pretrained_checkpoint(tmp_path, capsys):
    """--test with a checkpoint of the backbone only (as ActBERT.pdparams): every test video
    gets one second per step, in task order, and the split it used is recorded."""
    import paddle

    from paddlevideo.modeling import build_model
    from paddlevideo.utils.config import get_config

    data = tmp_path / "crosstask"
    make_crosstask_demo(str(data), seed=3, videos_per_task=3, feature_dim=16)
    config = CONFIGS / "actbert_crosstask_demo.yaml"
    common = [*FEATURES, "-o", f"output_dir={tmp_path / 'out'}",
              *data_overrides({"root": data / "crosstask_release", "features_dir": data / "features",
                               "vocab_file": data / "vocab.txt", "split_file": data / "split.json", "n_train": 1})]
    model = build_model(get_config(config, common[1::2]).MODEL)
    weights = tmp_path / "pretrained.pdparams"
    paddle.save({f"backbone.{k}": v for k, v in model.backbone.state_dict().items()}, str(weights))
    log = run_main(capsys, "--test", "-c", config, *common, "-w", weights)
    assert "the uniform assignment (no model) on the same videos" in log
    metrics = json.loads((tmp_path / "out" / "crosstask_metrics.json").read_text())
    predicted = json.loads((tmp_path / "out" / "crosstask_predictions.json").read_text())
    assert predicted["split"] == json.loads((data / "split.json").read_text())
    short = set(metrics["short_videos"])
    for video, seconds in predicted["videos"].items():
        order = [b - a for a, b in zip(seconds, seconds[1:])]
        assert all(d > 0 for d in order) or (video in short and all(d >= 0 for d in order)), (video, seconds)
    assert metrics["videos"] == len(predicted["videos"]) and 0 <= metrics["recall"] <= 100
