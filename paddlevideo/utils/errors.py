"""Errors raised for bad user input.

Every error a user can cause by a config, a command-line flag or a data file is one
of these. ``main.py`` prints them as a single line (no traceback) and exits with
status 2; anything else is a bug and keeps its traceback.
"""

import sys


class ActBertError(Exception):
    """Base class of the errors that describe bad user input."""


class ConfigError(ActBertError, ValueError):
    """A YAML file, an ``-o`` override or a command-line flag is wrong."""


class DataError(ActBertError, ValueError):
    """A data file or record is missing, corrupt or inconsistent."""


class WeightsError(ActBertError, ValueError):
    """A weights or checkpoint file is missing or does not fit the model."""


def exit_status(action, *args):
    """Run ``action(*args)`` for a command-line entry point: 0, or 2 after printing an
    ``ActBertError`` as one ``error: ...`` line on stderr (other exceptions propagate)."""
    try:
        action(*args)
    except ActBertError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0
