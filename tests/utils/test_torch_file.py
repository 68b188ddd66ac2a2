"""PyTorch checkpoints and PaddleVideo's object ``.npy`` read without torch and without running
their pickles (files written by torch 2.13 in both formats, and by hand without torch)."""

import collections
import os
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest
from torch_writer import rebuild_call_pickle, save_legacy, save_zip

from paddlevideo.loader.store.npy_source import load_npy_items
from paddlevideo.loader.store.synthetic import random_clip, write_npy
from paddlevideo.utils.errors import DataError, WeightsError
from paddlevideo.utils.safe_pickle import load_npy
from paddlevideo.utils.torch_file import read_torch_file, torch_state_dict

TORCH_FILES = Path(__file__).resolve().parents[1] / "fixtures" / "torch_files"


@pytest.mark.parametrize("name", ["r3d10_tiny.pth", "r3d10_tiny_legacy.pth"])
def test_checkpoints_written_by_torch_read_back_exactly(name):
    reference = np.load(TORCH_FILES / "r3d10_tiny.npz")
    checkpoint = read_torch_file(TORCH_FILES / name)
    assert checkpoint["epoch"] == 200 and checkpoint["arch"] == "resnet-10"
    assert checkpoint["scheduler"]["milestones"] == {50: 1, 100: 1, 150: 1}  # a collections.Counter
    assert len(checkpoint["optimizer"]["state"]) == 62  # SGD momentum buffers: tensors too
    state = torch_state_dict(TORCH_FILES / name)
    assert sorted(state) == sorted(f"module.{k}" for k in reference.files)
    for key in reference.files:
        got = state[f"module.{key}"]
        assert got.dtype == reference[key].dtype and got.shape == reference[key].shape, key
        np.testing.assert_array_equal(got, reference[key])


def test_layouts_and_dtypes_written_by_torch():
    got, want = read_torch_file(TORCH_FILES / "tensors.pth"), np.load(TORCH_FILES / "tensors.npz")
    assert sorted(got) == sorted(want.files)
    for key in want.files:
        assert got[key].shape == want[key].shape and got[key].dtype == want[key].dtype, key
        np.testing.assert_array_equal(got[key], want[key])  # bfloat16 widened exactly to float32


@pytest.mark.parametrize("save", [save_zip, save_legacy])
def test_hand_written_files_round_trip(save, tmp_path):
    shared = np.arange(12, dtype=np.float32).reshape(3, 4)
    obj = {"state_dict": collections.OrderedDict(
        [("a", shared), ("tied", shared), ("t", shared.T), ("n", np.array(7, np.int64)),
         ("e", np.zeros((0, 3), np.float16)), ("b", np.array([True, False]))]), "epoch": 3}
    got = read_torch_file(save(obj, tmp_path / "x.pth"))
    assert got["epoch"] == 3 and list(got["state_dict"]) == ["a", "tied", "t", "n", "e", "b"]
    for key, value in obj["state_dict"].items():
        assert got["state_dict"][key].shape == value.shape and got["state_dict"][key].dtype == value.dtype
        np.testing.assert_array_equal(got["state_dict"][key], value)


class RunsCode:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_a_pickle_that_would_run_code_is_refused_before_anything_runs(tmp_path):
    marker = tmp_path / "pwned"
    crafted = pickle.dumps({"state_dict": {"w": RunsCode(marker)}}, protocol=2)
    save_zip({}, tmp_path / "evil.pth", data_pkl=crafted)
    with pytest.raises(WeightsError, match=r"evil.pth: the pickle names class '(posix|os|nt)\.system'"):
        read_torch_file(tmp_path / "evil.pth")
    with open(tmp_path / "evil_legacy.pth", "wb") as f:  # the legacy layout: the data pickle after the headers
        for header in (0x1950A86A20F9469CFC6C, 1001, {"little_endian": True}):
            pickle.dump(header, f, protocol=2)
        f.write(crafted)
    with pytest.raises(WeightsError, match="system"):
        read_torch_file(tmp_path / "evil_legacy.pth")
    assert not marker.exists()


def test_a_tensor_reaching_past_its_storage_is_refused(tmp_path):
    path = save_zip({"w": np.ones(4, np.float32)}, tmp_path / "x.pth")
    with zipfile.ZipFile(path) as archive:
        entries = {n: archive.read(n) for n in archive.namelist()}
    entries["archive/data/0"] = entries["archive/data/0"][:8]  # 2 of the 4 elements left
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    with pytest.raises(WeightsError, match="storage 0 holds 8 bytes, expected 16"):
        read_torch_file(path)


@pytest.mark.parametrize("args", [([1], 0, (2,), (1,)), ("0", 0, (2,), (1,)), ("0", 0, ("2",), (1,))])
def test_tensor_references_built_from_other_values_are_refused(args, tmp_path):
    save_zip({}, tmp_path / "x.pth", data_pkl=rebuild_call_pickle(*args))
    with pytest.raises(WeightsError, match="x.pth: (truncated or corrupt|a tensor of storage)"):
        read_torch_file(tmp_path / "x.pth")


def test_foreign_files_are_one_line_errors(tmp_path):
    (tmp_path / "text.pth").write_text("hello")
    with pytest.raises(WeightsError, match="text.pth: not a PyTorch checkpoint"):
        read_torch_file(tmp_path / "text.pth")
    with zipfile.ZipFile(tmp_path / "other.zip", "w") as archive:
        archive.writestr("readme.txt", "not a checkpoint")
    with pytest.raises(WeightsError, match="a zip file but not a PyTorch checkpoint"):
        read_torch_file(tmp_path / "other.zip")
    save_zip({"epoch": 1}, tmp_path / "no_state.pth")
    with pytest.raises(WeightsError, match="expected a state dict"):
        torch_state_dict(tmp_path / "no_state.pth")


def test_released_npy_reads_as_numpy_reads_it(tmp_path):
    rng = np.random.default_rng(0)
    path = write_npy(tmp_path / "clips.npy", [random_clip(rng, i, feature_size=8, num_classes=5,
                                                          action_feature_size=6) for i in range(3)])
    want, got = np.load(path, allow_pickle=True), load_npy_items(path)
    assert got.shape == want.shape == (3,)
    for a, b in zip(got, want):
        assert len(a) == len(b) == 11
        for x, y in zip(a, b):
            np.testing.assert_array_equal(x, y)
    plain = tmp_path / "plain.npy"
    np.save(plain, np.arange(5))  # no pickle: read by NumPy itself
    np.testing.assert_array_equal(load_npy(plain), np.arange(5))


def test_a_crafted_npy_does_not_run_code(tmp_path):
    marker = tmp_path / "pwned"
    items = np.empty(1, dtype=object)
    items[0] = RunsCode(marker)
    np.save(tmp_path / "evil.npy", items, allow_pickle=True)
    with pytest.raises(DataError, match=r"evil.npy: the pickle names class '(posix|os|nt)\.system'"):
        load_npy_items(tmp_path / "evil.npy")
    assert not marker.exists()
