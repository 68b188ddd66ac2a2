"""Hostile input to ``tools/extract_features.py --per_second`` (issue 20): bad flags, an output
of the other mode, an unwritable output, a full disk, a second writer, truncated and
unusable videos. Tiny random-init extractors (``--smoke``) on videos of about a second."""

import errno
import multiprocessing
import os
import re

import numpy as np
import pytest
from test_extraction import assert_one_line_error, extract, faststart_cut_in_half, hold_writer_lock

from paddlevideo.loader.steps.seconds import read_seconds
from paddlevideo.loader.store.synthetic import write_video

SMOKE = ("--smoke", "--no_progress", "--per_second")


@pytest.fixture()
def video(tmp_path):
    (tmp_path / "videos").mkdir()
    return write_video(tmp_path / "videos" / "abcdefghijk.mp4", seconds=1.2, fps=15, seed=1)


@pytest.mark.parametrize("value", ["0", "-2"])
def test_boxes_per_second_below_one(tmp_path, video, capsys, value):
    status, log = extract(capsys, video, "--out", tmp_path / "out", *SMOKE, "--boxes_per_second", value)
    assert_one_line_error(status, log, f"--boxes_per_second must be a whole number >= 1, got {value}")


def test_npy_is_a_clip_output(tmp_path, video, capsys):
    status, log = extract(capsys, video, "--out", tmp_path / "out", *SMOKE, "--npy")
    assert_one_line_error(status, log, "--npy writes clips", "--per_second writes per-second records")
    assert not (tmp_path / "out").exists()


def test_modes_are_never_mixed_in_one_output(tmp_path, video, capsys):
    clips, seconds = tmp_path / "clips", tmp_path / "seconds"
    assert extract(capsys, video, "--out", clips, "--smoke", "--no_progress")[0] == 0
    status, log = extract(capsys, video, "--out", clips, *SMOKE)
    assert_one_line_error(status, log, f"--out {clips} holds features made by the --smoke tiny random-init "
                                       "extractors in clip mode; this run uses", "in per-second mode")
    assert not (clips / "seconds").exists()
    assert extract(capsys, video, "--out", seconds, *SMOKE)[0] == 0
    status, log = extract(capsys, video, "--out", seconds, *SMOKE, "--boxes_per_second", "3")
    assert_one_line_error(status, log, "per-second mode (7 boxes per second); this run uses", "(3 boxes per second)")
    status, log = extract(capsys, video, "--out", seconds, "--smoke", "--no_progress")
    assert_one_line_error(status, log, "in per-second mode", "in clip mode")


def test_out_under_a_regular_file(tmp_path, video, capsys):
    # "unwritable": a path under a regular file (ENOTDIR), since root can write anywhere
    (tmp_path / "file").write_text("x")
    status, log = extract(capsys, video, "--out", tmp_path / "file" / "out", *SMOKE)
    assert_one_line_error(status, log, "cannot create the output folder")


def test_a_foreign_seconds_file_stops_the_run(tmp_path, video, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "seconds").write_text("not a folder")
    status, log = extract(capsys, video, "--out", out, *SMOKE)
    assert_one_line_error(status, log, "seconds is a file but extraction writes a folder there")
    assert (out / "seconds").read_text() == "not a folder"


def test_disk_full_leaves_no_partial_record_and_a_rerun_resumes(tmp_path, video, capsys, monkeypatch):
    # The full disk is simulated: np.savez raises ENOSPC after writing part of its file.
    out = tmp_path / "out"
    second = write_video(tmp_path / "videos" / "lmnopqrstuv.mp4", seconds=2.2, fps=15, seed=2)
    real_savez = np.savez

    def full(path, **arrays):
        with open(path, "wb") as f:
            f.write(b"PK\x03\x04 half")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(np, "savez", full)
    status, log = extract(capsys, video, second, "--out", out, *SMOKE)
    assert_one_line_error(status, log, f"--out {out}: writing failed (No space left on device)")
    assert list((out / "seconds").iterdir()) == []  # the partial temporary file is removed
    monkeypatch.setattr(np, "savez", real_savez)
    status, log = extract(capsys, video, second, "--out", out, *SMOKE)
    assert status == 0 and "2 video(s) extracted (5 seconds" in log, log
    assert len(read_seconds(out / "seconds" / "lmnopqrstuv.npz")["action"]) == 3
    status, log = extract(capsys, video, second, "--out", out, *SMOKE)
    assert status == 0 and "0 video(s) extracted" in log and "2 already finished" in log, log


def test_second_writer_is_refused(tmp_path, video, capsys):
    out = tmp_path / "out"
    out.mkdir()
    fork = multiprocessing.get_context("fork")  # forked: no second interpreter start-up
    ready, release = fork.Event(), fork.Event()
    holder = fork.Process(target=hold_writer_lock, args=(str(out), ready, release))
    holder.start()
    try:
        assert ready.wait(30)
        status, log = extract(capsys, video, "--out", out, *SMOKE)
    finally:
        release.set()
        holder.join(30)
    assert_one_line_error(status, log, f"extraction output {out} is being written by pid {holder.pid}")


def test_truncated_and_unusable_videos_are_skipped_by_name(tmp_path, capsys):
    whole = write_video(tmp_path / "whole.mp4", seconds=3, fps=15, seed=1)
    cut = faststart_cut_in_half(whole, tmp_path / "cut.mp4")
    (tmp_path / "empty.mp4").write_bytes(b"")
    still = write_video(tmp_path / "still.mp4", seconds=0, seed=4)
    out = tmp_path / "out"
    status, log = extract(capsys, cut, tmp_path / "empty.mp4", still, "--out", out, *SMOKE)
    assert status == 0 and "0 video(s) extracted" in log and "3 skipped as unusable" in log, log
    assert re.search(rf"skipping video: {re.escape(str(cut))}: truncated: its frames end at", log), log
    assert f"{tmp_path / 'empty.mp4'}: empty file" in log and f"{still}: a single frame" in log
    assert not (out / "seconds").exists() or list((out / "seconds").iterdir()) == []
