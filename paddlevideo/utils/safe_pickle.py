"""Reading pickles that come from outside (released features, ``.npy`` object arrays,
PyTorch checkpoints) without letting them run code.

A pickle names the globals it calls; ``SafeUnpickler`` resolves only an allow-list of
NumPy array/scalar/dtype constructors and a few plain builtins, and refuses any other
name (``os.system``, a user class, ...) before anything is called. Subclasses extend the
list (``tools``' PyTorch reader, ``paddlevideo.utils.torch_file``).
"""

import builtins
import codecs
import importlib
import io
import pickle

import numpy as np

from .errors import DataError


def _numpy_attr(module_tail, name):
    """``numpy._core.<tail>.<name>`` (NumPy 2) or ``numpy.core.<tail>.<name>`` (NumPy 1)."""
    for prefix in ("numpy._core", "numpy.core"):
        try:
            return getattr(importlib.import_module(f"{prefix}.{module_tail}"), name)
        except (ImportError, AttributeError):
            continue
    raise AttributeError(f"numpy has no {module_tail}.{name}")


def _allowed_globals():
    """(module, name) -> object for everything a pickle of NumPy arrays and plain values may name.

    Pickles written under NumPy 1 name ``numpy.core.*``, under NumPy 2 ``numpy._core.*``;
    both resolve to this NumPy's objects without touching the deprecated ``numpy.core``.
    """
    table = {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype}
    for core in ("numpy.core", "numpy._core"):
        table[(f"{core}.multiarray", "_reconstruct")] = _numpy_attr("multiarray", "_reconstruct")
        table[(f"{core}.multiarray", "scalar")] = _numpy_attr("multiarray", "scalar")
        table[(f"{core}.numeric", "_frombuffer")] = _numpy_attr("numeric", "_frombuffer")
    # Protocol-2 pickles encode bytes (an array's buffer) as _codecs.encode(str, "latin1").
    table[("_codecs", "encode")] = codecs.encode
    for mod in ("builtins", "__builtin__"):
        for name in ("set", "frozenset", "bytearray", "complex"):
            table[(mod, name)] = getattr(builtins, name)
    return table


_ALLOWED = _allowed_globals()


class UnsafePickleError(pickle.UnpicklingError):
    """A pickle named a global outside the allow-list."""


class SafeUnpickler(pickle.Unpickler):
    """An unpickler that can rebuild NumPy arrays, dtypes, scalars and plain values only.

    Any other global raises ``UnsafePickleError`` naming it. ``extra_globals``: a
    subclass's additions, (module, name) -> object.
    """

    extra_globals = {}

    def find_class(self, module, name):
        found = self.extra_globals.get((module, name)) or _ALLOWED.get((module, name))
        if found is None:
            raise UnsafePickleError(f"{module}.{name}")
        return found

    def persistent_load(self, pid):
        raise UnsafePickleError(f"persistent id {pid!r}")


def safe_loads(data, where):
    """Unpickle ``data`` (bytes) with ``SafeUnpickler``; ``where`` names file and key in errors."""
    return safe_load(io.BytesIO(data), where)


def safe_load(file, where, error=DataError, corrupt="truncated or corrupt pickle"):
    """Unpickle the next pickle of ``file`` with ``SafeUnpickler`` (see ``run_unpickler``)."""
    return run_unpickler(SafeUnpickler(file, encoding="latin1"), where, error, corrupt)


def run_unpickler(unpickler, where, error=DataError, corrupt="truncated or corrupt pickle"):
    """``unpickler.load()``; ``error`` (one line naming ``where``) for a refused global, or
    saying ``corrupt`` for a truncated or corrupt pickle. Unpicklers are made with
    ``encoding="latin1"``, which lets Python 2 pickles of NumPy arrays load (their buffers
    are byte strings)."""
    try:
        return unpickler.load()
    except UnsafePickleError as exc:
        raise error(
            f"{where}: the pickle names class '{exc}', expected only arrays and plain values; "
            "refusing to load it (pickles can run code)"
        ) from None
    except MemoryError:
        raise
    except Exception as exc:  # any decoding failure of untrusted bytes is a corrupt file
        raise error(f"{where}: {corrupt} ({type(exc).__name__}: {exc})") from None


def load_npy(path):
    """The array of the ``.npy`` at ``path``; object arrays (pickles) through ``SafeUnpickler``.

    DataError naming the file when it is missing, not a ``.npy``, truncated, or its pickle
    names anything but NumPy arrays and plain values.
    """
    from numpy.lib import format as npy_format

    try:
        with open(path, "rb") as f:
            version = npy_format.read_magic(f)
            header = npy_format.read_array_header_1_0 if version == (1, 0) else npy_format.read_array_header_2_0
            shape, fortran, dtype = header(f)
            if not dtype.hasobject:
                f.seek(0)
                return np.load(f, allow_pickle=False)
            array = safe_load(f, path, corrupt="not a readable .npy file, or truncated")
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a directory, expected a .npy file") from None
    except (ValueError, OSError, EOFError) as exc:
        if isinstance(exc, DataError):
            raise
        raise DataError(f"{path}: not a readable .npy file, or truncated ({type(exc).__name__}: {exc})") from None
    if not isinstance(array, np.ndarray) or array.shape != tuple(shape):
        got = array.shape if isinstance(array, np.ndarray) else type(array).__name__
        raise DataError(f"{path}: the pickle holds {got}, the .npy header says an array of shape {tuple(shape)}")
    return array
