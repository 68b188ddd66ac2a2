"""Progress bars only where a person is watching.

A tqdm bar redraws itself with ``\\r`` several times a second; in a log file or a CI
transcript that is one enormous line of spam. Every bar of the project is made here: it is
drawn only when its stream (stderr) is a terminal, and never after ``disable_progress()``
(the ``--no_progress`` flag of main.py and the tools).
"""

import sys

_ALLOWED = True


def disable_progress():
    """Turn every later bar of this process off (``--no_progress``)."""
    global _ALLOWED
    _ALLOWED = False


def progress_enabled(requested=True, stream=None):
    """Whether a bar asked for with ``requested`` is drawn on ``stream`` (default stderr)."""
    stream = sys.stderr if stream is None else stream
    isatty = getattr(stream, "isatty", None)
    return bool(requested and _ALLOWED and isatty is not None and isatty())


def progress_bar(iterable=None, requested=True, **kwargs):
    """A tqdm bar on stderr (``kwargs`` as tqdm's), disabled unless ``progress_enabled``.

    A disabled bar still counts (``n``, ``update``) but writes nothing."""
    from tqdm import tqdm

    return tqdm(iterable, disable=not progress_enabled(requested), file=sys.stderr, **kwargs)
