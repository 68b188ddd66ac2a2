"""Real processes: exact resume after ``kill -9``, and 2-process gloo training.

Both run ``run_main.py`` (``main.py`` plus the stand-ins) in subprocesses, as users do.
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import paddle
import standin
import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
ENV = dict(os.environ, OMP_NUM_THREADS="1")


def write_config(path, **run):
    path.parent.mkdir(exist_ok=True)
    cfg = standin.tiny_config(path.parent / "out", **run)
    path.write_text(yaml.safe_dump(cfg))
    return str(path)


def start(*argv):
    cmd = [sys.executable, str(HERE / "run_main.py"), *argv]
    return subprocess.Popen(cmd, cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finish(proc, timeout=60):
    out, _ = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, out
    return out


def model_params(path):
    return {k: v.numpy() for k, v in paddle.load(str(path)).items()}


def assert_same(a, b, exact=True):
    assert a.keys() == b.keys()
    for k in a:
        if exact:
            np.testing.assert_array_equal(a[k], b[k], err_msg=k)
        else:
            np.testing.assert_allclose(a[k], b[k], rtol=1e-5, atol=1e-6, err_msg=k)


def test_kill_9_then_resume_gives_the_same_parameters(tmp_path):
    # Dropout on, shuffled data with per-sample noise, 2 epochs of 6 steps.
    common = {"epochs": 2, "checkpoint_steps": 2, "log_interval": 1}
    straight = start("-c", write_config(tmp_path / "a" / "cfg.yaml", **common))
    slow = tmp_path / "b" / "cfg.yaml"
    killed = start("-c", write_config(slow, MODEL={"framework": "TinyPretrain", "delay": 0.3}, **common))
    resume_file = tmp_path / "b" / "out" / "Tiny_resume.pdckpt"
    deadline = time.time() + 60
    while not resume_file.exists() and time.time() < deadline:
        time.sleep(0.05)
    killed.send_signal(signal.SIGKILL)
    killed.communicate()
    step = paddle.load(str(resume_file))["train_state"]["global_step"]
    assert 2 <= step < 12
    out = finish(start("-c", write_config(slow, **common), "--resume"))
    assert f"step {step}" in out
    finish(straight)
    name = "Tiny_epoch_00002.pdparams"
    assert_same(model_params(tmp_path / "a" / "out" / name), model_params(tmp_path / "b" / "out" / name))
    assert not [p for p in (tmp_path / "b" / "out").iterdir() if ".tmp" in p.name]


def test_two_gloo_processes_match_one_process_with_the_same_global_batch(tmp_path):
    # Step 3's gradient is NaN on rank 1 only: after the all-reduce both ranks skip it, as the
    # one process does whose whole batch gives the NaN.
    model = {"framework": "TinyPretrain", "dropout": 0.0, "nan_grad_at": [3]}
    two, one = tmp_path / "two" / "cfg.yaml", tmp_path / "one" / "cfg.yaml"
    write_config(two, MODEL={**model, "nan_grad_rank": 1}, epochs=1)
    write_config(one, MODEL=model, epochs=1)
    launch = subprocess.Popen(
        [sys.executable, "-m", "paddle.distributed.launch", "--nproc_per_node", "2", "--log_dir",
         str(tmp_path / "launch_logs"), str(HERE / "run_main.py"), "-c", str(two), "-o", "DATASET.batch_size=2"],
        cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    single = start("-c", str(one))
    finish(single)
    out, _ = launch.communicate(timeout=120)
    logs = "".join(p.read_text() for p in sorted((tmp_path / "launch_logs").glob("workerlog.*")))
    assert launch.returncode == 0, out + logs
    assert "parameters identical on all 2 ranks at the start" in logs
    assert "parameters identical on all 2 ranks at the end" in logs
    assert "2 process(es)" in logs
    rank0 = (tmp_path / "launch_logs" / "workerlog.0").read_text()
    assert "step 3: inf/NaN gradient in head.weight, step skipped (1 in a row" in rank0
    name = "Tiny_epoch_00001.pdparams"
    assert_same(model_params(tmp_path / "two" / "out" / name), model_params(tmp_path / "one" / "out" / name),
                exact=False)
