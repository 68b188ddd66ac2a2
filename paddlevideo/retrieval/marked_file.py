"""Files this project writes and reads back (first-stage weights, video indexes): ``.npz``
archives whose ``__meta__`` entry is JSON carrying a ``format`` marker.

A file at the target path without our marker (a checkpoint given by mistake, a truncated
or damaged archive, a directory) is refused and never overwritten; ours are written
atomically (a temporary file renamed into place), so a killed write leaves the old file.
"""

from __future__ import annotations

import json
import os
import zipfile

import numpy as np

from ..utils.errors import DataError
from ..utils.outfile import atomic_output, check_output_file


def refusal(flag, path, why):
    """The one-line error for a file at ``path`` (given as ``flag``) that is not ours to use."""
    return DataError(f"{flag} {path}: {why}; it is left untouched: give another path (or delete the file "
                     "if it is yours to lose)")


def read_meta(path, fmt, flag, legacy=None):
    """The ``__meta__`` dict of our archive at ``path`` marked ``fmt``; DataError otherwise.
    ``legacy(meta)``: True for an unmarked layout of ours written before the marker existed."""
    if os.path.isdir(path):
        raise refusal(flag, path, "is a directory, not a file")
    try:
        if not zipfile.is_zipfile(path):  # an .npz ends with the zip directory: a truncated one has none
            raise refusal(flag, path, f"not a {fmt} file (not an .npz archive, or a truncated one)")
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["__meta__"])) if "__meta__" in data.files else None
    except OSError as exc:
        raise refusal(flag, path, f"unreadable ({exc.strerror or exc})") from None
    except (ValueError, KeyError, zipfile.BadZipFile, EOFError) as exc:
        raise refusal(flag, path, f"a damaged archive ({type(exc).__name__}: {exc})") from None
    if not (isinstance(meta, dict) and (meta.get("format") == fmt or (legacy is not None and legacy(meta)))):
        raise refusal(flag, path, f"an .npz archive that is not a {fmt} file (no '{fmt}' marker)")
    return meta


def read_arrays(path, names, flag):
    """The arrays ``names`` of an archive already checked by ``read_meta``: dict name -> array."""
    try:
        with np.load(path, allow_pickle=False) as data:
            return {name: data[name] for name in names}
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as exc:
        raise refusal(flag, path, f"a damaged file ({type(exc).__name__}: {exc})") from None


def check_target(path, fmt, flag, legacy=None):
    """Before any work: ``path`` is missing (and writable there) or a file of ours marked ``fmt``."""
    if os.path.lexists(path):
        read_meta(path, fmt, flag, legacy)
    else:
        check_output_file(path, flag)


def write_marked(path, fmt, flag, meta, arrays):
    """Write ``arrays`` (dict name -> array) with ``meta`` (JSON-able dict) atomically, never
    over a file that is not ours (checked again just before the rename)."""
    blob = json.dumps({**meta, "format": fmt})
    with atomic_output(path, flag) as f:
        np.savez(f, __meta__=np.array(blob), **arrays)
        check_target(path, fmt, flag)
