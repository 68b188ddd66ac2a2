"""``torch.save``'s two file formats written without torch, for tests.

NumPy arrays in the saved object become tensors: ``torch._utils._rebuild_tensor_v2`` of a
persistent storage reference (``torch.<X>Storage``), as torch writes them. The torch names are
pickled from stand-in modules placed in ``sys.modules`` only while pickling.
"""

import collections
import io
import pickle
import struct
import sys
import types
import zipfile
from unittest import mock

import numpy as np

STORAGES = {np.dtype(np.float32): "FloatStorage", np.dtype(np.float64): "DoubleStorage",
            np.dtype(np.float16): "HalfStorage", np.dtype(np.int64): "LongStorage", np.dtype(np.int32): "IntStorage",
            np.dtype(np.int16): "ShortStorage", np.dtype(np.int8): "CharStorage", np.dtype(np.uint8): "ByteStorage",
            np.dtype(np.bool_): "BoolStorage"}
LEGACY_MAGIC = 0x1950A86A20F9469CFC6C


def _stand_in_torch():
    torch, utils = types.ModuleType("torch"), types.ModuleType("torch._utils")

    def _rebuild_tensor_v2(*args):
        raise AssertionError("a stand-in: never called")

    _rebuild_tensor_v2.__module__, _rebuild_tensor_v2.__qualname__ = "torch._utils", "_rebuild_tensor_v2"
    utils._rebuild_tensor_v2 = _rebuild_tensor_v2
    for name in set(STORAGES.values()):
        setattr(torch, name, type(name, (), {"__module__": "torch"}))
    torch._utils = utils
    return torch


class _Storage:
    def __init__(self, key, array):
        self.key, self.array = key, array


class _Pickler(pickle.Pickler):
    """Arrays -> tensor references; ``storages`` collects (key, flat array) in first-use order."""

    def __init__(self, file, torch, legacy):
        super().__init__(file, protocol=2)
        self.torch, self.legacy, self.storages, self._by_id = torch, legacy, [], {}

    def persistent_id(self, obj):
        if not isinstance(obj, _Storage):
            return None
        storage_type = getattr(self.torch, STORAGES[obj.array.dtype])
        pid = ("storage", storage_type, obj.key, "cpu", obj.array.size)
        return pid + (None,) if self.legacy else pid

    def reducer_override(self, obj):
        if not isinstance(obj, np.ndarray):
            return NotImplemented
        array = obj if obj.flags.c_contiguous else obj.copy(order="C")  # (ascontiguousarray makes 0-d 1-d)
        if id(obj) not in self._by_id:
            self._by_id[id(obj)] = _Storage(str(len(self.storages)), array.reshape(-1))
            self.storages.append(self._by_id[id(obj)])
        stride = tuple(s // array.itemsize for s in array.strides)
        args = (self._by_id[id(obj)], 0, tuple(array.shape), stride, False, collections.OrderedDict())
        return self.torch._utils._rebuild_tensor_v2, args


def _pickle(obj, legacy):
    torch, buffer = _stand_in_torch(), io.BytesIO()
    with mock.patch.dict(sys.modules, {"torch": torch, "torch._utils": torch._utils}):
        pickler = _Pickler(buffer, torch, legacy)
        pickler.dump(obj)
    return buffer.getvalue(), pickler.storages


def save_zip(obj, path, name="archive", data_pkl=None):
    """``obj`` as torch's zip format; ``data_pkl`` replaces the pickle (a crafted one)."""
    data, storages = _pickle(obj, legacy=False)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr(f"{name}/data.pkl", data if data_pkl is None else data_pkl)
        archive.writestr(f"{name}/byteorder", "little")
        for storage in storages:
            archive.writestr(f"{name}/data/{storage.key}", storage.array.astype(storage.array.dtype.newbyteorder("<"))
                             .tobytes())
        archive.writestr(f"{name}/version", "3\n")
    return path


def save_legacy(obj, path):
    """``obj`` as torch's legacy (pre-1.6, non-zip) format."""
    data, storages = _pickle(obj, legacy=True)
    with open(path, "wb") as f:
        for header in (LEGACY_MAGIC, 1001, {"protocol_version": 1001, "little_endian": True,
                                           "type_sizes": {"short": 2, "int": 4, "long": 4}}):
            pickle.dump(header, f, protocol=2)
        f.write(data)
        pickle.dump([s.key for s in storages], f, protocol=2)
        for storage in storages:
            f.write(struct.pack("<q", storage.array.size))
            f.write(storage.array.astype(storage.array.dtype.newbyteorder("<")).tobytes())
    return path


def rebuild_call_pickle(*args):
    """A pickle of one ``torch._utils._rebuild_tensor_v2(*args)`` call, whatever ``args`` are."""
    torch, buffer = _stand_in_torch(), io.BytesIO()

    class Call:
        def __reduce__(self):
            return torch._utils._rebuild_tensor_v2, args

    with mock.patch.dict(sys.modules, {"torch": torch, "torch._utils": torch._utils}):
        pickle.Pickler(buffer, protocol=2).dump({"w": Call()})
    return buffer.getvalue()
