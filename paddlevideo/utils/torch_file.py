"""PyTorch checkpoints (``.pth``, ``pytorch_model.bin``) read without torch and without
running their pickles.

A checkpoint saved by ``torch.save`` is a pickle whose tensors are references to
storages kept outside it:

- zip format (torch >= 1.6): ``<name>/data.pkl`` is the pickle; a tensor is
  ``torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)`` and a storage
  is the persistent id ``("storage", <dtype's Storage class>, key, location, numel)``,
  whose bytes are the zip entry ``<name>/data/<key>`` (little-endian unless
  ``<name>/byteorder`` says otherwise).
- legacy format (older torch): a stream of pickles (magic number, protocol, system
  info, the data pickle, the list of storage keys) followed by each storage in key
  order, as an int64 element count and the raw elements; a storage's persistent id is
  ``("storage", <Storage class>, key, location, numel, view)``.

The data pickle is read by ``SafeUnpickler`` extended with the few torch names these
need (tensor and parameter rebuilders, the Storage classes, ``OrderedDict``); anything
else is refused by name. Tensors come back as NumPy arrays (bfloat16 as float32).
"""

import collections
import io
import os
import pickle
import struct
import zipfile

import numpy as np

from .errors import WeightsError
from .safe_pickle import SafeUnpickler, run_unpickler, safe_load

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
ZIP_MAGIC = b"PK\x03\x04"
# Storage class -> NumPy dtype of its elements ("bfloat16": uint16 bits, widened to float32).
STORAGE_DTYPES = {
    "FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16, "BFloat16Storage": "bfloat16",
    "LongStorage": np.int64, "IntStorage": np.int32, "ShortStorage": np.int16, "CharStorage": np.int8,
    "ByteStorage": np.uint8, "BoolStorage": np.bool_,
}


class _StorageType:
    """What a pickled ``torch.<X>Storage`` class name resolves to: its element dtype."""

    def __init__(self, name):
        self.name, self.dtype = name, STORAGE_DTYPES[name]


class _TensorRef:
    """A tensor of a storage not yet read: (storage key, offset, size, stride) in elements."""

    def __init__(self, storage, offset, size, stride, *_):
        self.storage, self.offset, self.size, self.stride = storage, offset, tuple(size), tuple(stride)


def _rebuild_parameter(data, *_):
    return data


class _TorchUnpickler(SafeUnpickler):
    """SafeUnpickler plus the names of a state dict's tensors; storages are recorded, not read."""

    extra_globals = {
        ("torch._utils", "_rebuild_tensor_v2"): _TensorRef,
        ("torch._utils", "_rebuild_tensor"): _TensorRef,
        ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
        ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
        ("collections", "OrderedDict"): collections.OrderedDict,
        ("collections", "Counter"): collections.Counter,
        **{("torch", name): _StorageType(name) for name in STORAGE_DTYPES},
    }

    def __init__(self, file, **kwargs):
        super().__init__(file, **kwargs)
        self.storages = {}  # key -> (dtype, numel)

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) in (5, 6) and pid[0] == "storage"
                and isinstance(pid[1], _StorageType)):
            return super().persistent_load(pid)
        if len(pid) == 6 and pid[5] is not None:
            raise pickle.UnpicklingError("storage views (legacy format) are not supported")
        key, numel = str(pid[2]), int(pid[4])
        self.storages[key] = (pid[1].dtype, numel)
        return key


def _array(ref, buffers, path):
    """The NumPy array of a tensor reference, checked to lie inside its storage."""
    data = buffers[ref.storage]
    ints = all(isinstance(n, int) for n in (ref.offset, *ref.size, *ref.stride))
    if not ints or len(ref.size) != len(ref.stride) or ref.offset < 0 or min(ref.stride, default=0) < 0 \
            or min(ref.size, default=0) < 0:
        raise WeightsError(f"{path}: a tensor of storage {ref.storage} has a malformed layout")
    if 0 in ref.size:
        return np.zeros(ref.size, dtype=data.dtype)
    last = ref.offset + sum((n - 1) * s for n, s in zip(ref.size, ref.stride))
    if last >= data.size:
        raise WeightsError(f"{path}: a tensor of storage {ref.storage} reaches element {last}, past its "
                           f"{data.size} elements (truncated or corrupt file)")
    view = np.lib.stride_tricks.as_strided(data[ref.offset:], shape=ref.size,
                                           strides=[s * data.itemsize for s in ref.stride])
    return np.array(view)


def _decode(raw, dtype, numel, key, path, big_endian=False):
    """Storage bytes -> a 1-D array of ``numel`` elements."""
    base = np.uint16 if dtype == "bfloat16" else np.dtype(dtype)
    itemsize = np.dtype(base).itemsize
    if numel < 0:
        raise WeightsError(f"{path}: storage {key} claims {numel} elements (corrupt file)")
    if len(raw) < numel * itemsize:
        raise WeightsError(f"{path}: storage {key} holds {len(raw)} bytes, expected {numel * itemsize} "
                           "(truncated file)")
    data = np.frombuffer(raw, dtype=np.dtype(base).newbyteorder(">" if big_endian else "<"), count=numel)
    if dtype == "bfloat16":
        return (data.astype(np.uint32) << 16).view(np.float32)
    return data.astype(np.dtype(base).newbyteorder("="))


def _resolve(obj, buffers, path):
    """``obj`` with every _TensorRef replaced by its array (dicts, lists, tuples walked)."""
    if isinstance(obj, _TensorRef):
        return _array(obj, buffers, path)
    if isinstance(obj, dict):
        out = type(obj)() if isinstance(obj, collections.OrderedDict) else {}
        out.update((k, _resolve(v, buffers, path)) for k, v in obj.items())
        return out
    if isinstance(obj, (list, tuple)):
        return type(obj)(_resolve(v, buffers, path) for v in obj)
    return obj


def _read_zip(path):
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        pickles = [n for n in names if n.endswith("/data.pkl") or n == "data.pkl"]
        if len(pickles) != 1:
            raise WeightsError(f"{path}: a zip file but not a PyTorch checkpoint (no single data.pkl)")
        prefix = pickles[0][: -len("data.pkl")]
        order = archive.read(prefix + "byteorder").decode().strip() if prefix + "byteorder" in names else "little"
        unpickler = _TorchUnpickler(io.BytesIO(archive.read(pickles[0])), encoding="latin1")
        obj = run_unpickler(unpickler, path, WeightsError)
        buffers = {}
        for key, (dtype, numel) in unpickler.storages.items():
            entry = f"{prefix}data/{key}"
            if entry not in names:
                raise WeightsError(f"{path}: storage {key} is missing from the archive")
            buffers[key] = _decode(archive.read(entry), dtype, numel, key, path, order == "big")
    return obj, buffers


def _read_legacy(path):
    with open(path, "rb") as f:
        foreign = "not a PyTorch checkpoint (neither a zip archive nor a legacy torch.save file)"
        magic = safe_load(f, path, error=WeightsError, corrupt=foreign)
        if magic != LEGACY_MAGIC:
            raise WeightsError(f"{path}: {foreign}")
        safe_load(f, path, error=WeightsError)  # protocol version
        info = safe_load(f, path, error=WeightsError)
        big_endian = isinstance(info, dict) and info.get("little_endian") is False
        unpickler = _TorchUnpickler(f, encoding="latin1")
        obj = run_unpickler(unpickler, path, WeightsError)
        keys = safe_load(f, path, error=WeightsError)
        buffers = {}
        for key in keys:
            dtype, _ = unpickler.storages[str(key)]
            count = f.read(8)
            if len(count) < 8:
                raise WeightsError(f"{path}: storage {key} is missing (truncated file)")
            numel = struct.unpack("<q", count)[0]
            itemsize = 2 if dtype == "bfloat16" else np.dtype(dtype).itemsize
            buffers[str(key)] = _decode(f.read(max(numel, 0) * itemsize), dtype, numel, key, path, big_endian)
    return obj, buffers


def read_torch_file(path):
    """The object a ``torch.save`` file holds, tensors as NumPy arrays; WeightsError (one line
    naming the file) when it is missing, truncated, not a PyTorch file, or its pickle names
    anything but tensors, NumPy arrays and plain values."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise WeightsError(f"checkpoint not found: {path}")
    with open(path, "rb") as f:
        zipped = f.read(4) == ZIP_MAGIC  # (is_zipfile looks for the directory at the end: not in a cut file)
    try:
        obj, buffers = _read_zip(path) if zipped else _read_legacy(path)
        return _resolve(obj, buffers, path)
    except (zipfile.BadZipFile, OSError, EOFError, KeyError, ValueError, TypeError) as exc:
        if isinstance(exc, WeightsError):
            raise
        # TypeError/KeyError: tensor references a crafted pickle built from other values
        raise WeightsError(f"{path}: truncated or corrupt PyTorch checkpoint ({type(exc).__name__}: {exc})") from None


def torch_state_dict(path):
    """{name: np.ndarray} of a checkpoint holding a state dict, bare or under ``state_dict``
    (or ``model``); WeightsError when it holds something else."""
    obj = read_torch_file(path)
    if isinstance(obj, dict):
        for key in ("state_dict", "model"):
            if isinstance(obj.get(key), dict):
                obj = obj[key]
                break
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, np.ndarray) for v in obj.values()):
        raise WeightsError(f"{path}: expected a state dict (names -> tensors), or a checkpoint dict holding one "
                           "under 'state_dict'")
    return dict(obj)
