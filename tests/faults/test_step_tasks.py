"""Hostile input to the step tasks through main.py (issue 20): a checkpoint without the
segmentation head, a METRIC of the other task, class counts that do not fit, corrupt,
truncated and non-finite per-second records, a split file that cannot be written, missing
annotation files. Each ends in one ``error: ...`` line with exit status 2."""

import json
import shutil

import numpy as np
import paddle
import pytest

import main
from paddlevideo.modeling import build_model, describe_checkpoint, load_model_weights
from paddlevideo.utils.config import get_config
from paddlevideo.utils.errors import WeightsError
from paddlevideo.utils.logger import setup_logger

CONFIGS = "configs/multimodal/actbert"
FEATURES = ["-o", "MODEL.backbone.v_feature_size=16", "-o", "MODEL.backbone.a_feature_size=16"]


def coin_args(data, info, out, features=None):
    args = [*FEATURES, "-o", f"MODEL.num_classes={info['num_classes']}", "-o", f"output_dir={out}"]
    for split in ("train", "valid", "test"):
        args += ["-o", f"DATASET.{split}.file_path={data / 'COIN.json'}", "-o",
                 f"DATASET.{split}.features_dir={features or data / 'features'}",
                 "-o", f"DATASET.{split}.vocab_file={data / 'vocab.txt'}"]
    return args


def crosstask_args(data, out, split_file):
    args = [*FEATURES, "-o", f"output_dir={out}"]
    for split in ("train", "valid", "test"):
        keys = {"root": data / "crosstask_release", "features_dir": data / "features", "vocab_file": data / "vocab.txt",
                "split_file": split_file, "n_train": 1}
        args += [x for k, v in keys.items() for x in ("-o", f"DATASET.{split}.{k}={v}")]
    return args


def run(capsys, *argv):
    setup_logger()  # --test keeps the logger a previous in-process run set up, on a stream capsys closed
    status = main.main([str(a) for a in argv])
    out = capsys.readouterr()
    return status, out.out + out.err


def one_line_error(status, log, *expected):
    errors = [line for line in log.splitlines() if line.startswith("error: ")]
    assert status == 2 and len(errors) == 1 and "Traceback" not in log, log[-3000:]
    for text in expected:
        assert text in errors[0], (text, errors[0])


def backbone_only_checkpoint(cfg_name, overrides, path):
    """A full checkpoint of the config's model without its own head (as ActBERT.pdparams is)."""
    cfg = get_config(f"{CONFIGS}/{cfg_name}", overrides)
    model = build_model(cfg.MODEL)
    paddle.save({f"backbone.{k}": v for k, v in model.backbone.state_dict().items()}, str(path))
    return model


def test_coin_test_refuses_a_checkpoint_without_the_head(coin_demo, tmp_path, capsys):
    data, info = coin_demo
    args = coin_args(data, info, tmp_path / "out")
    weights = tmp_path / "backbone_only.pdparams"
    model = backbone_only_checkpoint("actbert_coin_demo.yaml", args[1::2], weights)
    assert describe_checkpoint(weights) == "full"
    status, log = run(capsys, "--test", "-c", f"{CONFIGS}/actbert_coin_demo.yaml", *args, "-w", weights)
    one_line_error(status, log, "holds no weights for the framework's own layers: missing key(s) of "
                   "ActBertSegmentation: head.weight, head.bias")
    # a full checkpoint with the head loads it; one with a head of another size is refused by name
    full = tmp_path / "full.pdparams"
    paddle.save(model.state_dict(), str(full))
    fresh = backbone_only_checkpoint("actbert_coin_demo.yaml", args[1::2], tmp_path / "other.pdparams")
    load_model_weights(fresh, full)
    assert fresh.fresh_parameters == [] and np.array_equal(fresh.head.weight.numpy(), model.head.weight.numpy())
    state = model.state_dict()
    state["head.bias"] = paddle.zeros([3])
    paddle.save(state, str(full))
    with pytest.raises(WeightsError, match=r"own parameters: shape mismatch: 'head.bias' file \[3\] vs model"):
        load_model_weights(fresh, full)


def test_metric_of_the_other_task_is_refused(coin_demo, tmp_path, capsys):
    data, info = coin_demo
    args = coin_args(data, info, tmp_path / "out")
    status, log = run(capsys, "--validate", "-c", f"{CONFIGS}/actbert_coin_demo.yaml", *args, "-o",
                      "METRIC.name=CrossTaskMetric")
    one_line_error(status, log, "METRIC CrossTaskMetric does not evaluate DATASET.valid (COINDataset)",
                   "COINMetric")


def test_class_count_that_does_not_fit_the_head(coin_demo, tmp_path, capsys):
    data, info = coin_demo
    args = coin_args(data, info, tmp_path / "out") + ["-o", "MODEL.num_classes=779"]
    status, log = run(capsys, "-c", f"{CONFIGS}/actbert_coin_demo.yaml", *args)
    one_line_error(status, log, f"DATASET.train has {info['num_classes']} classes", "MODEL.num_classes is 779")


@pytest.mark.parametrize("damage, expected", [
    ("truncated", "not a readable .npz of per-second features"),
    ("nan", "non-finite features"),
    ("shapes", "inconsistent shapes"),
    ("zero", "not a readable .npz of per-second features"),
])
def test_damaged_record_is_named(coin_demo, tmp_path, capsys, damage, expected):
    data, info = coin_demo
    features = tmp_path / "features"
    shutil.copytree(data / "features", features)
    videos = json.loads((data / "COIN.json").read_text())["database"]
    first = next(v for v, r in videos.items() if r["subset"] == "training" and (features / f"{v}.npz").exists())
    path = features / f"{first}.npz"
    if damage == "truncated":
        path.write_bytes(path.read_bytes()[:200])
    elif damage == "zero":
        path.write_bytes(b"")
    else:
        record = dict(np.load(path))
        if damage == "nan":
            record["action"][0, 0] = np.nan
        else:
            record["region_count"] = record["region_count"][:-1]
        np.savez(path, **record)
    status, log = run(capsys, "-c", f"{CONFIGS}/actbert_coin_demo.yaml", *coin_args(data, info, tmp_path / "o",
                                                                                    features), "-o", "epochs=1")
    one_line_error(status, log, str(path), expected)


def test_crosstask_split_file_that_cannot_be_written(crosstask_demo, tmp_path, capsys):
    # "unwritable": a path under a regular file (ENOTDIR), since root can write anywhere
    (tmp_path / "file").write_text("x")
    args = crosstask_args(crosstask_demo[0], tmp_path / "out", tmp_path / "file" / "split.json")
    status, log = run(capsys, "-c", f"{CONFIGS}/actbert_crosstask_demo.yaml", *args)
    one_line_error(status, log, "cannot write the split")


def test_crosstask_annotation_removed_after_the_split(crosstask_demo, tmp_path, capsys):
    data = tmp_path / "ct"
    shutil.copytree(crosstask_demo[0], data)
    args = crosstask_args(data, tmp_path / "out", data / "split.json")
    status, log = run(capsys, "-c", f"{CONFIGS}/actbert_crosstask_demo.yaml", *args, "--max_iters", "1")
    assert status in (0, None), log[-3000:]
    split = json.loads((data / "split.json").read_text())
    task, vid = next((t, v) for t, vids in split["test"].items() for v in vids
                     if (data / "features" / f"{v}.npz").exists())
    (data / "crosstask_release" / "annotations" / f"{task}_{vid}.csv").unlink()
    weights = tmp_path / "out" / "ActBert_crosstask_demo_resume.pdckpt"
    assert weights.exists()
    zero_shot = tmp_path / "zero.pdparams"
    backbone_only_checkpoint("actbert_crosstask_demo.yaml", args[1::2], zero_shot)
    status, log = run(capsys, "--test", "-c", f"{CONFIGS}/actbert_crosstask_demo.yaml", *args, "-w", zero_shot)
    one_line_error(status, log, f"{task}_{vid}.csv: annotation file not found")


def test_crosstask_metric_needs_the_test_part(crosstask_demo, tmp_path, capsys):
    args = crosstask_args(crosstask_demo[0], tmp_path / "out", tmp_path / "split.json")
    args += ["-o", "DATASET.test.part=train"]
    weights = tmp_path / "zero.pdparams"
    backbone_only_checkpoint("actbert_crosstask_demo.yaml", args[1::2], weights)
    status, log = run(capsys, "--test", "-c", f"{CONFIGS}/actbert_crosstask_demo.yaml", *args, "-w", weights)
    one_line_error(status, log, "CrossTask is evaluated on part: test, not train")
