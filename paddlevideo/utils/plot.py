"""Loss and validation curves from training logs, on optimiser steps.

The trainer's log line is PaddleVideo's::

    epoch:[  1/10 ] train step:10   loss: 9.67 loss_text: 4.81 ... lr: 0.000200 batch_cost: ...

where ``step`` is the optimiser step counted from the start of the run (across epochs and
resumes), and the validation summary is
``END epoch:2   val loss_avg: 7.5 loss_text_avg: 3.7 ... time: 0.52 sec, step: 62`` (losses
when pretraining; ``t2v_R1_avg``, ``t2v_MedR_avg``, ... for retrieval fine-tuning, whose
baseline before the first step is ``END epoch:0 ... step: 0``). ``parse_log`` reads both;
``plot_losses`` draws the training losses and each kind of validation value against the
optimiser step.

One ``train.log`` may hold several runs: a run resumed after a crash (its lines from the
last checkpoint on are logged again: the later value of a step wins) or, after a failed
start, a fresh run (the log line ``training NAME: ...`` not preceded by ``resumed from``
starts the curves afresh).
"""

import re

from .errors import DataError
from .outfile import atomic_path

_TRAIN = re.compile(r"epoch:\[\s*\d+/\s*\d+\s*\]\s+train\s+step:\s*(\d+)(.*)")
_VAL = re.compile(r"END epoch:\s*\d+\s+val\s+(.*)")
_VAL_STEP = re.compile(r"step:\s*(\d+)\s*$")
_TRAIN_VALUE = re.compile(r"\b(loss\w*):\s*([-+0-9.eE]+|nan|inf)")
_VAL_VALUE = re.compile(r"\b(\w+?)_avg:\s*([-+0-9.eE]+|nan|inf)")
_RUN_START = re.compile(r"\] training \S+: \d+ process")
_RESUMED = re.compile(r"\] resumed from ")

# The validation panels: losses, recalls (%), ranks.
_VAL_KINDS = (("loss", re.compile(r"^loss")), ("recall (%)", re.compile(r"_R\d+$")),
              ("rank", re.compile(r"_(MedR|MeanR)$")))


def _read_lines(path):
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read().splitlines()
    except FileNotFoundError:
        raise DataError(f"training log not found: {path}") from None


def _add(points, phase, text, pattern, step):
    for name, value in pattern.findall(text):
        points[phase].setdefault(name, {})[step] = float(value)


def parse_log(path):
    """The loss and validation series of the last run in a training log.

    Returns ``{"train": {name: ([step...], [value...])}, "val": {...}}``, steps being
    optimiser steps, ascending. A validation line without ``step:`` (older logs) takes the
    step of the last training line before it.
    """
    points = {"train": {}, "val": {}}
    last_step, resumed = 0, False
    for line in _read_lines(path):
        if _RESUMED.search(line):
            resumed = True
        elif _RUN_START.search(line):
            if not resumed:
                points = {"train": {}, "val": {}}
                last_step = 0
            resumed = False
        elif match := _TRAIN.search(line):
            last_step = int(match.group(1))
            _add(points, "train", match.group(2), _TRAIN_VALUE, last_step)
        elif match := _VAL.search(line):
            step = _VAL_STEP.search(match.group(1))
            _add(points, "val", match.group(1), _VAL_VALUE, int(step.group(1)) if step else last_step)
    return {phase: {name: (sorted(by_step), [by_step[s] for s in sorted(by_step)]) for name, by_step in series.items()}
            for phase, series in points.items()}


def _panels(series):
    """(title, {name: (steps, values)}) of every non-empty panel: training losses, then the
    validation values by kind."""
    panels = [("train loss", series["train"])]
    for kind, pattern in _VAL_KINDS:
        chosen = {n: v for n, v in series["val"].items() if pattern.search(n)}
        if chosen:
            panels.append((f"validation {kind}", chosen))
    return panels


def plot_losses(log_path, png_path, title=None):
    """Write a PNG of the training losses and validation values in ``log_path`` against the
    optimiser step; returns the PNG path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = parse_log(log_path)
    if not series["train"]:
        raise DataError(f"no training log lines ('epoch:[ e/E ] train step:N loss: ...') in {log_path}")
    panels = _panels(series)
    fig, axes = plt.subplots(1, len(panels), figsize=(6.5 * len(panels), 4.2), squeeze=False)
    for ax, (name, curves) in zip(axes[0], panels):
        for label, (steps, values) in sorted(curves.items()):
            style = "-" if name == "train loss" else "o-"  # validation points are few: mark each
            ax.plot(steps, values, style, label=label, linewidth=2.0 if label == "loss" else 1.2, markersize=4)
        ax.set_xlabel("optimiser step")
        ax.set_ylabel(name.split(" ", 1)[1])
        ax.set_title(f"{title + ': ' if title else ''}{name}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(png_path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)
    return png_path
