"""Training: ``train_model`` orchestrates ``train_one_epoch``, validation (the evaluator of ``METRIC``) and checkpoints.

One process or many (``python -m paddle.distributed.launch --nproc_per_node N main.py``):
each rank builds the same model from the same seed (and DataParallel broadcasts rank 0's
weights), reads its own shard of every global batch, and gradients are averaged across
ranks. Only rank 0 logs and writes files; every collective is skipped when the world
size is 1.

Run settings read (lower-case YAML keys, defaults in ``RunSettings``): see the fields
below; DATASET settings: ``batch_size``, ``valid_batch_size``, ``num_workers``.
"""

import datetime
import glob
import math
import os
import random
import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass

import numpy as np
import paddle
import paddle.distributed as dist
from tqdm.contrib.logging import logging_redirect_tqdm

from ..loader.dataloader import batch_size_of, build_dataloader
from ..modeling.builder import check_training_data
from ..solver import build_lr, build_optimizer
from ..solver.lr import step_epoch, steps_every_iter
from ..utils import amp as amp_utils
from ..utils import checkpoint as ckpt
from ..utils import progress
from ..utils.errors import ActBertError, ConfigError, WeightsError
from ..utils.logger import get_logger, setup_logger
from ..utils.plot import plot_losses
from ..utils.runtime import join_process_group, rank_and_world, select_device
from ..utils.settings import RunSettings
from ..utils.writer_lock import writer_lock


class NonFiniteLossError(ActBertError):
    """Training produced non-finite losses too many steps in a row."""


@dataclass
class TrainState:
    """Where training is; saved in the resume checkpoint."""

    epoch: int = 1  # current epoch, 1-based
    batch: int = 0  # batches of this rank consumed in the current epoch
    global_step: int = 0  # optimiser steps taken
    nonfinite_streak: int = 0
    best: float = None


@dataclass
class Context:
    """Everything the loop functions share."""

    run: RunSettings
    model: paddle.nn.Layer  # DataParallel-wrapped when world size > 1
    net: paddle.nn.Layer  # the bare model
    optimizer: object
    lr: object
    scaler: object
    plan: amp_utils.AmpPlan
    train_loader: object
    evaluator: object  # evaluation.Evaluator of DATASET.valid (None without --validate)
    valid_data: object  # what the evaluator reads: a loader over DATASET.valid, or the set itself
    rank: int
    world_size: int
    seed: int
    max_iters: int = None
    last_lr: float = 0.0
    vdl: object = None  # VisualDL LogWriter on rank 0 when use_visualdl is set


# --------------------------------------------------------------------------- set-up


def preflight(cfg, run, weights=None, resume=None, validate=False, max_iters=None):
    """Reject configs, flags and files that cannot train, before any work starts."""
    if not cfg.get("OPTIMIZER"):
        raise ConfigError("training needs an OPTIMIZER section (e.g. name: Adam, learning_rate: 0.0002)")
    if not cfg.get("MODEL"):
        raise ConfigError("training needs a MODEL section")
    dataset = cfg.get("DATASET") or {}
    if not dataset.get("train"):
        raise ConfigError("training needs DATASET.train (a mapping with a 'format' key)")
    if validate and not dataset.get("valid"):
        raise ConfigError("--validate needs DATASET.valid")
    if max_iters is not None and (not isinstance(max_iters, int) or max_iters < 1):
        raise ConfigError(f"--max_iters must be a positive number of steps, got {max_iters!r}")
    if weights:
        ckpt.check_file(weights, "-w")
    if resume and run.resume_epoch:
        raise ConfigError(f"give either --resume or resume_epoch (it is {run.resume_epoch}), not both")
    # Every rate checked before any work: the schedule is built once with a placeholder length
    # (the real one needs the data), long enough for any warm-up.
    build_lr(cfg.OPTIMIZER.get("learning_rate"), 2**31, run.epochs)
    if rank_and_world()[0] == 0:
        ckpt.check_writable(run.output_dir)


class OutputDirTakenError(ActBertError):
    """``output_dir`` holds an earlier run's checkpoints and this run does not continue it."""


def earlier_checkpoints(output_dir, model_name):
    """Names of the ``{model_name}`` checkpoints already in ``output_dir`` (sorted)."""
    found = glob.glob(os.path.join(glob.escape(output_dir), glob.escape(model_name) + "_epoch_*.pdparams"))
    found += [p for p in (ckpt.best_path(output_dir, model_name), ckpt.resume_path(output_dir, model_name))
              if os.path.exists(p)]
    return sorted(os.path.basename(p) for p in found)


@contextmanager
def claim_output_dir(run, continuing):
    """Make ``output_dir`` this run's for its whole life, on rank 0 (the only writer).

    A second training into the same folder at the same time is refused (``writer_lock``:
    one line naming the holder; released by the kernel even on ``kill -9``). A new run
    into a folder that holds an earlier run's checkpoints is refused too, unless it
    continues that run (``--resume``, ``resume_epoch``): its epoch, best and resume files
    would be overwritten one by one, and the two runs' files mixed.
    """
    if rank_and_world()[0] != 0:
        yield
        return
    with writer_lock(run.output_dir, "training output_dir"):
        names = [] if continuing else earlier_checkpoints(run.output_dir, run.model_name)
        if names:
            listed = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
            raise OutputDirTakenError(
                f"output_dir {run.output_dir} already holds a run of {run.model_name} ({listed}); continue it with "
                "--resume, write this run elsewhere with -o output_dir=DIR, or remove those files first")
        yield


def open_datasets(cfg, validate):
    """The datasets to train (and validate) on, each checked by building its first sample.

    Runs before the model is built, weights are loaded or processes join: a bad
    vocabulary, caption file or record fails in the first seconds, on every rank alike.
    (``loader.builder.check_opens``).
    """
    from ..loader.builder import build_dataset, check_disjoint, check_opens

    data, pipes = cfg.DATASET, cfg.get("PIPELINE") or {}
    datasets = {}
    for split in ("train", "valid") if validate else ("train",):
        dataset = build_dataset(data[split], pipes.get(split), where=f"DATASET.{split}")
        check_opens(dataset, f"DATASET.{split}")
        datasets[split] = dataset
    if "valid" in datasets:
        check_disjoint(datasets["train"], datasets["valid"])
    return datasets


def load_resume_state(run, resume):
    """The checkpoint ``--resume`` names (None without the flag), checked against the config."""
    state = ckpt.load_resume(resume) if resume else None
    if state is not None and state.get("model_name") != run.model_name:
        raise WeightsError(f"--resume {resume}: checkpoint of model_name '{state.get('model_name')}', "
                           f"config says '{run.model_name}'")
    return state


def seed_everything(seed):
    random.seed(seed)
    np.random.seed(seed % 2**32)
    paddle.seed(seed)


def build_loaders(cfg, datasets, seed, rank, world):
    data = cfg.DATASET
    workers = data.get("num_workers", 0)
    return build_dataloader(datasets["train"], data.get("batch_size", 1), workers, shuffle=True, drop_last=True,
                            seed=seed, rank=rank, world_size=world)


def build_validation(cfg, run, datasets, seed, rank, world, plan):
    """(evaluator, the data it reads) for DATASET.valid, or (None, None) without validation.

    The evaluator is the one of ``METRIC`` (default: the set's own; the loss for a pretraining
    set), checked to report ``best_metric``.
    """
    from ..evaluation import EvalSettings, build_evaluator

    if "valid" not in datasets:
        return None, None
    data = cfg.DATASET
    settings = EvalSettings(split="valid", output_dir=run.output_dir, text_batch_size=8, progress=False,
                            plan=plan, world_size=world)
    evaluator = build_evaluator(cfg.get("METRIC"), datasets["valid"], settings)
    evaluator.check_best_metric(run.best_metric)

    def make_loader(dataset):
        return build_dataloader(dataset, data.get("valid_batch_size", data.get("batch_size", 1)),
                                data.get("num_workers", 0), shuffle=False, drop_last=False, seed=seed, rank=rank,
                                world_size=world, where="DATASET.valid")

    return evaluator, evaluator.data(datasets["valid"], make_loader)


def build_context(cfg, run, weights, resume_state, datasets, max_iters):
    """Model, data, optimiser and AMP for this rank, restored from ``resume_state`` if given."""
    from ..modeling.builder import build_model

    rank, world = join_process_group()
    device = select_device(run.device)
    seed = resolve_seed(run.seed, resume_state)
    seed_everything(seed)  # same seed on every rank: identical initial weights
    net = build_model(cfg.MODEL)  # loads MODEL.backbone.pretrained on every rank
    if weights:
        from ..modeling.weights import load_model_weights

        load_model_weights(net, weights)
    train_loader = build_loaders(cfg, datasets, seed, rank, world)
    check_training_data(net, datasets["train"], train_loader.batch_sampler.batch_size, datasets.get("valid"))
    steps_per_epoch = math.ceil(len(train_loader) / run.grad_accum_steps)
    plan = amp_utils.resolve_amp(run.amp, run.amp_level, run.amp_dtype, device)
    evaluator, valid_data = build_validation(cfg, run, datasets, seed, rank, world, plan)
    lr = build_lr(cfg.OPTIMIZER.get("learning_rate"), steps_per_epoch, run.epochs)
    optimizer = build_optimizer(cfg.OPTIMIZER, net, lr, multi_precision=plan.master_weights)
    net, optimizer = amp_utils.decorate(net, optimizer, plan)
    scaler = amp_utils.build_scaler(plan)
    model = paddle.DataParallel(net, find_unused_parameters=run.find_unused_parameters) if world > 1 else net
    paddle.seed(seed + rank)  # distinct dropout masks per rank from here on
    ctx = Context(run, model, net, optimizer, lr, scaler, plan, train_loader, evaluator, valid_data, rank, world,
                  seed, max_iters, vdl=open_visualdl(run, rank))
    if plan.note:
        get_logger().warning(plan.note)
    return ctx


def resolve_seed(seed, resume_state):
    if resume_state is not None:
        return resume_state["seed"]
    return int(seed) if seed is not None else random.SystemRandom().randrange(2**31)


def restore(ctx, state_dict, source):
    """Load a resume checkpoint into ``ctx``; returns its TrainState."""
    ckpt.check_state_dict(ctx.net, state_dict["model"], f"--resume {source}")
    ctx.net.set_state_dict(state_dict["model"])
    ckpt.load_portable_optimizer_state(ctx.optimizer, ctx.net, state_dict["optimizer"])
    if ctx.plan.use_scaler and state_dict.get("scaler"):
        ctx.scaler.load_state_dict(state_dict["scaler"])
    rngs = state_dict["rng"]
    ckpt.restore_rng(rngs[ctx.rank] if ctx.rank < len(rngs) else rngs[0])
    state = TrainState(**state_dict["train_state"])
    if state_dict.get("world_size") != ctx.world_size:
        # Same samples, different split: continue from the first batch not fully seen.
        seen = state.batch * state_dict["world_size"]
        state.batch = seen // ctx.world_size
        get_logger().warning("resuming %d-process training with %d processes: the data order is kept, "
                             "dropout masks differ", state_dict["world_size"], ctx.world_size)
    return state


def resume_from_epoch(ctx, epoch):
    """PaddleVideo's ``resume_epoch``: the weights and optimiser (with its schedule) saved after
    ``epoch``; training goes on with the next epoch. Returns its TrainState."""
    ckpt.load_epoch(ctx.net, ctx.optimizer, ctx.run.output_dir, ctx.run.model_name, epoch)
    steps_per_epoch = math.ceil(len(ctx.train_loader) / ctx.run.grad_accum_steps)
    state = TrainState(epoch=epoch + 1, global_step=epoch * steps_per_epoch)
    get_logger().warning(
        "resumed after epoch %d from %s_epoch_%05d.pdparams/.pdopt: weights, optimiser and schedule; the random "
        "state and the best validation value start afresh (--resume %s continues exactly)", epoch,
        ctx.run.model_name, epoch, ckpt.resume_path(ctx.run.output_dir, ctx.run.model_name))
    return state


def verify_replicas(ctx, when):
    """Check that every rank holds the same parameters (one small all-gather); log the result."""
    if ctx.world_size == 1:
        return
    mine = [float(p.astype("float64").sum()) for p in ctx.net.parameters()]
    every = []
    dist.all_gather_object(every, mine)
    if any(other != every[0] for other in every[1:]):
        raise RuntimeError(f"parameters differ across the {ctx.world_size} ranks {when}")
    get_logger().info("parameters identical on all %d ranks %s", ctx.world_size, when)


# --------------------------------------------------------------------------- checkpoints


def gather_rng(ctx):
    """Every rank's RNG states, in rank order (collective when world size > 1)."""
    mine = ckpt.capture_rng()
    if ctx.world_size == 1:
        return [mine]
    states = []
    dist.all_gather_object(states, mine)
    return states


def save_resume(ctx, state):
    """Write the resume checkpoint (all ranks call this; rank 0 writes)."""
    rngs = gather_rng(ctx)
    if ctx.rank != 0:
        return
    ckpt.save_resume(ckpt.resume_path(ctx.run.output_dir, ctx.run.model_name), {
        "model_name": ctx.run.model_name, "model": ctx.net.state_dict(),
        "optimizer": ckpt.portable_optimizer_state(ctx.optimizer, ctx.net),
        "scaler": ctx.scaler.state_dict(), "train_state": vars(state).copy(), "rng": rngs, "seed": ctx.seed,
        "world_size": ctx.world_size,
    })


def end_of_epoch_checkpoints(ctx, state, epoch):
    if ctx.rank == 0 and epoch % ctx.run.save_interval == 0:
        ckpt.save_epoch(ctx.net, ctx.optimizer, ctx.run.output_dir, ctx.run.model_name, epoch)
    save_resume(ctx, state)


def update_best(ctx, state, metrics):
    """Save ``{model_name}_best.pdparams`` when ``metrics[best_metric]`` improves."""
    key = ctx.run.best_metric
    if key not in metrics:
        raise ConfigError(f"best_metric '{key}' is not a validation value; available: {', '.join(metrics)}")
    value = metrics[key]
    better = state.best is None or (value < state.best if ctx.run.best_mode == "min" else value > state.best)
    if better:
        state.best = value
        if ctx.rank == 0:
            ckpt.save_best(ctx.net, ctx.run.output_dir, ctx.run.model_name)
            get_logger().info("best %s %.6f: saved %s", key, value,
                              ckpt.best_path(ctx.run.output_dir, ctx.run.model_name))


# --------------------------------------------------------------------------- steps


def all_ranks_finite(value, world_size):
    """Whether the loss is finite on every rank (so all ranks skip a step together)."""
    finite = math.isfinite(value)
    if world_size == 1:
        return finite
    bad = paddle.to_tensor(0.0 if finite else 1.0)
    dist.all_reduce(bad)
    return float(bad) == 0.0


@dataclass
class Skipped:
    """A step that changed nothing: why, and whether it counts toward ``max_nonfinite_steps``."""

    reason: str
    counts: bool = True


def nonfinite_gradient(net):
    """The name of the first parameter whose gradient holds an inf or NaN, or None.

    One pass over the gradients and one host sync: a parameter's gradient sum is finite exactly
    when every entry is (an overflowing sum of huge entries is reported too, which is wanted).
    Called after backward, when DataParallel has all-reduced the gradients: every rank sees the
    same gradients and so decides the same.
    """
    named = [(name, p.grad) for name, p in net.named_parameters() if p.grad is not None]
    if not named:
        return None
    finite = paddle.isfinite(paddle.stack([g.sum().astype("float32") for _, g in named]))
    if bool(finite.all()):
        return None
    return named[int(paddle.nonzero(~finite)[0, 0])][0]


def scaler_overflow(ctx):
    """float16 only: unscale the gradients and read the scaler's own inf/NaN check. Returns
    None, or a ``Skipped`` naming the first offending parameter, which counts toward
    ``max_nonfinite_steps`` only once the loss scale is down to 1: above it an overflow is
    the dynamic scaling's normal search for its scale."""
    ctx.scaler.unscale_(ctx.optimizer)
    if not bool(ctx.scaler._found_inf):
        return None
    scale = float(ctx.scaler._scale)
    return Skipped(f"inf/NaN gradient in {nonfinite_gradient(ctx.net)} at loss scale {scale:g}", scale <= 1.0)


def train_step(ctx, micro_batches):
    """One optimiser step over ``micro_batches``: the mean loss parts, or ``Skipped``.

    A step is skipped when the loss or, after backward (and all-reduce), a gradient is not
    finite; weights, optimiser state and schedule are then left as they were."""
    totals, k = {}, len(micro_batches)
    for i, batch in enumerate(micro_batches):
        # Gradients are all-reduced only in the backward of the last micro-batch.
        no_sync = ctx.model.no_sync() if ctx.world_size > 1 and i < k - 1 else nullcontext()
        with no_sync:
            with amp_utils.autocast(ctx.plan):
                losses = ctx.model(batch, mode="train")
            values = {name: float(v) for name, v in losses.items()}
            if not all_ranks_finite(values["loss"], ctx.world_size):
                ctx.optimizer.clear_grad()
                return Skipped("non-finite loss")
            ctx.scaler.scale(losses["loss"] / k).backward()
        for name, v in values.items():
            totals[name] = totals.get(name, 0.0) + v / k
    if ctx.plan.use_scaler:
        skipped = scaler_overflow(ctx)
    else:
        bad = nonfinite_gradient(ctx.net)
        skipped = Skipped(f"inf/NaN gradient in {bad}") if bad else None
    if skipped:
        if ctx.plan.use_scaler:  # lowers the loss scale; the optimiser skips the found inf itself
            ctx.scaler.step(ctx.optimizer)
            ctx.scaler.update()
        ctx.optimizer.clear_grad()
        return skipped
    ctx.last_lr = ctx.optimizer.get_lr()  # the rate this step used, for the log line
    ctx.scaler.step(ctx.optimizer)
    ctx.scaler.update()
    ctx.optimizer.clear_grad()
    if steps_every_iter(ctx.lr):
        ctx.lr.step()
    return totals


def note_nonfinite(ctx, state, result):
    """Count consecutive skipped steps; stop with NonFiniteLossError after too many."""
    if not isinstance(result, Skipped):
        state.nonfinite_streak = 0
        return
    if not result.counts:
        get_logger().warning("epoch %d step %d: %s, step skipped", state.epoch, state.global_step + 1,
                             result.reason)
        return
    state.nonfinite_streak += 1
    get_logger().warning("epoch %d step %d: %s, step skipped (%d in a row, limit %d)", state.epoch,
                         state.global_step + 1, result.reason, state.nonfinite_streak, ctx.run.max_nonfinite_steps)
    if state.nonfinite_streak >= ctx.run.max_nonfinite_steps:
        raise NonFiniteLossError(
            f"{result.reason}: non-finite for {state.nonfinite_streak} steps in a row (max_nonfinite_steps) at epoch "
            f"{state.epoch}, step {state.global_step + 1}; lower the learning rate or check the data. "
            f"The last checkpoint in {ctx.run.output_dir} is intact"
        )


def micro_batch_groups(loader, group):
    """Yield (micro-batches, seconds spent waiting for them) in groups of ``group``."""
    it, done = iter(loader), False
    while not done:
        batches, wait = [], 0.0
        while len(batches) < group:
            start = time.perf_counter()
            try:
                batches.append(next(it))
            except StopIteration:
                done = True
                break
            wait += time.perf_counter() - start
        if batches:
            yield batches, wait


# --------------------------------------------------------------------------- logging


class Meter:
    """Running sums for the epoch summary."""

    def __init__(self):
        self.sums, self.steps, self.samples = {}, 0, 0
        self.batch_time = self.reader_time = 0.0

    def add(self, losses, samples, batch_time, reader_time):
        for k, v in losses.items():
            self.sums[k] = self.sums.get(k, 0.0) + v
        self.steps += 1
        self.samples += samples
        self.batch_time += batch_time
        self.reader_time += reader_time


def log_step(ctx, state, losses, samples, batch_time, reader_time, eta_sec):
    """PaddleVideo's training line: ``epoch:[  1/10 ] train step:10   loss: ... eta: ...``."""
    parts = " ".join(f"{k}: {v:.6f}" for k, v in losses.items())
    get_logger().info(
        "epoch:[%3d/%-3d] train step:%-4d %s lr: %.6f batch_cost: %.5f sec, reader_cost: %.5f sec, "
        "ips: %.5f instance/sec. eta: %s", state.epoch, ctx.run.epochs, state.global_step, parts, ctx.last_lr,
        batch_time, reader_time, samples / max(batch_time, 1e-9), datetime.timedelta(seconds=int(eta_sec)),
    )


def log_epoch(epoch, mode, meter):
    """PaddleVideo's epoch summary: ``END epoch:1   train loss_avg: ... avg_ips: ...``."""
    n = max(meter.steps, 1)
    parts = " ".join(f"{k}_avg: {v / n:.6f}" for k, v in meter.sums.items())
    get_logger().info(
        "END epoch:%-3d %s %s avg_batch_cost: %.5f sec, avg_reader_cost: %.5f sec, batch_cost_sum: %.5f sec, "
        "avg_ips: %.5f instance/sec.", epoch, mode, parts, meter.batch_time / n, meter.reader_time / n,
        meter.batch_time, meter.samples / max(meter.batch_time, 1e-9),
    )


def progress_bar(ctx, epoch, total, initial):
    """A bar on rank 0 when stderr is a terminal (and no ``--no_progress``); None otherwise:
    plain log lines, no ``\\r`` redraws in a log file."""
    if ctx.rank != 0 or not progress.progress_enabled():
        return None
    return progress.progress_bar(total=total, initial=initial, desc=f"epoch {epoch}", leave=False,
                                 dynamic_ncols=True)


# --------------------------------------------------------------------------- loops


def total_steps(ctx):
    per_epoch = math.ceil(ctx.train_loader.batch_sampler.num_batches() / ctx.run.grad_accum_steps)
    total = per_epoch * ctx.run.epochs
    return min(total, ctx.max_iters) if ctx.max_iters else total


def out_of_iters(ctx, state):
    return ctx.max_iters is not None and state.global_step >= ctx.max_iters


def train_one_epoch(ctx, state):
    """Train from ``state``'s position to the end of the epoch (or ``max_iters``)."""
    sampler = ctx.train_loader.batch_sampler
    sampler.set_epoch(state.epoch, start_batch=state.batch)
    meter, bar = Meter(), progress_bar(ctx, state.epoch, sampler.num_batches(), state.batch)
    ctx.model.train()
    # With a bar, log lines are printed above it instead of breaking it.
    with logging_redirect_tqdm(loggers=[get_logger()]) if bar is not None else nullcontext():
        tic = time.perf_counter()
        for batches, reader_time in micro_batch_groups(ctx.train_loader, ctx.run.grad_accum_steps):
            losses = train_step(ctx, batches)
            state.batch += len(batches)
            note_nonfinite(ctx, state, losses)
            if not isinstance(losses, Skipped):
                batch_time, tic = time.perf_counter() - tic, time.perf_counter()
                after_step(ctx, state, meter, bar, losses, batches, batch_time, reader_time)
            if out_of_iters(ctx, state):
                break
    if bar is not None:
        bar.close()
    return meter


def after_step(ctx, state, meter, bar, losses, batches, batch_time, reader_time):
    """Count a finished optimiser step: meters, log line, bar, step checkpoint."""
    state.global_step += 1
    samples = sum(batch_size_of(b) for b in batches)
    meter.add(losses, samples, batch_time, reader_time)
    if state.global_step % ctx.run.log_interval == 0:
        eta = (total_steps(ctx) - state.global_step) * meter.batch_time / meter.steps
        log_step(ctx, state, losses, samples, batch_time, reader_time, eta)
        write_scalars(ctx, "train", losses, state.global_step)
    if bar is not None:
        bar.update(len(batches))
        bar.set_postfix(loss=f"{losses['loss']:.4f}")
    if ctx.run.checkpoint_steps and state.global_step % ctx.run.checkpoint_steps == 0:
        save_resume(ctx, state)


def log_validation(ctx, state, epoch):
    """Evaluate and log PaddleVideo's validation summary, with the optimiser step it was taken
    at (for the plots): ``END epoch:1   val loss_avg: ... time: 0.52 sec, step: 31``."""
    tic = time.perf_counter()
    metrics = ctx.evaluator.evaluate(ctx.net, ctx.valid_data)
    parts = " ".join(f"{k}_avg: {v:.6f}" for k, v in metrics.items())
    get_logger().info("END epoch:%-3d val %s time: %.2f sec, step: %d", epoch, parts, time.perf_counter() - tic,
                      state.global_step)
    write_scalars(ctx, "val", metrics, state.global_step)
    return metrics


def validate_epoch(ctx, state, epoch):
    update_best(ctx, state, log_validation(ctx, state, epoch))


def validate_baseline(ctx, state):
    """Fine-tuning (a retrieval validation set) from step 0: the metrics of the starting weights,
    logged as epoch 0, so that the gain of the epochs after it is visible. The baseline is not a
    candidate for the best checkpoint: that is the ``-w`` file itself.

    Pretraining validation (a loss) has no baseline: evaluating it draws masks from the random
    stream and would change the run a fixed ``seed`` gives."""
    if state.global_step != 0 or not ctx.evaluator.baseline:
        return
    get_logger().info("baseline validation of the starting weights, before the first step:")
    log_validation(ctx, state, 0)


def finish_epoch(ctx, state, meter, validate):
    """Epoch-end schedule step, summary, validation and checkpoints; moves ``state`` to the next epoch."""
    epoch = state.epoch
    step_epoch(ctx.lr)
    log_epoch(epoch, "train", meter)
    ctx.train_loader.dataset.end_epoch(epoch)  # the dataset reports the bad records it skipped this epoch
    if validate and epoch % ctx.run.val_interval == 0:
        validate_epoch(ctx, state, epoch)
    state.epoch, state.batch = epoch + 1, 0
    end_of_epoch_checkpoints(ctx, state, epoch)


def train_model(cfg, weights=None, validate=False, amp=False, amp_level=None, max_iters=None, resume=None,
                seed=None):
    """Train the model of ``cfg``; returns the final TrainState.

    ``weights``: a full-model checkpoint to start from; ``resume``: a
    ``{model_name}_resume.pdckpt`` to continue exactly; ``max_iters``: stop after this
    many optimiser steps in total (counted across resumes). ``output_dir`` is held for the
    run's life (see ``claim_output_dir``).
    """
    run = RunSettings.from_cfg(cfg, amp=amp, amp_level=amp_level, seed=seed)
    preflight(cfg, run, weights, resume, validate, max_iters)
    with claim_output_dir(run, continuing=bool(resume or run.resume_epoch)):
        return run_training(cfg, run, weights, validate, max_iters, resume)


def run_training(cfg, run, weights, validate, max_iters, resume):
    """``train_model`` once the settings are checked and ``output_dir`` is this run's."""
    setup_logger(run.output_dir, run.log_level)
    datasets = open_datasets(cfg, validate)
    resume_state = load_resume_state(run, resume)
    ctx = build_context(cfg, run, weights, resume_state, datasets, max_iters)
    if resume_state:
        state = restore(ctx, resume_state, resume)
    elif run.resume_epoch:
        state = resume_from_epoch(ctx, run.resume_epoch)
    else:
        state = TrainState()
    if resume_state:
        get_logger().info("resumed from %s: epoch %d, batch %d, step %d", resume, state.epoch, state.batch,
                          state.global_step)
    verify_replicas(ctx, "at the start")
    get_logger().info("training %s: %d process(es), seed %d, %s, output in %s", run.model_name, ctx.world_size,
                      ctx.seed, paddle.get_device(), run.output_dir)
    if validate:
        validate_baseline(ctx, state)
    while state.epoch <= run.epochs and not out_of_iters(ctx, state):
        meter = train_one_epoch(ctx, state)
        if out_of_iters(ctx, state) and state.batch < ctx.train_loader.batch_sampler.num_batches():
            save_resume(ctx, state)  # stopped mid-epoch by max_iters: keep the exact position
            break
        finish_epoch(ctx, state, meter, validate)
    verify_replicas(ctx, "at the end")
    if ctx.rank == 0:
        write_loss_curve(run)
    return state


# --------------------------------------------------------------------------- pictures


def open_visualdl(run, rank):
    """A VisualDL LogWriter on rank 0 when ``use_visualdl`` is set, else None."""
    if not run.use_visualdl or rank != 0:
        return None
    try:
        from visualdl import LogWriter
    except ImportError:
        raise ConfigError("use_visualdl: true needs the visualdl package (pip install visualdl)") from None
    return LogWriter(logdir=os.path.join(run.output_dir, "vdl"))


def write_scalars(ctx, phase, values, step):
    if ctx.vdl is not None:
        for name, value in values.items():
            ctx.vdl.add_scalar(tag=f"{phase}/{name}", step=step, value=float(value))


def write_loss_curve(run):
    """Draw ``loss_curve.png`` (each loss part) from this run's ``train.log``."""
    log = os.path.join(run.output_dir, "train.log")
    png = os.path.join(run.output_dir, "loss_curve.png")
    try:
        plot_losses(log, png, title=run.model_name)
    except ActBertError as exc:  # e.g. a run too short to log a line: say so, training itself succeeded
        get_logger().warning("no loss curve: %s", exc)
        return
    get_logger().info("loss curve: %s", png)
