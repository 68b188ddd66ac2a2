"""Fault injection for ``tools/train_first_stage.py``: bad settings, missing or foreign inputs,
an unwritable or foreign ``--out``, a second writer; and one tiny successful run whose file is
tied to the teacher's weights (any other weights are refused).

A random-weight demo-size teacher (2 text layers) and 24 demo training videos; the training is
cut to one round of 2 epochs (a few seconds). "Unwritable" is a path under a regular file
(ENOTDIR): we run as root, so permissions would not stop us.
"""

from pathlib import Path

import numpy as np
import paddle
import pytest

from paddlevideo.retrieval.export import file_digest
from paddlevideo.retrieval.first_stage import load_first_stage
from paddlevideo.utils.config import get_config
from paddlevideo.utils.errors import WeightsError
from paddlevideo.utils.writer_lock import writer_lock
from tests.modeling.modeling_helpers import build
from tools import train_first_stage
from tools.make_demo_data import make_demo_data

ROOT = Path(__file__).resolve().parents[2]
CONFIG = str(ROOT / "configs/multimodal/actbert/actbert_first_stage_demo.yaml")
TINY = ["MODEL.backbone.num_hidden_layers=2", "MODEL.backbone.t_ent_attention_id=[0,1]",
        "FIRST_STAGE.rounds=1", "FIRST_STAGE.epochs=2", "FIRST_STAGE.candidates=8", "FIRST_STAGE.holdout=0.5"]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("first_stage_tool")
    data = tmp / "demo"
    make_demo_data(str(data), num_train=4, num_val=2, num_test=4, num_finetune=24)
    keys = ("captions_path", "split_path", "features_path", "vocab_file")
    files = ("MSRVTT_data.json", "MSRVTT_train.9k.csv", "msrvtt_train.lmdb", "vocab.txt")
    overrides = [*TINY, *(f"DATASET.train.{k}={data / f}" for k, f in zip(keys, files))]
    cfg = get_config(CONFIG, overrides)
    weights = tmp / "teacher.pdparams"
    backbone = build({k: v for k, v in cfg.MODEL.backbone.items() if k != "name"}, seed=3)
    paddle.save({f"backbone.{k}": v for k, v in backbone.state_dict().items()}, str(weights))
    return {"tmp": tmp, "overrides": overrides, "weights": weights}


def run(setup, *extra, out=None, weights=None, overrides=()):
    out = out or setup["tmp"] / "stage.npz"
    args = ["-c", CONFIG, "-w", str(weights or setup["weights"]), "--out", str(out), "--no-progress"]
    for o in [*setup["overrides"], *overrides]:
        args += ["--override", o]
    return train_first_stage.main(args + list(extra))


def test_trains_and_ties_the_file_to_the_teacher(setup, capsys):
    out = setup["tmp"] / "stage.npz"
    assert run(setup, out=out) == 0
    assert "first stage written to" in capsys.readouterr().out
    stage = load_first_stage(out, file_digest(setup["weights"]))
    assert stage.dim == 128 and stage.meta["holdout_videos"] >= 10
    assert np.isfinite(stage.meta["holdout_recall"])
    with pytest.raises(WeightsError, match="distilled from the ActBERT weights"):
        load_first_stage(out, "0" * 64)
    assert run(setup, out=out) == 0  # a file of ours is replaced


@pytest.mark.parametrize("override, message", [
    ("FIRST_STAGE.candidates=0", "FIRST_STAGE.candidates must be"),
    ("FIRST_STAGE.epochs=-1", "FIRST_STAGE.epochs must be"),
    ("FIRST_STAGE.teacher_temperature=nan", "FIRST_STAGE.teacher_temperature must be a positive number"),
    ("FIRST_STAGE.dimension=3", "unknown key"),
    ("DATASET.train.features_path=/nonexistent/x.lmdb", "x.lmdb"),
])
def test_bad_settings_and_inputs_are_one_line_errors(setup, capsys, override, message):
    assert run(setup, overrides=[override], out=setup["tmp"] / "bad.npz") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0], err
    assert not (setup["tmp"] / "bad.npz").exists()


def test_missing_weights_and_bad_pair_batch(setup, capsys):
    assert run(setup, weights=setup["tmp"] / "missing.pdparams") == 2
    assert "file not found" in capsys.readouterr().err
    assert run(setup, "--pair_batch_size", "0") == 2
    assert "--pair_batch_size must be at least 1" in capsys.readouterr().err


def test_foreign_or_unwritable_out_is_refused_and_untouched(setup, capsys):
    foreign = setup["tmp"] / "ActBERT.pdparams"
    foreign.write_bytes(b"somebody's checkpoint")
    assert run(setup, out=foreign) == 2
    assert "left untouched" in capsys.readouterr().err
    assert foreign.read_bytes() == b"somebody's checkpoint"
    assert run(setup, out=foreign / "stage.npz") == 2  # under a regular file: ENOTDIR
    assert "is a file, not a folder" in capsys.readouterr().err


def test_a_second_writer_is_refused(setup, capsys):
    out = setup["tmp"] / "busy.npz"
    with writer_lock(str(out), "--out"):
        assert run(setup, out=out) == 2
    assert "error: " in capsys.readouterr().err
    assert not out.exists()
