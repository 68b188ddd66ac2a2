"""Files the package writes (results, checkpoints, converted weights, extraction outputs):
checked before the work, written atomically.

A tool that would only find out after minutes of scoring that its ``--output`` cannot be
written checks it first (``check_output_file``). Every file is written the one way of
``atomic_path`` (``atomic_file``, ``atomic_output`` on top of it): to a unique temporary
name beside it, synced, and renamed into place, so a full disk, an exception or a killed
process never leaves a half-written file under the real name.
"""

import contextlib
import errno
import os
import re
import secrets

from .errors import ConfigError


def _first_existing(path):
    """The nearest ancestor of ``path`` (absolute) that exists."""
    folder = os.path.dirname(os.path.abspath(path))
    while not os.path.exists(folder):
        folder = os.path.dirname(folder)
    return folder


def check_output_file(path, flag):
    """ConfigError (one line, naming ``flag``) unless a file can be written at ``path``.

    Refused: a directory, a path under a regular file, a folder that cannot be created or
    written (``/proc``, a read-only mount). The folder is created if missing."""
    path = os.fspath(path)
    if os.path.isdir(path):
        raise ConfigError(f"{flag} {path}: is a directory; give a file name")
    ancestor = _first_existing(path)
    if not os.path.isdir(ancestor):
        raise ConfigError(f"{flag} {path}: {ancestor} is a file, not a folder")
    folder = os.path.dirname(os.path.abspath(path))
    probe = os.path.join(folder, f".{os.path.basename(path)}.probe{os.getpid()}")
    try:
        os.makedirs(folder, exist_ok=True)
        with open(probe, "wb"):
            pass
        os.remove(probe)
    except OSError as exc:
        raise ConfigError(f"{flag} {path}: cannot write in {folder} ({exc.strerror or exc})") from None


@contextlib.contextmanager
def atomic_path(path, suffix=""):
    """Yield the name of a new, empty temporary file beside ``path``; when the body ends, the
    file is synced and renamed onto ``path``, then the folder is synced.

    For writers that take a path (``paddle.save``; ``np.savez`` with ``suffix=".npz"``, since
    it adds that to a name without it); ``atomic_file`` gives a file object. The temporary file
    is in ``path``'s folder (one filesystem, so the rename is atomic), its name is unique
    (``{name}.tmp{pid}.{random}{suffix}``, created exclusively: two writers never share one,
    even with one pid) and it is removed on any exception, KeyboardInterrupt included; until
    the rename, ``path`` is left as it was. OSError propagates: the caller names what failed.
    """
    path = os.fspath(path)
    tmp = _create_temporary(path, suffix)
    try:
        yield tmp
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)  # the data is on disk before the name points at it
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise
    _sync_folder(os.path.dirname(os.path.abspath(path)))


@contextlib.contextmanager
def atomic_file(path, mode="wb", **open_args):
    """``atomic_path`` with the temporary file open (``open(tmp, mode, **open_args)``)."""
    with atomic_path(path) as tmp, open(tmp, mode, **open_args) as f:
        yield f


def _create_temporary(path, suffix):
    """Create ``{path}.tmp{pid}.{8 hex digits}{suffix}`` exclusively (mode 0o666 less the umask, as
    ``open`` would give the target); its name."""
    for _ in range(100):
        tmp = f"{path}.tmp{os.getpid()}.{secrets.token_hex(4)}{suffix}"
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            return tmp
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no free temporary name", f"{path}.tmp{os.getpid()}.*")


def _sync_folder(folder):
    """fsync ``folder`` so that the rename itself survives a power cut. The new file is in place
    already, so a filesystem that cannot sync a folder (EINVAL on some network mounts) is no
    reason to fail the write."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def remove_stale_temporaries(path):
    """Delete the temporary files of ``path`` (``{path}.tmp<pid>``, with or without the random
    part) whose writing process is gone (killed mid-write); their names."""
    folder, name = os.path.split(os.path.abspath(path))
    pattern = re.compile(re.escape(name) + r"\.tmp(\d+)(?:\.[0-9a-f]{8})?$")
    removed = []
    for entry in os.listdir(folder):
        match = pattern.match(entry)
        if match and int(match.group(1)) != os.getpid() and not _pid_running(int(match.group(1))):
            with contextlib.suppress(OSError):
                os.remove(os.path.join(folder, entry))
                removed.append(entry)
    return removed


def _pid_running(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. EPERM: it exists, owned by someone else
        return True
    return True


@contextlib.contextmanager
def atomic_output(path, flag):
    """Yield a binary file object; when the body ends it is synced and renamed onto ``path``
    (``atomic_path``).

    On an error inside the body, or a failed write (disk full), the temporary file is
    removed and ``path`` is left as it was; a failed write raises ConfigError naming ``flag``.
    """
    path = os.fspath(path)
    try:
        with atomic_file(path) as f:
            yield f
    except OSError as exc:
        raise ConfigError(f"{flag} {path}: cannot write ({exc.strerror or exc}); the file is left as it was") \
            from None
