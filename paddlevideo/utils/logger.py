"""Logging: one ``paddlevideo`` logger, quiet on ranks other than 0."""

import logging
import os
import sys

from .runtime import rank_and_world

_NAME = "paddlevideo"
_OWNED = "_paddlevideo_owned"  # marks the handlers setup_logger installed


class _StdoutHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stdout`` is when a record is emitted, not the object it was at
    setup: a stdout replaced later (``contextlib.redirect_stdout``, a test's capture) is
    followed, and one closed since (an earlier capture) is never written to."""

    def __init__(self):
        super().__init__(sys.stdout)

    @property
    def stream(self):
        return sys.stdout

    @stream.setter
    def stream(self, value):  # StreamHandler's own assignments: the stream is always sys.stdout
        pass


def setup_logger(output_dir=None, level="INFO", name=_NAME):
    """Configure the project logger: stdout on rank 0, plus ``{output_dir}/train.log``.

    Replaces (and closes) only the handlers an earlier call installed; a handler someone else
    attached (an embedding program's, a test's capture) stays."""
    logger = logging.getLogger(name)
    for old in [h for h in logger.handlers if getattr(h, _OWNED, False)]:
        logger.removeHandler(old)
        old.close()
    logger.propagate = False
    rank = rank_and_world()[0]
    logger.setLevel(level if rank == 0 else "ERROR")
    fmt = logging.Formatter("[%(asctime)s] %(message)s", datefmt="%Y/%m/%d %H:%M:%S")
    stream = _StdoutHandler()
    handlers = [stream]
    if output_dir and rank == 0:
        os.makedirs(output_dir, exist_ok=True)
        handlers.append(logging.FileHandler(os.path.join(output_dir, "train.log"), encoding="utf-8"))
    for handler in handlers:
        handler.setFormatter(fmt)
        setattr(handler, _OWNED, True)
        logger.addHandler(handler)
    return logger


def get_logger(name=_NAME):
    return logging.getLogger(name)
