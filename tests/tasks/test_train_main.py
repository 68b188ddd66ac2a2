"""``main.py`` on bad input: one line ``error: ...``, exit status 2, nothing trained."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import standin
import yaml

import main
from paddlevideo.tasks.train import train_model
from paddlevideo.utils.config import _to_attr

ROOT = Path(__file__).resolve().parents[2]


def write_config(tmp_path, drop=(), **run):
    cfg = standin.tiny_config(tmp_path / "out", **run)
    for key in drop:
        cfg.pop(key)
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return str(path)


def run_main(capsys, *argv):
    status = main.main(list(argv))
    err = capsys.readouterr().err.strip().splitlines()
    return status, err[-1] if err else ""


@pytest.mark.parametrize("make_args, message", [
    (lambda t: ["-c", str(t / "nope.yaml")], "config file not found"),
    (lambda t: ["-c", write_config(t), "--test", "-w", "x"], "--test needs DATASET.test"),
    (lambda t: ["-c", write_config(t, drop=["OPTIMIZER"])], "training needs an OPTIMIZER"),
    (lambda t: ["-c", write_config(t), "-w", str(t / "missing.pdparams")], "missing.pdparams: file not found"),
    (lambda t: ["-c", write_config(t), "--resume", str(t / "gone.pdckpt")], "no checkpoint file"),
    (lambda t: ["-c", write_config(t), "--resume"], "Tiny_resume.pdckpt"),
    (lambda t: ["-c", write_config(t), "-o", "epochz=3"], "did you mean 'epochs'"),
    (lambda t: ["-c", write_config(t), "-o", "best_mode=lowest"], "best_mode must be"),
    (lambda t: ["-c", write_config(t), "--validate", "-o", "DATASET.valid=null"], "--validate needs DATASET.valid"),
])
def test_bad_input_is_one_line_and_status_2(tmp_path, capsys, make_args, message):
    status, line = run_main(capsys, *make_args(tmp_path))
    assert status == 2
    assert line.startswith("error: ") and message in line, line
    assert not (tmp_path / "out" / "Tiny_epoch_00001.pdparams").exists()


def test_unwritable_output_dir(tmp_path, capsys):
    (tmp_path / "blocker").write_text("a file, not a directory")
    status, line = run_main(capsys, "-c", write_config(tmp_path), "-o", f"output_dir={tmp_path}/blocker/out")
    assert status == 2 and "not writable" in line


def test_resume_checkpoint_of_another_model_shape(tmp_path, capsys):
    train_model(_to_attr(standin.tiny_config(tmp_path / "out")), max_iters=1)
    status, line = run_main(capsys, "-c", write_config(tmp_path), "-o", "MODEL.hidden=8", "--resume")
    assert status == 2 and "does not fit the model" in line and "shape" in line


def test_cpu_threads_default_and_yaml(tmp_path, monkeypatch):
    for var in ("OMP_NUM_THREADS", "PADDLE_LOCAL_SIZE", "PADDLE_TRAINER_ID"):
        monkeypatch.delenv(var, raising=False)
    main.set_cpu_threads(None)
    assert os.environ["OMP_NUM_THREADS"] == str(os.cpu_count())
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # what paddle.distributed.launch passes on
    monkeypatch.setenv("PADDLE_LOCAL_SIZE", "2")
    main.set_cpu_threads(None)
    assert os.environ["OMP_NUM_THREADS"] == str(max(1, os.cpu_count() // 2))
    args = main.parse_args(["-c", write_config(tmp_path, num_threads=3)])
    main.set_cpu_threads(main._configured_threads(args))
    assert os.environ["OMP_NUM_THREADS"] == "3"


def test_thread_setting_survives_paddle_import(tmp_path):
    """Paddle keeps an OMP_NUM_THREADS set before its import (it forces 1 only when unset)."""
    code = ("import main; main.set_cpu_threads(3); import paddle, os; print(os.environ['OMP_NUM_THREADS'])")
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split()[-1] == "3"
