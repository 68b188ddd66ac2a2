"""DataLoaders for training and validation: sharding, seeding and a resumable position.

Two ideas make runs reproducible and resumable regardless of worker count:

- The order of an epoch is a permutation drawn from ``(seed, epoch)`` only, cut into
  *global* batches of ``world_size × batch_size``; rank r takes the r-th slice of every
  global batch. The shards are disjoint, and one process with batch ``world_size ×
  batch_size`` sees exactly the same samples per step. Skipping the first k batches
  resumes mid-epoch.
- Every sample's random augmentation (masking, caption draw) is seeded from
  ``(seed, epoch, index)`` just before the dataset builds it, so it does not depend on
  which worker builds it or on what was drawn before: after a resume, or with a
  different ``num_workers``, sample i of epoch e is the same.

The sampler hands the dataset ``epoch × len(dataset) + index`` so that the epoch reaches
the workers with each index.

Batches come from ``BatchLoader``, not from Paddle's DataLoader, whose reader thread
waits forever once the dataset raises. Here every producer (the reader thread when
``num_workers`` is 0, else worker processes) catches whatever it raises and hands it to
the consumer, which raises it in the training loop: a bad record ends the run at once
with its one-line message. A worker that dies (killed, crashed in native code) is
noticed within a second; a worker that stays silent for ``STALL_TIMEOUT`` seconds (a
hung file system) ends the run too, as a last line of defence. A worker killed by a data
file truncated under it (SIGBUS, see ``store.sigbus``) leaves its one line in a pipe, and
the run ends with that line.
"""

import multiprocessing
import multiprocessing.connection
import os
import pickle
import queue
import random
import signal
import threading
import time
import traceback

import numpy as np
import paddle
from paddle.io.dataloader.collate import default_collate_fn

from ..utils.errors import ActBertError, ConfigError, DataError
from ..utils.logger import get_logger
from .store import sigbus

# Seconds without a batch from live producers before the run is stopped (a hung read).
STALL_TIMEOUT = 600.0
# How often the consumer checks that its producers are still alive while it waits.
POLL_SECONDS = 0.5


def sample_seed(seed, epoch, index):
    """A 32-bit seed for sample ``index`` of ``epoch``, well mixed (SeedSequence)."""
    return int(np.random.SeedSequence([seed, epoch, index]).generate_state(1)[0])


class SeededDataset(paddle.io.Dataset):
    """Wraps a dataset: item ``epoch * n + i`` is ``dataset[i]`` with the RNGs seeded for it."""

    def __init__(self, dataset, seed):
        self.dataset = dataset
        self.seed = int(seed)
        self.size = len(dataset)

    def __len__(self):
        return self.size

    def __getitem__(self, code):
        epoch, index = divmod(int(code), self.size)
        s = sample_seed(self.seed, epoch, index)
        np.random.seed(s)
        random.seed(s)
        return self.dataset[index]

    def end_epoch(self, epoch=None):
        """The wrapped dataset's ``end_epoch`` (its count of skipped bad records), if it has one."""
        end_epoch = getattr(self.dataset, "end_epoch", None)
        return end_epoch(epoch) if end_epoch is not None else 0


class ShardedBatchSampler(paddle.io.BatchSampler):
    """Batches of this rank's slice of each global batch, resumable at any batch.

    ``drop_last``: drop the final incomplete global batch, so every rank takes the same
    number of steps (training). Without it (validation) the last global batch is split
    as evenly as the ranks allow and a rank may get fewer batches.
    """

    def __init__(self, num_samples, batch_size, shuffle, drop_last, seed, rank=0, world_size=1):
        self.num_samples = int(num_samples)
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.seed = int(seed)
        self.rank, self.world_size = rank, world_size
        self.epoch = 0
        self.start_batch = 0

    @property
    def global_batch(self):
        return self.batch_size * self.world_size

    def num_batches(self):
        """Batches of a whole epoch (before any skipping)."""
        if self.drop_last:
            return self.num_samples // self.global_batch
        full, rest = divmod(self.num_samples, self.global_batch)
        return full + (1 if rest > self.rank else 0)

    def set_epoch(self, epoch, start_batch=0):
        """Iterate epoch ``epoch`` from its batch ``start_batch`` on."""
        self.epoch, self.start_batch = int(epoch), int(start_batch)

    def order(self):
        if not self.shuffle:
            return np.arange(self.num_samples)
        return np.random.default_rng([self.seed, self.epoch]).permutation(self.num_samples)

    def __iter__(self):
        order, offset = self.order(), self.epoch * self.num_samples
        for b in range(self.start_batch, self.num_batches()):
            chunk = order[b * self.global_batch:(b + 1) * self.global_batch]
            if len(chunk) == self.global_batch:
                local = chunk[self.rank * self.batch_size:(self.rank + 1) * self.batch_size]
            else:
                local = np.array_split(chunk, self.world_size)[self.rank]
            yield [int(offset + i) for i in local]

    def __len__(self):
        return max(self.num_batches() - self.start_batch, 0)


def _worker_init(seed, rank):
    """Seed the RNGs of each worker distinctly (the per-sample seeds override them)."""

    def init(worker_id):
        s = sample_seed(seed, 1_000_000 + rank, worker_id)
        np.random.seed(s)
        random.seed(s)

    return init


class LoaderFailure:
    """What a producer raised, in a form that crosses a process boundary.

    Errors about the input (``ActBertError``) travel as themselves and are raised again
    as they are; anything else (a bug) travels as its type name, message and traceback
    and is raised as a ``DataError`` saying where it happened, its traceback logged.
    """

    def __init__(self, exc, where):
        self.where = where
        self.error = exc if isinstance(exc, ActBertError) and _picklable(exc) else None
        self.summary = f"{type(exc).__name__}: {exc}"
        self.trace = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))

    def raise_it(self):
        if self.error is not None:
            raise self.error
        get_logger().error("data loading failed in %s:\n%s", self.where, self.trace.rstrip())
        raise DataError(f"data loading failed in {self.where}: {self.summary} (traceback logged above)")


def _picklable(obj):
    try:
        pickle.dumps(obj)
        return True
    except Exception:
        return False


def _signal_name(exitcode):
    if exitcode is not None and exitcode < 0:
        try:
            return f"killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"killed by signal {-exitcode}"
    return f"exit status {exitcode}"


def collate_batch(dataset, indices):
    """The samples ``dataset[i]`` for ``indices`` stacked into one batch (NumPy arrays)."""
    return default_collate_fn([dataset[i] for i in indices])


def to_tensors(batch):
    """``batch`` with every NumPy array turned into a Paddle tensor (dicts and lists kept)."""
    if isinstance(batch, np.ndarray):
        return paddle.to_tensor(batch)
    if isinstance(batch, dict):
        return {k: to_tensors(v) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return [to_tensors(v) for v in batch]
    return batch


def _receive(conn):
    """(number, LoaderFailure or (pickle, [array data])) of the next message of a worker."""
    number, payload, count = conn.recv()
    if isinstance(payload, LoaderFailure):
        return number, payload
    return number, (payload, [conn.recv_bytes() for _ in range(count)])


def _worker_loop(dataset, tasks, results, init_fn, worker_id, report):
    """A worker process: read (number, indices) tasks, answer with the batch or its failure.
    ``report``: the pipe for the line of a fatal SIGBUS in a data file (see ``store.sigbus``)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the main process's to handle
    sigbus.report_to(report)
    try:
        if init_fn is not None:
            init_fn(worker_id)
    except BaseException as exc:  # noqa: BLE001 - every failure must reach the main process
        results.send((None, LoaderFailure(exc, f"worker {worker_id} start-up"), 0))
        return
    while True:
        try:
            task = tasks.recv()
        except (EOFError, OSError):  # the main process is gone
            return
        if task is None:
            return
        number, indices = task
        try:
            # The batch goes as a pickle whose array data follow as separate messages: no copies.
            buffers = []
            try:
                meta = pickle.dumps(collate_batch(dataset, indices), protocol=5, buffer_callback=buffers.append)
            except BaseException as exc:  # noqa: BLE001
                results.send((number, LoaderFailure(exc, f"worker {worker_id}, samples {list(indices)}"), 0))
                continue
            results.send((number, meta, len(buffers)))
            for buffer in buffers:
                results.send_bytes(buffer.raw())
        except (BrokenPipeError, OSError):
            return


def _read_report(fd):
    """The first line a dead worker left in the report pipe ``fd`` (str), or ''."""
    os.set_blocking(fd, False)
    try:
        return os.read(fd, 1 << 16).decode("utf-8", "replace").split("\n", 1)[0]
    except BlockingIOError:
        return ""


class BatchLoader:
    """Batches of ``dataset`` in the order of ``batch_sampler``, as dicts of Paddle tensors.

    ``num_workers`` 0: one reader thread in this process builds the next ``prefetch``
    batches; more: that many forked worker processes, ``prefetch`` batches each in
    flight. Whatever a producer raises is raised by the iterator (see ``LoaderFailure``);
    a dead worker or ``stall_timeout`` seconds without a batch raise ``DataError``.
    Attributes ``dataset`` and ``batch_sampler`` as Paddle's DataLoader.
    """

    def __init__(self, dataset, batch_sampler, num_workers=0, worker_init_fn=None, prefetch=2,
                 stall_timeout=STALL_TIMEOUT, where="DATASET.train"):
        self.dataset, self.batch_sampler = dataset, batch_sampler
        self.num_workers, self.worker_init_fn = int(num_workers), worker_init_fn
        self.prefetch, self.stall_timeout, self.where = max(int(prefetch), 1), float(stall_timeout), where

    def __len__(self):
        return len(self.batch_sampler)

    def __iter__(self):
        batches = self._from_workers() if self.num_workers > 0 else self._from_thread()
        for batch in batches:
            yield to_tensors(batch)

    def _stalled(self, since, who):
        if time.monotonic() - since > self.stall_timeout:
            raise DataError(f"{self.where}: no batch from {who} for {self.stall_timeout:.0f} s (a hung read?); "
                            f"stopping instead of waiting")

    # ------------------------------------------------------------ num_workers = 0

    def _from_thread(self):
        out, stop = queue.Queue(maxsize=self.prefetch), threading.Event()

        def hand_over(item):
            while not stop.is_set():
                try:
                    out.put(item, timeout=POLL_SECONDS)
                    return True
                except queue.Full:
                    continue
            return False

        def produce():
            indices = None
            try:
                for indices in self.batch_sampler:
                    if not hand_over(("batch", collate_batch(self.dataset, indices))):
                        return
                hand_over(("end", None))
            except BaseException as exc:  # noqa: BLE001 - every failure must reach the consumer
                where = "the reader thread" + (f", samples {list(indices)}" if indices is not None else "")
                hand_over(("failure", LoaderFailure(exc, where)))

        thread = threading.Thread(target=produce, name="batch-reader", daemon=True)
        thread.start()
        since = time.monotonic()
        try:
            while True:
                try:
                    kind, item = out.get(timeout=POLL_SECONDS)
                except queue.Empty:
                    if not thread.is_alive() and out.empty():
                        raise DataError(f"{self.where}: the reader thread ended without a batch or an error") \
                            from None
                    self._stalled(since, "the reader thread")
                    continue
                if kind == "end":
                    return
                if kind == "failure":
                    item.raise_it()
                yield item
                since = time.monotonic()
        finally:
            stop.set()

    # ------------------------------------------------------------ num_workers >= 1

    def _from_workers(self):
        workers, task_ends, result_ends = [], [], []
        context = multiprocessing.get_context("fork")
        # A worker killed by a truncated data file (SIGBUS) writes its one line here first.
        self._reports, report_write = os.pipe()
        try:
            for worker_id in range(self.num_workers):
                task_read, task_write = context.Pipe(duplex=False)
                result_read, result_write = context.Pipe(duplex=False)
                process = context.Process(
                    target=_worker_loop, name=f"batch-worker-{worker_id}", daemon=True,
                    args=(self.dataset, task_read, result_write, self.worker_init_fn, worker_id, report_write))
                process.start()
                # Only the worker may hold the write end of its results: if it dies in the
                # middle of a message, reading that message ends (EOF) instead of waiting.
                task_read.close()
                result_write.close()
                workers.append(process)
                task_ends.append(task_write)
                result_ends.append(result_read)
            os.close(report_write)
            report_write = None
            yield from self._collect(workers, task_ends, result_ends)
        finally:
            self._shut_down(workers, task_ends, result_ends)
            for fd in (self._reports, report_write):
                if fd is not None:
                    os.close(fd)

    def _collect(self, workers, task_ends, result_ends):
        tasks = enumerate(self.batch_sampler)
        sent = received = 0
        ready = {}

        def send_next():
            nonlocal sent
            task = next(tasks, None)
            if task is None:
                return
            worker = task[0] % self.num_workers
            try:
                task_ends[worker].send(task)
            except (BrokenPipeError, OSError):
                self._raise_dead(workers)
            sent += 1

        for _ in range(self.prefetch * self.num_workers):
            send_next()
        since = time.monotonic()
        while received < sent:
            while received not in ready:
                live = multiprocessing.connection.wait(result_ends, timeout=POLL_SECONDS)
                for conn in live:
                    try:
                        number, payload = _receive(conn)
                    except (EOFError, OSError):
                        self._raise_dead(workers)
                    if isinstance(payload, LoaderFailure):
                        payload.raise_it()
                    ready[number] = payload
                if not live:
                    self._raise_dead(workers, only_if_dead=True)
                    self._stalled(since, f"{self.num_workers} worker(s)")
            meta, buffers = ready.pop(received)
            batch = pickle.loads(meta, buffers=buffers)
            received += 1
            send_next()
            yield batch
            since = time.monotonic()

    def _raise_dead(self, workers, only_if_dead=False):
        for worker_id, process in enumerate(workers):
            process.join(timeout=0 if only_if_dead else 1.0)
            if not process.is_alive():
                reported = _read_report(self._reports)
                if reported:
                    raise DataError(reported)
                raise DataError(f"{self.where}: DataLoader worker {worker_id} died ({_signal_name(process.exitcode)}) "
                                f"while loading a batch; its last record may be unreadable")
        if not only_if_dead:
            raise DataError(f"{self.where}: lost the connection to a DataLoader worker")

    @staticmethod
    def _shut_down(workers, task_ends, result_ends):
        for conn in task_ends:
            try:
                conn.send(None)
            except (BrokenPipeError, OSError):
                pass
        deadline = time.monotonic() + 1.0
        for process in workers:
            process.join(timeout=max(deadline - time.monotonic(), 0))
            if process.is_alive():
                process.terminate()
                process.join(timeout=1.0)
            if process.is_alive():
                process.kill()
                process.join()
        for conn in task_ends + result_ends:
            conn.close()


def build_dataloader(dataset, batch_size, num_workers=0, shuffle=True, drop_last=True, seed=0, rank=0,
                     world_size=1, where="DATASET.train", stall_timeout=STALL_TIMEOUT):
    """A ``BatchLoader`` over ``dataset`` with a ``ShardedBatchSampler`` (``loader.batch_sampler``)."""
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(f"batch size for {where} must be a positive integer, got {batch_size!r}")
    if not isinstance(num_workers, int) or num_workers < 0:
        raise ConfigError(f"DATASET.num_workers must be an integer >= 0, got {num_workers!r}")
    sampler = ShardedBatchSampler(len(dataset), batch_size, shuffle, drop_last, seed, rank, world_size)
    if sampler.num_batches() == 0:
        raise ConfigError(
            f"{where} has {len(dataset)} samples, fewer than one batch of {batch_size} x {world_size} process(es); "
            f"lower DATASET.batch_size"
        )
    return BatchLoader(SeededDataset(dataset, seed), sampler, num_workers,
                       worker_init_fn=_worker_init(seed, rank) if num_workers else None,
                       stall_timeout=stall_timeout, where=where)


def batch_size_of(batch):
    """The number of samples B of a collated batch (dict of tensors [B, ...])."""
    return int(next(iter(batch.values())).shape[0])
