"""The training loop in-process on the stand-ins: log lines, accumulation, max_iters,
non-finite losses, validation and the best checkpoint."""

import re

import numpy as np
import paddle
import pytest
import standin

from paddlevideo.tasks.train import NonFiniteLossError, train_model
from paddlevideo.utils import checkpoint as ckpt
from paddlevideo.utils.config import AttrDict, _to_attr, validate_config
from paddlevideo.utils.plot import parse_log


def config(tmp_path, **run):
    cfg = _to_attr(standin.tiny_config(tmp_path / "out", **run))
    return validate_config(AttrDict(cfg))


def params(path):
    return {k: v.numpy() for k, v in paddle.load(str(path)).items()}


def test_log_lines_epoch_summary_checkpoints_and_best(tmp_path, capsys):
    cfg = config(tmp_path, best_metric="loss_match", best_mode="min")
    state = train_model(cfg, validate=True)
    out = capsys.readouterr().out
    assert state.global_step == 16 and state.epoch == 3
    line = re.compile(r"epoch:\[  1/2  \] train step:2    loss: \d+\.\d{6} loss_text: \S+ loss_region: \S+ "
                      r"loss_action: \S+ loss_match: \S+ lr: 0\.010000 batch_cost: \S+ sec, reader_cost: \S+ sec, "
                      r"ips: \S+ instance/sec\. eta: \d+:\d\d:\d\d")
    assert line.search(out), out
    assert "lr: 0.001000" in out  # after the piecewise boundary
    assert re.search(r"END epoch:2   train loss_avg: \S+ loss_text_avg: .* avg_ips: \S+ instance/sec\.", out)
    assert re.search(r"END epoch:1   val loss_avg: \S+ .*loss_match_avg", out)
    names = {p.name for p in (tmp_path / "out").iterdir()}
    assert {"Tiny_epoch_00001.pdparams", "Tiny_epoch_00002.pdopt", "Tiny_best.pdparams", "Tiny_resume.pdckpt",
            "train.log", "loss_curve.png"} <= names
    curves = parse_log(tmp_path / "out" / "train.log")
    assert {"loss", "loss_text", "loss_match"} <= set(curves["train"]) and curves["val"]["loss"][0] == [1, 2]


def test_accumulation_equals_the_big_batch(tmp_path):
    model = {"framework": "TinyPretrain", "dropout": 0.0}
    big = config(tmp_path / "a", MODEL=model, epochs=1)
    big.DATASET.batch_size = 8
    train_model(big)
    small = config(tmp_path / "b", MODEL=model, epochs=1, grad_accum_steps=2)
    state = train_model(small)
    assert state.global_step == 4
    a = params(tmp_path / "a" / "out" / "Tiny_epoch_00001.pdparams")
    b = params(tmp_path / "b" / "out" / "Tiny_epoch_00001.pdparams")
    for k in a:
        np.testing.assert_allclose(a[k], b[k], rtol=2e-5, atol=1e-6)


def test_max_iters_stops_mid_epoch_with_a_resume_point(tmp_path):
    state = train_model(config(tmp_path), max_iters=3)
    assert (state.global_step, state.epoch, state.batch) == (3, 1, 3)
    saved = ckpt.load_resume(str(tmp_path / "out" / "Tiny_resume.pdckpt"))
    assert saved["train_state"]["global_step"] == 3 and saved["train_state"]["batch"] == 3


def test_nonfinite_step_is_skipped_with_a_warning(tmp_path, capsys):
    state = train_model(config(tmp_path, MODEL={"framework": "TinyPretrain", "nan_at": [2]}, epochs=1))
    assert state.global_step == 7  # 8 batches, one skipped
    assert "non-finite loss, step skipped (1 in a row" in capsys.readouterr().out


def test_nonfinite_streak_stops_and_keeps_the_last_checkpoint(tmp_path):
    cfg = config(tmp_path, MODEL={"framework": "TinyPretrain", "nan_at": [4, 5, 6]}, max_nonfinite_steps=2,
                 checkpoint_steps=1)
    with pytest.raises(NonFiniteLossError, match="non-finite for 2 steps in a row"):
        train_model(cfg)
    saved = ckpt.load_resume(str(tmp_path / "out" / "Tiny_resume.pdckpt"))
    assert saved["train_state"]["global_step"] == 3
    assert all(np.isfinite(v.numpy()).all() for v in saved["model"].values())
