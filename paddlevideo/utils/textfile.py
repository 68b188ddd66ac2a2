"""Reading a user's text file (a list, an annotation CSV) with one-line errors naming it."""

from .errors import DataError


def read_text(path, what, encoding="utf-8"):
    """The text of ``path``; DataError naming the file and ``what`` it should be when it is
    missing, unreadable or not in ``encoding``."""
    try:
        with open(path, encoding=encoding) as f:
            return f.read()
    except FileNotFoundError:
        raise DataError(f"{path}: {what} not found") from None
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read {what} ({exc.strerror or exc})") from None
