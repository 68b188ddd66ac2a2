"""Checkpoint files: PaddleVideo's names, atomic writes, resume-file checks."""

import os

import paddle
import pytest

from paddlevideo.utils import checkpoint as ckpt
from paddlevideo.utils.errors import ConfigError, WeightsError


def test_paddlevideo_names(tmp_path):
    assert ckpt.epoch_paths(str(tmp_path), "ActBert", 3) == (
        str(tmp_path / "ActBert_epoch_00003.pdparams"), str(tmp_path / "ActBert_epoch_00003.pdopt"))
    assert ckpt.best_path(str(tmp_path), "ActBert").endswith("ActBert_best.pdparams")


def test_crash_during_save_leaves_previous_file(tmp_path, monkeypatch):
    path = str(tmp_path / "m.pdparams")
    ckpt.atomic_save({"w": paddle.ones([3])}, path)
    real_save = paddle.save

    def torn_save(obj, target):
        real_save(obj, target)
        with open(target, "r+b") as f:  # simulate dying half-way through the write
            f.truncate(10)
        raise OSError("disk full")

    monkeypatch.setattr(paddle, "save", torn_save)
    with pytest.raises(OSError):
        ckpt.atomic_save({"w": paddle.zeros([3])}, path)
    monkeypatch.undo()
    assert float(paddle.load(path)["w"].sum()) == 3.0
    assert os.listdir(tmp_path) == ["m.pdparams"]  # no temporary left behind


def test_resume_file_errors(tmp_path):
    with pytest.raises(WeightsError, match="no checkpoint file"):
        ckpt.load_resume(str(tmp_path / "missing.pdckpt"))
    weights = tmp_path / "w.pdparams"
    paddle.save({"w": paddle.ones([1])}, str(weights))
    with pytest.raises(WeightsError, match="not a resume checkpoint"):
        ckpt.load_resume(str(weights))
    junk = tmp_path / "junk.pdckpt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError, match="not a readable checkpoint"):
        ckpt.load_resume(str(junk))


def test_state_dict_mismatch_is_named():
    model = paddle.nn.Linear(2, 3)
    with pytest.raises(WeightsError, match=r"'weight' has shape \[2, 4\]"):
        ckpt.check_state_dict(model, {"weight": paddle.ones([2, 4]), "bias": paddle.ones([3])}, "x")
    with pytest.raises(WeightsError, match="1 missing keys"):
        ckpt.check_state_dict(model, {"weight": paddle.ones([2, 3])}, "x")


def test_unwritable_output_dir(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ConfigError, match="not writable"):
        ckpt.check_writable(str(blocker / "out"))
