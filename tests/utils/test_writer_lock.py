import multiprocessing as mp
import time

import pytest

from paddlevideo.utils.errors import ActBertError
from paddlevideo.utils.writer_lock import BusyError, lock_path, writer_lock


def _hold(path, ready, release):
    with writer_lock(path, "store"):
        ready.set()
        release.wait(30)


def test_second_writer_is_refused_while_the_first_lives(tmp_path):
    out = tmp_path / "store"
    out.mkdir()
    ctx = mp.get_context("fork")
    ready, release = ctx.Event(), ctx.Event()
    holder = ctx.Process(target=_hold, args=(str(out), ready, release))
    holder.start()
    try:
        assert ready.wait(30)
        with pytest.raises(BusyError, match=rf"store {out} is being written by pid {holder.pid}"):
            with writer_lock(out, "store"):
                pass
    finally:
        release.set()
        holder.join(30)
    with writer_lock(out, "store") as held:  # released when the holder ended
        assert held == lock_path(out)


def test_lock_is_released_when_the_holder_is_killed(tmp_path):
    ctx = mp.get_context("fork")
    ready, release = ctx.Event(), ctx.Event()
    holder = ctx.Process(target=_hold, args=(str(tmp_path / "out.lmdb"), ready, release))
    holder.start()
    assert ready.wait(30)
    holder.kill()
    holder.join(30)
    deadline = time.time() + 10
    while True:
        try:
            with writer_lock(tmp_path / "out.lmdb", "store"):
                break
        except BusyError:
            assert time.time() < deadline
            time.sleep(0.05)


def test_unwritable_location_is_one_line(tmp_path):
    with pytest.raises(ActBertError, match="cannot create the writer lock"):
        with writer_lock(tmp_path / "missing" / "out", "store"):
            pass
