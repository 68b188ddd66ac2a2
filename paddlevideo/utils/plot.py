"""Loss curves from training logs.

The trainer's log line is PaddleVideo's::

    epoch:[  1/10 ] train step:10   loss: 9.67 loss_text: 4.81 ... lr: 0.000200 batch_cost: ...

and the validation summary is ``END epoch:2   val loss_avg: 7.5 loss_text_avg: 3.7 ...``.
``parse_log`` reads both kinds of line into per-loss series and
``plot_losses`` draws each loss part against the global training step.
"""

import re

from .errors import DataError

_LINE = re.compile(r"epoch:\[\s*\d+/\s*\d+\s*\]\s+(train|val)\s+step:\s*\d+(.*)")
# The validation summary: ``END epoch:2   val loss_avg: 7.5 loss_text_avg: 3.7 time: ...``
_VAL_END = re.compile(r"END epoch:\s*\d+\s+(val)\s+(.*)")
_VALUE = re.compile(r"(loss\w*?)(?:_avg)?:\s*([-+0-9.eE]+|nan|inf)")


def parse_log(path):
    """Loss series of a training log.

    Returns ``{"train": {name: ([step...], [value...])}, "val": {...}}`` where step is
    a running index of the logged lines of that phase, so that runs of several epochs
    draw one continuous curve.
    """
    series = {"train": {}, "val": {}}
    counters = {"train": 0, "val": 0}
    try:
        lines = open(path, encoding="utf-8", errors="replace").read().splitlines()
    except FileNotFoundError:
        raise DataError(f"training log not found: {path}") from None
    for line in lines:
        match = _LINE.search(line) or _VAL_END.search(line)
        if not match:
            continue
        phase = match.group(1)
        counters[phase] += 1
        for name, value in _VALUE.findall(match.group(2)):
            steps, values = series[phase].setdefault(name, ([], []))
            steps.append(counters[phase])
            values.append(float(value))
    return series


def plot_losses(log_path, png_path, title=None):
    """Write a PNG of every loss part in ``log_path``; returns the PNG path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = parse_log(log_path)
    if not series["train"]:
        raise DataError(f"no training log lines ('epoch:[ e/E ] train step:N loss: ...') in {log_path}")
    phases = [p for p in ("train", "val") if series[p]]
    fig, axes = plt.subplots(1, len(phases), figsize=(6.5 * len(phases), 4.2), squeeze=False)
    for ax, phase in zip(axes[0], phases):
        for name, (steps, values) in sorted(series[phase].items()):
            ax.plot(steps, values, label=name, linewidth=2.0 if name == "loss" else 1.2)
        ax.set_xlabel("logged step" if phase == "train" else "validation")
        ax.set_ylabel("loss")
        ax.set_title(f"{title + ': ' if title else ''}{phase}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(png_path, dpi=100)
    plt.close(fig)
    return png_path
