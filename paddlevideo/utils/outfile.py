"""Result files of the tools (scores, JSON, caches): checked before the work, written atomically.

A tool that would only find out after minutes of scoring that its ``--output`` cannot be
written checks it first (``check_output_file``); the file itself is written to a
temporary name beside it and renamed into place (``atomic_output``), so a full disk or a
killed process never leaves a half-written file under the real name.
"""

import contextlib
import os

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
def atomic_output(path, flag):
    """Yield a binary file object; when the body ends it is synced and renamed onto ``path``.

    On an error inside the body, or a failed write (disk full), the temporary file is
    removed and ``path`` is left as it was; a failed write raises ConfigError naming ``flag``.
    """
    path = os.fspath(path)
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        raise ConfigError(f"{flag} {path}: cannot write ({exc.strerror or exc}); the file is left as it was") \
            from None
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
