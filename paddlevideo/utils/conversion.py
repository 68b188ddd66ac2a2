"""What the weight converters (``tools/convert_resnet3d.py``, ``tools/convert_frcnn_vg.py``,
``tools/bert_to_actbert.py``) share: reading the source tensors, refusing weights that are
not finite, and writing the output atomically and never over an input.
"""

import os
import zipfile

import numpy as np

from .errors import ConfigError, WeightsError
from .outfile import atomic_path


def read_npz(path):
    """{name: np.ndarray} of an ``.npz`` (no pickles); WeightsError when truncated or foreign."""
    try:
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    except FileNotFoundError:
        raise WeightsError(f"checkpoint not found: {path}") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise WeightsError(f"{path} is not a readable .npz, or truncated ({type(exc).__name__}: {exc})") from None


def check_finite(state, path):
    """WeightsError naming the first floating-point tensor of ``state`` that holds NaN or inf."""
    for name, array in state.items():
        array = np.asarray(array)
        if np.issubdtype(array.dtype, np.floating) and not np.isfinite(array).all():
            bad = int(np.size(array) - np.isfinite(array).sum())
            raise WeightsError(f"{path}: parameter '{name}' holds NaN or inf ({bad} of {array.size} values); "
                               "refusing to convert a diverged or corrupt checkpoint")
    return state


def check_outputs(outputs, inputs):
    """ConfigError when an output path is one of the inputs, or is any other file that exists:
    a converter writes only new files, never over one it did not create."""
    for output in outputs:
        for source in inputs:
            same = os.path.realpath(output) == os.path.realpath(source)
            if same or (os.path.exists(output) and os.path.exists(source) and os.path.samefile(output, source)):
                raise ConfigError(f"the output {output} is the input {source}: refusing to overwrite it "
                                  "(choose another output path)")
        if os.path.lexists(output):
            raise ConfigError(f"the output {output} exists: refusing to overwrite a file this conversion did not "
                              "write (remove it first, or choose another output path)")


def write_atomically(path, write):
    """``write(tmp)`` into a temporary file renamed onto ``path`` (``outfile.atomic_path``): a
    failed or interrupted write leaves no partial ``path``. WeightsError (one line) when the
    location is not writable."""
    path = os.fspath(path)
    try:
        with atomic_path(path) as tmp:
            write(tmp)
    except OSError as exc:
        raise WeightsError(f"cannot write {path} ({type(exc).__name__}: {exc.strerror or exc})") from None
