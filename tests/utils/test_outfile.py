"""The one atomic write of the package (utils/outfile.atomic_path, atomic_file, atomic_output):
a temporary file beside the target with a name no other writer has, synced before the rename,
the folder synced after, removed on any failure; the old file intact until the rename."""

import errno
import os
import stat
import subprocess
import sys
import threading

import numpy as np
import pytest

from paddlevideo.utils import outfile
from paddlevideo.utils.errors import ConfigError

OLD = b"old contents\n" * 100


@pytest.fixture
def target(tmp_path):
    path = tmp_path / "scores.npy"
    path.write_bytes(OLD)
    return path


@pytest.mark.parametrize("failure", [RuntimeError("a bug in the writer"), KeyboardInterrupt()])
def test_a_failure_mid_write_keeps_the_old_file_and_no_temporary(target, failure):
    with pytest.raises(type(failure)):
        with outfile.atomic_output(target, "--output") as f:
            f.write(b"half of the new")
            f.flush()
            assert target.read_bytes() == OLD  # the old file is intact while the new one is written
            raise failure
    assert target.read_bytes() == OLD
    assert os.listdir(target.parent) == [target.name]


def test_an_interrupt_in_a_path_writer_removes_its_temporary(target):
    """Writers that take a path (paddle.save, np.save) get the temporary name."""
    with pytest.raises(KeyboardInterrupt):
        with outfile.atomic_path(target) as tmp:
            assert os.path.dirname(tmp) == str(target.parent) and tmp != str(target)
            with open(tmp, "wb") as f:
                f.write(b"torn")
            raise KeyboardInterrupt
    assert target.read_bytes() == OLD and os.listdir(target.parent) == [target.name]


def test_data_synced_before_the_rename_and_the_folder_after(target, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        events.append("fsync folder" if stat.S_ISDIR(os.fstat(fd).st_mode) else "fsync file")
        real_fsync(fd)

    def replace(src, dst):
        events.append("rename")
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    with outfile.atomic_file(target, "w", encoding="utf-8") as f:
        f.write("new")
    assert events == ["fsync file", "rename", "fsync folder"]
    assert target.read_text() == "new" and os.listdir(target.parent) == [target.name]


def test_a_full_disk_is_one_clear_error_and_keeps_the_old_file(target, monkeypatch):
    """A full disk simulated by monkeypatching: the sync of the written data fails with ENOSPC."""
    def no_space(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", no_space)
    with pytest.raises(ConfigError) as info:
        with outfile.atomic_output(target, "--output") as f:
            f.write(b"new")
    assert str(info.value) == f"--output {target}: cannot write (No space left on device); the file is left as it was"
    assert target.read_bytes() == OLD and os.listdir(target.parent) == [target.name]


def test_an_unwritable_folder_is_the_existing_clear_error(tmp_path):
    """Unwritable: a path under a regular file (ENOTDIR; chmod does not stop root)."""
    (tmp_path / "file").write_text("mine")
    path = tmp_path / "file" / "out.json"
    with pytest.raises(ConfigError) as info:
        with outfile.atomic_output(path, "--json") as f:
            f.write(b"{}")
    assert str(info.value) == f"--json {path}: cannot write (Not a directory); the file is left as it was"
    assert os.listdir(tmp_path) == ["file"] and (tmp_path / "file").read_text() == "mine"


def test_two_concurrent_writers_each_leave_one_whole_file(target):
    """Two threads share one pid, the harder case for unique names: both are inside their bodies
    at once (the barrier), writing in chunks; the result is always one writer's whole file."""
    size, chunk = 1 << 20, 1 << 16
    for _ in range(4):
        barrier = threading.Barrier(2)
        errors = []

        def write(byte, barrier=barrier, errors=errors):
            try:
                with outfile.atomic_file(target) as f:
                    for i in range(0, size, chunk):
                        f.write(byte * chunk)
                        if i == 0:
                            barrier.wait(timeout=10)
            except Exception as exc:  # reported below: a thread's exception is otherwise lost
                errors.append(exc)

        threads = [threading.Thread(target=write, args=(b,)) for b in (b"A", b"B")]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors
        data = target.read_bytes()
        assert data in (b"A" * size, b"B" * size), (len(data), data[:1], data[-1:])
        assert os.listdir(target.parent) == [target.name]


def test_temporary_names_are_unique_and_the_file_gets_the_usual_mode(tmp_path):
    path = tmp_path / "m.pdparams"
    with outfile.atomic_path(path) as one, outfile.atomic_path(path) as two:
        assert one != two
        assert os.path.basename(one).startswith(f"m.pdparams.tmp{os.getpid()}.")
    with open(tmp_path / "plain", "w"):
        pass
    assert stat.S_IMODE(os.stat(path).st_mode) == stat.S_IMODE(os.stat(tmp_path / "plain").st_mode)


def test_a_suffix_for_writers_that_add_their_own(tmp_path):
    """np.savez adds ".npz" to a name without it: the temporary name ends with the suffix asked."""
    path = tmp_path / "v.npz"
    with outfile.atomic_path(path, suffix=".npz") as tmp:
        assert tmp.endswith(".npz")
        np.savez(tmp, a=np.arange(3))
    assert os.listdir(tmp_path) == ["v.npz"]
    with np.load(path) as data:
        assert data["a"].tolist() == [0, 1, 2]


def test_stale_temporaries_of_dead_writers_are_found_in_both_name_forms(tmp_path):
    path = tmp_path / "Tiny_resume.pdckpt"
    dead = int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                              text=True).stdout)
    stale = [f"{path.name}.tmp{dead}", f"{path.name}.tmp{dead}.0123abcd"]
    kept = [f"{path.name}.tmp{os.getppid()}.0123abcd", f"{path.name}.tmp{dead}.npz", f"x.pdckpt.tmp{dead}"]
    for name in stale + kept:
        (tmp_path / name).write_bytes(b"partial")
    assert sorted(outfile.remove_stale_temporaries(path)) == sorted(stale)
    assert sorted(os.listdir(tmp_path)) == sorted(kept)
