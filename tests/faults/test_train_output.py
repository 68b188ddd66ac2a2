"""One training per ``output_dir``, and no run overwrites another's outputs.

- concurrent: a second training into the ``output_dir`` of a running one is refused with one
  line naming the holder (two real processes; the lock is ``writer_lock``, held by rank 0);
- foreign: a new run into a folder holding an earlier run's checkpoints is refused unless it
  continues that run (``--resume``, ``resume_epoch``), which still works;
- ``--test`` into a folder holding an earlier test's results writes to a new
  ``test_<date-time>`` folder beside them, leaving them as they were.
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import paddle
import pytest
import standin
import yaml

import main
from paddlevideo.evaluation.base import results_dir
from paddlevideo.utils import progress
from paddlevideo.utils.writer_lock import writer_lock

TASKS = Path(__file__).resolve().parents[1] / "tasks"
ROOT = TASKS.parents[1]
ENV = dict(os.environ, OMP_NUM_THREADS="1")


def write_config(tmp_path, **run):
    cfg = standin.tiny_config(tmp_path / "out", **run)
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return str(path)


def start(*argv):
    return subprocess.Popen([sys.executable, str(TASKS / "run_main.py"), *argv], cwd=ROOT, env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(path, text, proc, timeout=90):
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        if path.exists() and text in path.read_text():
            return
        time.sleep(0.1)
    raise AssertionError(f"{text!r} never appeared in {path}: {proc.communicate()}")


def last_error(capsys):
    lines = capsys.readouterr().err.strip().splitlines()
    return lines[-1] if lines else ""


def test_a_second_training_into_a_running_ones_output_dir_is_refused(tmp_path, capsys):
    cfg = write_config(tmp_path, MODEL={"framework": "TinyPretrain", "delay": 2.0}, epochs=1, log_interval=1)
    first = start("-c", cfg)
    wait_for(tmp_path / "out" / "train.log", "train step:1 ", first)
    second = start("-c", cfg, "-o", "MODEL.delay=0")
    out, err = second.communicate(timeout=90)
    assert second.returncode == 2, out + err
    assert err.strip().splitlines()[-1] == (
        f"error: training output_dir {tmp_path}/out is being written by pid {first.pid}; wait for it to end or "
        "choose another output")
    assert first.poll() is None  # still training, untouched
    first.kill()
    out, err = first.communicate(timeout=30)
    # Its log went to a pipe and a file, neither a terminal: no progress bar redraws in either.
    log = (tmp_path / "out" / "train.log").read_text()
    assert "train step:1 " in log and "\r" not in log + out + err
    # kill -9 released the lock; the killed run left no checkpoint, so a new run may start.
    assert main.main(["-c", cfg, "-o", "MODEL.delay=0"]) == 0
    assert (tmp_path / "out" / "Tiny_epoch_00001.pdparams").exists()


def test_a_new_run_into_an_earlier_runs_folder_is_refused_and_resume_still_works(tmp_path, capsys):
    cfg = write_config(tmp_path, epochs=2)
    assert main.main(["-c", cfg, "--max_iters", "3"]) == 0
    before = (tmp_path / "out" / "Tiny_resume.pdckpt").read_bytes()
    assert main.main(["-c", cfg]) == 2
    assert last_error(capsys) == (
        f"error: output_dir {tmp_path}/out already holds a run of Tiny (Tiny_resume.pdckpt); continue it with "
        "--resume, write this run elsewhere with -o output_dir=DIR, or remove those files first")
    assert (tmp_path / "out" / "Tiny_resume.pdckpt").read_bytes() == before
    assert main.main(["-c", cfg, "--resume"]) == 0
    state = paddle.load(str(tmp_path / "out" / "Tiny_resume.pdckpt"))["train_state"]
    assert state["global_step"] == 16 and state["epoch"] == 3
    # PaddleVideo's resume continues the run too; another model_name is another run.
    assert main.main(["-c", cfg, "-o", "epochs=3", "-o", "resume_epoch=2"]) == 0
    assert (tmp_path / "out" / "Tiny_epoch_00003.pdparams").exists()
    assert main.main(["-c", cfg, "-o", "model_name=Other", "--max_iters", "1"]) == 0
    assert main.main(["-c", cfg, "-o", "model_name=Other"]) == 2
    assert "already holds a run of Other (Other_resume.pdckpt)" in last_error(capsys)


def test_more_than_three_checkpoints_are_counted_not_listed(tmp_path, capsys):
    cfg = write_config(tmp_path, epochs=4)
    assert main.main(["-c", cfg, "--validate"]) == 0
    assert main.main(["-c", cfg]) == 2
    assert "(Tiny_best.pdparams, Tiny_epoch_00001.pdparams, Tiny_epoch_00002.pdparams and 3 more)" \
        in last_error(capsys)


def test_rank_0_refused_under_the_launcher_ends_every_rank(tmp_path):
    """The other ranks take no lock (they write nothing): refused on rank 0, the launch ends
    with an error instead of leaving rank 1 waiting for it."""
    cfg = write_config(tmp_path, epochs=1)
    (tmp_path / "out").mkdir()
    with writer_lock(tmp_path / "out", "training output_dir"):
        launch = subprocess.run(
            [sys.executable, "-m", "paddle.distributed.launch", "--nproc_per_node", "2", "--log_dir",
             str(tmp_path / "logs"), str(TASKS / "run_main.py"), "-c", cfg, "-o", "DATASET.batch_size=2"],
            cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=180)
    rank0 = (tmp_path / "logs" / "workerlog.0").read_text()
    assert launch.returncode != 0
    assert "is being written by pid" in rank0, rank0
    assert not (tmp_path / "out" / "Tiny_epoch_00001.pdparams").exists()


def test_test_results_never_overwrite_an_earlier_tests(tmp_path, monkeypatch):
    monkeypatch.setattr("time.strftime", lambda fmt: "20261203-120000")  # two tests within one second
    files = ("msrvtt_metrics.json", "msrvtt_scores.npy")
    out = tmp_path / "out"
    assert results_dir(str(out), files) == str(out)  # created, empty: the folder itself
    (out / "msrvtt_metrics.json").write_text('{"earlier": 1}')
    first, second = results_dir(str(out), files), results_dir(str(out), files)
    assert first != second and Path(first).parent == Path(second).parent == out
    assert (Path(first).name, Path(second).name) == ("test_20261203-120000", "test_20261203-120000_2")
    assert json.loads((out / "msrvtt_metrics.json").read_text()) == {"earlier": 1}
    (out / "msrvtt_mc_metrics.json").write_text("{}")  # another kind of test: no clash
    assert results_dir(str(tmp_path / "other"), files) == str(tmp_path / "other")


@pytest.mark.parametrize("config, files", [
    ("actbert_msrvtt_demo.yaml", ("msrvtt_metrics.json", "msrvtt_scores.npy", "msrvtt_ranks_t2v.csv")),
    ("actbert_msrvtt_mc_demo.yaml", ("msrvtt_mc_metrics.json", "msrvtt_mc_scores.npy", "msrvtt_mc_predictions.csv")),
])
def test_a_second_test_into_one_output_dir_keeps_the_firsts_results(tiny_demo, tmp_path, caplog, monkeypatch, config,
                                                                    files):
    monkeypatch.setattr(progress, "_ALLOWED", True)  # restored after --no_progress below
    data, weights = tiny_demo
    test_file = "msrvtt_mc_test.json" if "mc" in config else "MSRVTT_JSFUSION_test.csv"
    args = ["--test", "-c", str(ROOT / "configs/multimodal/actbert" / config), "-w", str(weights)]
    for key, value in (("output_dir", tmp_path / "out"), ("DATASET.test.file_path", data / test_file),
                       ("DATASET.test.features_path", data / "msrvtt_test.lmdb"),
                       ("DATASET.test.vocab_file", data / "vocab.txt")):
        args += ["-o", f"{key}={value}"]
    assert main.main([*args, "--no_progress"]) == 0
    first = {name: (tmp_path / "out" / name).read_bytes() for name in files}
    (tmp_path / "out" / files[0]).write_text('{"marked": true}')  # what a second test must not overwrite
    assert main.main(args) == 0
    again = list((tmp_path / "out").glob("test_*"))
    assert len(again) == 1 and {name: (again[0] / name).read_bytes() for name in files[1:]} == {
        name: first[name] for name in files[1:]}
    assert json.loads((tmp_path / "out" / files[0]).read_text()) == {"marked": True}
    assert f"this test's results go to {again[0]}" in caplog.text


@pytest.fixture(scope="module")
def tiny_demo(tmp_path_factory):
    """Demo data with 12 test videos and a random-init demo model's weights."""
    from paddlevideo.modeling.builder import build_model
    from paddlevideo.utils.config import get_config

    folder = tmp_path_factory.mktemp("demo")
    data = folder / "demo"
    subprocess.run([sys.executable, "tools/make_demo_data.py", "--out", str(data), "--num-train", "4", "--num-val",
                    "4", "--num-test", "12", "--num-finetune", "4"], cwd=ROOT, check=True, capture_output=True)
    paddle.seed(3)
    model = build_model(get_config(ROOT / "configs/multimodal/actbert/actbert_msrvtt_demo.yaml", []).MODEL)
    paddle.save(model.state_dict(), str(folder / "random.pdparams"))
    return data, folder / "random.pdparams"


def test_the_demo_refuses_a_folder_holding_an_earlier_demo_run(tmp_path):
    (tmp_path / "ActBert_demo_best.pdparams").write_bytes(b"an earlier run's")
    proc = subprocess.run(["bash", "tools/run_demo.sh"], cwd=ROOT, capture_output=True, text=True, timeout=30,
                          env=dict(ENV, DEMO_OUT=str(tmp_path), PYTHON="false"))  # nothing may run before the check
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr == f"error: {tmp_path} holds an earlier demo run; remove it (rm -r {tmp_path}) or run with " \
                          "DEMO_OUT=another/folder\n"
    assert (tmp_path / "ActBert_demo_best.pdparams").read_bytes() == b"an earlier run's"
