"""paddlevideo/extraction without models: inputs, subtitles, windows, the clip's region rule."""

import numpy as np
import pytest

from paddlevideo.extraction.frames import plan_clip
from paddlevideo.extraction.inputs import fixed_windows, list_videos, read_subtitles
from paddlevideo.extraction.regions import select_regions
from paddlevideo.utils.errors import ConfigError, DataError


def test_vtt_and_srt_cues(tmp_path):
    vtt = tmp_path / "a.vtt"
    vtt.write_text("WEBVTT\nKind: captions\n\n00:00:01.000 --> 00:00:02.500 position:0%\n<c>so</c> today\nwe cook\n\n"
                   "00:02.500 --> 00:04.000\n\n00:01:04.5 --> 00:01:05\npasta\n")
    cues = read_subtitles(vtt)
    assert [(c.start, c.end, c.caption) for c in cues] == [(1.0, 2.5, "so today we cook"), (64.5, 65.0, "pasta")]
    srt = tmp_path / "a.srt"
    srt.write_text("1\n00:00:00,000 --> 00:00:01,200\nhello there\n\n2\n01:00:00,000 --> 01:00:02,000\nbye\n")
    assert [(c.start, c.end) for c in read_subtitles(srt)] == [(0.0, 1.2), (3600.0, 3602.0)]


@pytest.mark.parametrize("body, message", [
    ("WEBVTT\n\n00:00.000 --> 00:0x.500\nhi\n", "a.vtt:3: broken timestamp '00:0x.500'"),
    ("WEBVTT\n\n00:02.000 --> 00:01.000\nhi\n", r"a.vtt:3: cue ends \(1.000 s\) before it starts"),
    ("WEBVTT\n\n00:00.000 --> 00:75.000\nhi\n", "broken timestamp '00:75.000'"),
    ("WEBVTT\n\n", "no subtitle cues"),
])
def test_broken_subtitles_name_file_and_line(tmp_path, body, message):
    (tmp_path / "a.vtt").write_text(body)
    with pytest.raises(DataError, match=message):
        read_subtitles(tmp_path / "a.vtt")


def test_inputs_csv_list_and_folder(tmp_path):
    (tmp_path / "sub").mkdir()
    for name in ("sub/b.mp4", "a.MKV", "notes.txt.bak"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "list.txt").write_text("# videos\nsub/b.mp4\n\n")
    (tmp_path / "clips.csv").write_text('video,start,end,caption\nsub/b.mp4,1,2.5,"cut, then fold"\na.MKV,,,all\n')
    jobs = list_videos([tmp_path / "clips.csv", tmp_path / "list.txt", tmp_path])
    assert [j.path for j in jobs] == [str(tmp_path / "sub/b.mp4"), str(tmp_path / "a.MKV")]
    assert [(c.start, c.end, c.caption) for c in jobs[0].clips] == [(1.0, 2.5, "cut, then fold")]
    assert jobs[1].clips[0].end == float("inf") and jobs[1].video_id == "a"
    with pytest.raises(ConfigError, match="input list not found"):
        list_videos([tmp_path / "gone.csv"])
    (tmp_path / "bad.csv").write_text("video,start,end,caption\nx.mp4,3,2,backwards\n")
    with pytest.raises(ConfigError, match=r"bad.csv:2: need 0 <= start < end"):
        list_videos([tmp_path / "bad.csv"])
    (tmp_path / "bad.csv").write_text("path,caption\nx.mp4,hi\n")
    with pytest.raises(ConfigError, match="expected the header 'video,start,end,caption'"):
        list_videos([tmp_path / "bad.csv"])


def test_fixed_windows_and_action_windows():
    assert [(c.start, c.end) for c in fixed_windows(25, 10)] == [(0, 10), (10, 20), (20, 25)]
    assert [(c.start, c.end) for c in fixed_windows(10.5, 10)] == [(0, 10)]  # a 0.5 s tail is dropped
    assert [(c.start, c.end) for c in fixed_windows(0.6, 10)] == [(0, 0.6)]  # a short video is one clip
    clip = fixed_windows(10, 10)[0]
    plan = plan_clip(clip, fps=30, region_frames=3, max_actions=5)  # 300 frames -> 5 windows of 16
    assert plan.region_times == pytest.approx([10 / 6, 5, 50 / 6])
    assert len(plan.window_times) == 5 and all(len(w) == 16 for w in plan.window_times)
    assert plan.window_times[0][1] - plan.window_times[0][0] == pytest.approx(1 / 30)
    assert np.mean(plan.window_times[2]) == pytest.approx(5.0, abs=1 / 30)  # centred in its fifth
    assert len(plan_clip(fixed_windows(1, 10)[0], 30, 3, 5).window_times) == 1  # 30 frames -> 1 window


def detections(boxes, classes, scores, dim=4, first=0):
    n = len(boxes)
    prob = np.full((n, 1601), 1e-4, np.float32)
    prob[np.arange(n), classes] = scores
    features = np.arange(first, first + n, dtype=np.float32)[:, None].repeat(dim, 1)
    return {"boxes": np.array(boxes, np.float32).reshape(n, 4), "features": features, "cls_prob": prob}


def test_clip_regions_merge_the_same_object_across_frames():
    frame1 = detections([[0, 0, 10, 10], [50, 50, 60, 60]], classes=[3, 7], scores=[0.9, 0.5])
    frame2 = detections([[1, 1, 11, 11], [0, 0, 10, 10], [0, 0, 9, 9]], classes=[3, 4, 1600], scores=[0.8, 0.7, 0.99],
                        first=2)
    boxes, feats, probs = select_regions([frame1, frame2], max_boxes=36)
    # the moved box of class 3 in frame 2 repeats frame 1's (IoU 0.68 > 0.5): dropped; class 4 on the
    # same spot is another object: kept; the background-scored box ranks by its best object class
    assert boxes.tolist() == [[0, 0, 10, 10], [0, 0, 10, 10], [50, 50, 60, 60], [0, 0, 9, 9]]
    assert feats[:, 0].tolist() == [0, 3, 1, 4] and probs.shape == (4, 1601)
    assert probs.argmax(1).tolist() == [3, 4, 7, 1600]
    assert len(select_regions([frame1, frame2], max_boxes=2)[0]) == 2
    empty = detections([], [], [])
    assert select_regions([empty, empty])[0].shape == (0, 4)


def imported_modules(folder):
    """{file: [module names it imports, relative ones with their leading dots]} of a package folder."""
    import ast

    found = {}
    for path in sorted(folder.glob("*.py")):
        names = []
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names += [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names.append("." * node.level + (node.module or ""))
        found[path.name] = names
    return found


def test_extraction_imports_nothing_from_tools_and_extractors_nothing_from_the_loader():
    from pathlib import Path

    package = Path(__file__).resolve().parents[2] / "paddlevideo"
    for name, modules in imported_modules(package / "extraction").items():
        assert not [m for m in modules if m.split(".")[0] in ("tools", "argparse")], (name, modules)
    for name, modules in imported_modules(package / "modeling" / "extractors").items():
        assert not [m for m in modules if "loader" in m], (name, modules)  # the data pipeline is a layer above
