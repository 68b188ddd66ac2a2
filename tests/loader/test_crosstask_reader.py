"""crosstask_release/ readers, the ground-truth grid and the seeded split, on hand-written files."""

import json

import numpy as np
import pytest

from paddlevideo.loader.steps.crosstask import (
    PRIMARY_TASKS,
    annotation_path,
    draw_split,
    read_annotation,
    read_split,
    read_tasks,
    read_videos,
    step_matrix,
    write_split,
)
from paddlevideo.utils.errors import DataError

TASKS_TXT = """16815
Jack Up a Car
http://www.wikihow.com/Jack-Up-a-Car
3
brake on,raise jack,lower jack

23521
Make Jello Shots
http://www.wikihow.com/Make-Jello-Shots
2
pour water, stir mixture
"""


def test_tasks_blocks_with_and_without_trailing_blank_line(tmp_path):
    (tmp_path / "t.txt").write_text(TASKS_TXT)
    tasks = read_tasks(tmp_path / "t.txt")
    assert list(tasks) == ["16815", "23521"]
    assert tasks["16815"].steps == ("brake on", "raise jack", "lower jack")
    assert tasks["23521"].steps == ("pour water", "stir mixture") and tasks["23521"].title == "Make Jello Shots"
    (tmp_path / "crlf.txt").write_text(TASKS_TXT.replace("\n", "\r\n") + "\r\n\r\n")
    assert read_tasks(tmp_path / "crlf.txt") == tasks


@pytest.mark.parametrize("text, needle", [
    (TASKS_TXT.replace("\n3\n", "\n4\n"), ":1: task 16815: says '4' steps but lists 3"),
    (TASKS_TXT.replace("\n2\n", "\ntwo\n"), ":7: task 23521: says 'two' steps"),
    (TASKS_TXT.replace("http://www.wikihow.com/Jack-Up-a-Car\n", ""), ":1: a task block has 5 lines"),
    (TASKS_TXT.replace("raise jack", ""), "non-empty"),
    (TASKS_TXT.replace("23521", "16815"), "task 16815 is listed twice"),
    ("\n\n", "no task blocks"),
])
def test_bad_task_lists_name_file_and_line(tmp_path, text, needle):
    (tmp_path / "tasks_primary.txt").write_text(text)
    with pytest.raises(DataError) as err:
        read_tasks(tmp_path / "tasks_primary.txt")
    assert "tasks_primary.txt" in str(err.value) and needle in str(err.value)


def test_video_list_keeps_commas_of_the_url(tmp_path):
    (tmp_path / "videos.csv").write_text("16815,abc,https://youtu.be/x?a=1,b=2\n\n23521,d-e_f,u\n")
    assert read_videos(tmp_path / "videos.csv") == [("16815", "abc", "https://youtu.be/x?a=1,b=2"),
                                                     ("23521", "d-e_f", "u")]
    (tmp_path / "bad.csv").write_text("16815,abc,u\n16815\n")
    with pytest.raises(DataError, match=r"bad\.csv:2: expected task,vid,url"):
        read_videos(tmp_path / "bad.csv")
    with pytest.raises(DataError, match="video list not found"):
        read_videos(tmp_path / "absent.csv")


def test_annotation_and_ground_truth_grid(tmp_path):
    path = tmp_path / "a.csv"
    # out of order, overlapping (steps 1 and 3 share second 4), step 2 twice, one beyond T.
    path.write_text("3,4.5,6.2\n1,1.2,4.1\n2,7,8\n2,9.5,9.5\n3,20,25\n")
    ann = read_annotation(path, 3)
    assert ann.shape == (5, 3) and ann[0].tolist() == [3, 4.5, 6.2]
    y = step_matrix(ann, 3, 10)
    assert y[:, 0].nonzero()[0].tolist() == [1, 2, 3, 4]          # [1.2, 4.1] -> seconds 1..4
    assert y[:, 1].nonzero()[0].tolist() == [7, 9]                # [7, 8] -> 7; [9.5, 9.5] -> 9
    assert y[:, 2].nonzero()[0].tolist() == [4, 5, 6]             # [4.5, 6.2] -> 4..6; [20, 25] cut
    assert step_matrix(read_annotation(path, 3), 3, 0).shape == (0, 3)
    (tmp_path / "e.csv").write_text("")
    assert read_annotation(tmp_path / "e.csv", 3).shape == (0, 3)


def test_half_second_zero_length_interval_is_one_second(tmp_path):
    (tmp_path / "a.csv").write_text("1,9.5,9.5\n")
    assert step_matrix(read_annotation(tmp_path / "a.csv", 1), 1, 12)[:, 0].nonzero()[0].tolist() == [9]


@pytest.mark.parametrize("line, needle", [
    ("4,1,2", "step 4 is not one of 1..3"), ("0,1,2", "step 0"), ("1.5,1,2", "step 1.5"),
    ("1,3,2", "0 <= start <= end"), ("1,-1,2", "0 <= start"), ("1,nan,2", "0 <= start"),
    ("1,1", "expected step,start,end"), ("a,1,2", "expected step,start,end"), ("1,1,2,3", "expected step"),
])
def test_bad_annotation_rows_name_file_and_line(tmp_path, line, needle):
    path = tmp_path / "16815_abc.csv"
    path.write_text(f"1,0,1\n{line}\n")
    with pytest.raises(DataError) as err:
        read_annotation(path, 3)
    assert "16815_abc.csv:2: " in str(err.value) and needle in str(err.value)


def release(root, per_task=5, tasks=("16815", "23521")):
    """A tiny crosstask_release/: ``per_task`` annotated videos per task, plus the cases the split drops."""
    (root / "annotations").mkdir(parents=True)
    (root / "tasks_primary.txt").write_text(TASKS_TXT)
    rows = []
    for task in tasks:
        for i in range(per_task):
            rows.append(f"{task},{task[:2]}v{i},u")
            (root / "annotations" / f"{task}_{task[:2]}v{i}.csv").write_text("1,0,1\n")
    rows += ["16815,val1,u", "16815,nofile,u", "99999,related,u"]
    (root / "annotations" / "16815_val1.csv").write_text("1,0,1\n")
    (root / "videos.csv").write_text("\n".join(rows) + "\n")
    (root / "videos_val.csv").write_text("16815,val1,u\n")
    return root


def test_split_drops_validation_and_unannotated_and_is_seeded(tmp_path):
    root = release(tmp_path / "crosstask_release")
    split = draw_split(root, seed=3, n_train=2, tasks=("16815", "23521"))
    assert split["dropped_validation"] == ["val1"] and split["no_annotation"] == ["16815_nofile"]
    for task in ("16815", "23521"):
        train, test = split["train"][task], split["test"][task]
        assert len(train) == 2 and len(test) == 3 and not set(train) & set(test)
        assert sorted(train + test) == [f"{task[:2]}v{i}" for i in range(5)]
    assert draw_split(root, seed=3, n_train=2, tasks=("16815", "23521")) == split
    other = [draw_split(root, seed=s, n_train=2, tasks=("16815", "23521"))["train"] for s in range(6)]
    assert len({json.dumps(t) for t in other}) > 1  # the seed matters
    assert split["seed"] == 3 and split["n_train"] == 2 and split["tasks"] == ["16815", "23521"]


def test_split_refuses_tasks_it_cannot_split(tmp_path):
    root = release(tmp_path / "r", per_task=2)
    with pytest.raises(DataError, match="task 16815 has 2 annotated videos outside videos_val.csv, not more than"):
        draw_split(root, n_train=2, tasks=("16815", "23521"))
    with pytest.raises(DataError, match=r"tasks_primary\.txt: no task 40567"):
        draw_split(root, n_train=1)  # the 18 primary tasks by default; this release has two
    assert len(PRIMARY_TASKS) == 18 and len(set(PRIMARY_TASKS)) == 18
    (root / "videos_val.csv").unlink()
    with pytest.raises(DataError, match=r"videos_val\.csv: video list not found"):
        draw_split(root, n_train=1, tasks=("16815",))


def test_split_file_round_trip_and_never_overwritten(tmp_path):
    split = draw_split(release(tmp_path / "r"), seed=0, n_train=2, tasks=("16815", "23521"))
    path = tmp_path / "split.json"
    write_split(split, path)
    assert read_split(path) == split
    write_split(split, path)  # the same split again: left as it is
    other = dict(split, seed=1)
    with pytest.raises(DataError, match="exists with another split"):
        write_split(other, path)
    assert read_split(path) == split
    with pytest.raises(DataError, match="cannot write the split"):  # under a regular file: ENOTDIR
        write_split(split, path / "x.json")
    (tmp_path / "bad.json").write_text('{"seed": 0}')
    with pytest.raises(DataError, match="a split file holds"):
        read_split(tmp_path / "bad.json")
    assert not list(tmp_path.glob("*.tmp*"))


def test_annotation_path(tmp_path):
    assert annotation_path("root", "16815", "abc").endswith("root/annotations/16815_abc.csv")
    assert np.array_equal(read_annotation(release(tmp_path / "r") / "annotations" / "16815_16v0.csv", 3),
                          [[1, 0, 1]])
