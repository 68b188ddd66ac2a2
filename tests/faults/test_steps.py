"""Fault injection for ``tools/make_demo_data.py --task coin|crosstask`` (in this process:
``main`` returns the exit status): zero, foreign, unwritable, concurrent (youcook2's too)."""

import pytest

from paddlevideo.utils.writer_lock import writer_lock
from tools.make_demo_data import main


def one_error_line(capsys):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ")
    return err[0]


@pytest.mark.parametrize("task", ["coin", "crosstask"])
def test_zero_videos_is_refused(task, tmp_path, capsys):
    assert main(["--task", task, "--out", str(tmp_path / "o"), "--num-videos", "0"]) == 2
    assert "--num-videos must be at least 1, got 0" in one_error_line(capsys)
    assert main(["--task", task, "--out", str(tmp_path / "o"), "--num-videos", "-3"]) == 2
    assert "got -3" in one_error_line(capsys)


def test_foreign_folder_is_left_intact(tmp_path, capsys):
    (tmp_path / "paper.tex").write_text("draft")
    assert main(["--task", "coin", "--out", str(tmp_path), "--num-videos", "3"]) == 2
    assert "not empty and not a coin demo corpus" in one_error_line(capsys)
    assert [p.name for p in tmp_path.iterdir()] == ["paper.tex"] and (tmp_path / "paper.tex").read_text() == "draft"


def test_unwritable_output(tmp_path, capsys):
    (tmp_path / "file").write_text("x")  # a path under a regular file: ENOTDIR
    assert main(["--task", "crosstask", "--out", str(tmp_path / "file" / "out"), "--num-videos", "2"]) == 2
    assert "cannot create the output folder" in one_error_line(capsys)


@pytest.mark.parametrize("task, written", [("coin", "COIN.json"), ("youcook2", "youcookii_annotations_trainval.json")])
def test_concurrent_writer_is_refused(task, written, tmp_path, capsys):
    out = tmp_path / "o"
    out.mkdir()
    with writer_lock(str(out), "demo corpus"):  # another writer holds the folder
        assert main(["--task", task, "--out", str(out), "--num-videos", "4"]) == 2
    assert "is being written by" in one_error_line(capsys)
    assert main(["--task", task, "--out", str(out), "--num-videos", "4", "--feature-dim", "4"]) == 0
    assert "wrote" in capsys.readouterr().out and (out / written).is_file()
