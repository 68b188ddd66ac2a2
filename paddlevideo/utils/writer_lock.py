"""One writer per output: an advisory lock held for the writer's whole life.

Two conversions into one store, two extractions into one ``--out`` or two trainings into
one ``output_dir`` would interleave their writes and lose records. Every tool that writes
such an output takes ``writer_lock(path, what)`` first; a second writer is refused at once
with one line naming the output and the process that holds it. The lock is ``flock`` on a
file beside the output, so it is released by the kernel when the holder exits, even on
``kill -9``: a stale lock file never blocks a rerun.
"""

import contextlib
import errno
import fcntl
import os

from .errors import ActBertError

LOCK_SUFFIX = ".writer.lock"


class BusyError(ActBertError, RuntimeError):
    """Another process is writing the same output."""


def lock_path(path):
    """The lock file of ``path``: inside it when it is a folder, beside it otherwise."""
    path = os.path.abspath(path)
    if os.path.isdir(path):
        return os.path.join(path, LOCK_SUFFIX)
    return path + LOCK_SUFFIX


@contextlib.contextmanager
def writer_lock(path, what="output"):
    """Hold the exclusive writer lock of ``path`` (a file or a folder) for the ``with`` body.

    Raises ``BusyError`` (one line: the output, the holder's pid) if another process holds it,
    and ``ActBertError`` if the lock file cannot be created (unwritable location).
    """
    lock_file = lock_path(path)
    try:
        fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise ActBertError(f"cannot create the writer lock {lock_file} of {what} {path}: {exc.strerror}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise
            holder = os.pread(fd, 64, 0).decode("ascii", "replace").strip() or "another process"
            raise BusyError(f"{what} {path} is being written by {holder}; wait for it to end "
                            "or choose another output") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()}".encode("ascii"), 0)
        yield lock_file
    finally:
        os.close(fd)  # closing the descriptor releases the flock
