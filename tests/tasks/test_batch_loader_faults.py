"""BatchLoader under faults: whatever a producer does, iterating ends in seconds with an error.

Each case runs under ``within``: a SIGALRM that turns a hang into a test failure.
"""

import signal
import time
from contextlib import contextmanager

import numpy as np
import pytest
import standin

from paddlevideo.loader.dataloader import build_dataloader
from paddlevideo.utils.errors import ConfigError, DataError


@contextmanager
def within(seconds):
    """Fail (TimeoutError) instead of waiting if the block takes longer than ``seconds``."""

    def alarm(signum, frame):
        raise TimeoutError(f"still running after {seconds} s: a hang")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(seconds)
    start = time.monotonic()
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert time.monotonic() - start < seconds


def drain(loader):
    return [batch for batch in loader]


def faulty(fault, workers, fail_at=9, **kwargs):
    dataset = standin.TinyFaultyDataset(num_samples=32, fail_at=fail_at, fault=fault)
    return build_dataloader(dataset, 4, num_workers=workers, shuffle=False, seed=1, **kwargs)


@pytest.mark.parametrize("workers", [0, 2])
def test_a_bad_record_ends_iteration_with_its_own_error(workers):
    with within(20), pytest.raises(DataError, match=r"^tiny.npy: item 9: image_feature has size 7, expected 8$"):
        drain(faulty("data", workers))


@pytest.mark.parametrize("workers", [0, 2])
def test_a_bug_in_the_dataset_is_a_one_line_error_naming_the_samples(workers, capture_log):
    with within(20), pytest.raises(DataError) as info:
        drain(faulty("bug", workers))
    message = str(info.value)
    assert "\n" not in message and "KeyError: 'no_such_field'" in message and "samples [8, 9, 10, 11]" in message
    logged = "".join(r.getMessage() for r in capture_log)
    assert "Traceback" in logged and "raise KeyError" in logged  # the traceback goes to the log


def test_a_killed_worker_is_noticed():
    with within(20), pytest.raises(DataError, match="DataLoader worker 0 died .killed by SIGKILL."):
        drain(faulty("kill", 2, fail_at=16))  # batch 4 goes to worker 0


@pytest.mark.parametrize("workers", [0, 1])
def test_a_silent_producer_stops_the_run_after_the_stall_timeout(workers):
    with within(20), pytest.raises(DataError, match="no batch from .* for 2 s"):
        drain(faulty("hang", workers, stall_timeout=2))


def test_good_batches_are_the_same_with_and_without_workers_and_the_loop_can_stop_early():
    plain = drain(faulty("none", 0))
    with within(20):
        loader = faulty("none", 2)
        for i, batch in enumerate(loader):
            np.testing.assert_array_equal(batch["y"].numpy(), plain[i]["y"].numpy())
            if i == 2:
                break  # the workers are shut down when the iterator is dropped
        assert len(drain(loader)) == len(plain) == 8


def test_num_workers_must_be_a_count():
    with pytest.raises(ConfigError, match="num_workers must be an integer >= 0"):
        faulty("none", -1)
