"""Validation by the model's own loss (pretraining; any set its framework computes a loss on)."""

import paddle
import paddle.distributed as dist

from ..loader.dataloader import batch_size_of
from ..utils import amp as amp_utils
from .base import Evaluator
from .registry import EVALUATORS

# The METRIC name of validation by the loss: the default of a dataset that names no metric.
LOSS_METRIC = "ValidationLoss"


@EVALUATORS.register(name=LOSS_METRIC)
class LossEvaluator(Evaluator):
    """The loss parts averaged over every sample of every rank, in batches of a loader."""

    def data(self, dataset, make_loader):
        return make_loader(dataset)

    def evaluate(self, net, loader):
        """loader: batches (dicts of tensors [B, ...]) -> {loss part: mean over all samples}."""
        sums, count = {}, 0
        net.eval()
        with paddle.no_grad():
            for batch in loader:
                with amp_utils.autocast(self.settings.plan):
                    losses = net(batch, mode="valid")
                n = batch_size_of(batch)
                for k, v in losses.items():
                    sums[k] = sums.get(k, 0.0) + float(v) * n
                count += n
        net.train()
        if self.settings.world_size > 1:
            parts = []
            dist.all_gather_object(parts, (sums, count))
            sums = {k: sum(p[0].get(k, 0.0) for p in parts) for k in parts[0][0]}
            count = sum(p[1] for p in parts)
        return {k: v / max(count, 1) for k, v in sums.items()}
