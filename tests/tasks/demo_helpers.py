"""Helpers of the demo end-to-end tests (the ``demo_pretrained`` fixture is in conftest.py)."""

import os
import subprocess
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "configs/multimodal/actbert"
PRETRAIN_EPOCHS = 9  # ~1100 steps: the matching loss leaves its ln 2 plateau after ~900
# The demo model's operations are too small to share between threads: on 2 loaded cores,
# pretraining epochs with 2 threads took 1.6-2.8x as long as with one (measured). One thread also
# makes the demo runs reproducible on a machine (same losses, same R@1 in every run).
ONE_THREAD = {**os.environ, "OMP_NUM_THREADS": "1"}


def run_python(args, cwd=ROOT):
    """Run ``python *args`` on one thread; assert success; its stdout."""
    proc = subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True, env=ONE_THREAD)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


def demo_test_overrides(data, out):
    """``-o`` pairs pointing actbert_msrvtt_demo.yaml at ``data``'s test set, writing to ``out``."""
    return ["-o", f"output_dir={out}", "-o", f"DATASET.test.file_path={data}/MSRVTT_JSFUSION_test.csv",
            "-o", f"DATASET.test.features_path={data}/msrvtt_test.lmdb",
            "-o", f"DATASET.test.vocab_file={data}/vocab.txt"]


def pretraining_args(data, out):
    """``main.py`` arguments of the suite's demo pretraining: actbert_demo.yaml, shortened to
    PRETRAIN_EPOCHS, on the demo corpus in ``data``, writing to ``out``."""
    args = ["main.py", "-c", str(CONFIGS / "actbert_demo.yaml"), "-o", f"output_dir={out}",
            "-o", f"epochs={PRETRAIN_EPOCHS}", "-o", f"save_interval={PRETRAIN_EPOCHS}"]
    for split, npy, captions in (("train", "actbert_train_data.npy", "caption_train.json"),
                                 ("valid", "actbert_val_data.npy", "caption_val.json")):
        args += ["-o", f"DATASET.{split}.file_path={data / npy}", "-o", f"DATASET.{split}.vocab_file={data}/vocab.txt",
                 "-o", f"PIPELINE.{split}.transform.1.caption_path={data / captions}"]
    return args


class DemoRuns:
    """The demo as a user runs it (make_demo_data.py, main.py pretraining, main.py --test of the
    result), each ``python`` on one thread as ``run_python``, one after another in a background
    thread started with the session (tests/conftest.py): the pretraining uses one core for ~3
    minutes, and the tests run on the other meanwhile instead of waiting for it.
    ``wait(step)`` -> that step's stdout, once it has finished (a failure fails the caller)."""

    STEPS = ("data", "pretrain", "zero_shot")

    def __init__(self, tmp):
        self.data, self.out, self.test_out = tmp / "demo", tmp / "out", tmp / "zero_shot"
        self.checkpoint = self.out / f"ActBert_demo_epoch_{PRETRAIN_EPOCHS:05d}.pdparams"
        self._results, self._proc, self._stopped = {}, None, False
        self._finished = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="demo runs", daemon=True)
        self._thread.start()

    def _commands(self):
        yield "data", ["tools/make_demo_data.py", "--out", str(self.data)]
        yield "pretrain", pretraining_args(self.data, self.out)
        yield "zero_shot", ["main.py", "--test", "-c", str(CONFIGS / "actbert_msrvtt_demo.yaml"),
                            "-w", str(self.checkpoint), *demo_test_overrides(self.data, self.test_out)]

    def _run(self):
        for step, args in self._commands():
            with self._finished:
                if self._stopped:
                    return
                self._proc = subprocess.Popen([sys.executable, *args], cwd=ROOT, env=ONE_THREAD, text=True,
                                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            out, err = self._proc.communicate()
            ok = self._proc.returncode == 0
            with self._finished:
                self._results[step] = (ok, out if ok else f"{args}: status {self._proc.returncode}\n"
                                       + out[-3000:] + err[-3000:])
                self._finished.notify_all()
            if not ok:
                return

    def wait(self, step):
        """Block until ``step`` (one of STEPS) has run; its stdout. Fails if it or a step before it failed."""
        with self._finished:
            while step not in self._results and self._thread.is_alive():
                self._finished.wait(timeout=5)
            earlier = [self._results.get(s) for s in self.STEPS[:self.STEPS.index(step) + 1]]
        failed = next((r for r in earlier if r is not None and not r[0]), None)
        assert failed is None, failed[1]
        assert earlier[-1] is not None, f"the demo runs stopped before {step}"
        return earlier[-1][1]

    def stop(self):
        """End the run in progress (the session ends early); nothing is started after it."""
        with self._finished:
            self._stopped = True
            proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.kill()
        self._thread.join()
