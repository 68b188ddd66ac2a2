"""The evaluator interface and the settings every evaluator is built with."""

import itertools
import os
import time
from dataclasses import dataclass, field

from ..utils.amp import AmpPlan
from ..utils.errors import ConfigError
from ..utils.logger import get_logger


@dataclass
class EvalSettings:
    """What an evaluator needs of the run besides the model and the data.

    split: ``valid`` (during training: values only, nothing written) or ``test`` (the full
    report and its files in ``output_dir``). The scoring evaluators read the batch sizes,
    ``amp``/``amp_level`` and ``progress``; the loss evaluator ``plan`` and ``world_size``.
    """

    split: str = "test"
    output_dir: str = "output"
    text_batch_size: int = 1
    pair_batch_size: int = 256
    amp: bool = False
    amp_level: str = "O1"
    progress: bool = True
    plan: AmpPlan = field(default_factory=AmpPlan)
    world_size: int = 1

    @property
    def where(self):
        return f"DATASET.{self.split}"


class Evaluator:
    """Scores a model on one dataset and reports named values.

    A subclass registered in ``EVALUATORS`` under a ``METRIC.name`` implements ``evaluate``;
    ``data`` says what ``evaluate`` reads (the dataset itself, or a loader over it),
    ``check`` rejects a dataset it cannot evaluate before any expensive work, and
    ``names`` lists the values a validation reports (for ``best_metric``), when known.
    """

    names = None  # tuple of the validation values' names; None: whatever the data yields
    # Whether training logs a validation of the starting weights before its first step: for a
    # deterministic evaluation (retrieval metrics), not for one that draws from the random stream
    # (the masked losses), which would change the run a fixed seed gives.
    baseline = False
    what = "validation"  # how the error messages name the kind of set

    def __init__(self, metric_cfg, settings):
        self.metric_cfg, self.settings = dict(metric_cfg), settings

    def data(self, dataset, make_loader):
        """What ``evaluate`` reads: ``dataset`` itself by default (``make_loader(dataset)`` builds a loader)."""
        return dataset

    def check(self, dataset):
        """Raise DataError when ``dataset`` cannot be evaluated (empty, inconsistent); default: nothing."""

    def check_best_metric(self, best):
        """ConfigError when validation does not report ``best`` (the run's ``best_metric``)."""
        if self.names is not None and best not in self.names:
            raise ConfigError(f"best_metric '{best}' is not computed on the {self.what} set "
                              f"{self.settings.where}; choose one of {', '.join(self.names)}"
                              f"{self.best_hint}")

    best_hint = ""

    def evaluate(self, net, data):
        """Evaluate the framework ``net`` on ``data``: a dict of values (test: on rank 0; None elsewhere)."""
        raise NotImplementedError


def results_dir(output_dir, files):
    """Where a test writes its result ``files``: ``output_dir``, or a new ``output_dir/test_<date-time>``
    when ``output_dir`` already holds an earlier test's ``files`` (never overwritten)."""
    if not any(os.path.exists(os.path.join(output_dir, name)) for name in files):
        os.makedirs(output_dir, exist_ok=True)
        return output_dir
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for n in itertools.count(1):
        folder = os.path.join(output_dir, f"test_{stamp}" + (f"_{n}" if n > 1 else ""))
        try:
            os.makedirs(folder)  # exclusive: two tests finishing in one second get two folders
        except FileExistsError:
            continue
        get_logger().warning("%s already holds an earlier test's %s: this test's results go to %s", output_dir,
                             files[0], folder)
        return folder
