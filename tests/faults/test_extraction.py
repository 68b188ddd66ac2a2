"""Hostile input to tools/extract_features.py (issue 17): every case ends in one ``error: ...``
line with exit status 2, a logged per-video skip naming the file, or a documented choice.

The extractions use the smoke path's tiny random-init models (``--smoke``, or saved as weight
files where the files matter) on videos of one or two seconds at 15 fps, so each run is a
fraction of a second of model time.
"""

import errno
import json
import multiprocessing
import os
import re
from pathlib import Path

import av
import lmdb
import numpy as np
import paddle
import pytest

from paddlevideo.extraction.frames import finish_windows, plan_clip
from paddlevideo.extraction.inputs import ClipSpec, VideoJob, fixed_windows, read_subtitles
from paddlevideo.extraction.pipeline import ExtractionSettings, Extractor
from paddlevideo.extraction.smoke import save_tiny_extractors
from paddlevideo.loader.store import PretrainStore, StoreWriter, verify_store
from paddlevideo.loader.store.synthetic import write_video
from paddlevideo.modeling.extractors.resnet3d import ResNet3D
from paddlevideo.utils.errors import ConfigError, DataError
from paddlevideo.utils.writer_lock import BusyError, writer_lock
from tools import extract_features


def hold_writer_lock(out, ready, release):
    with writer_lock(out, "extraction output"):
        ready.set()
        release.wait(30)


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """The tiny extractors as weight files: (detector .pdparams, action .pdparams)."""
    return save_tiny_extractors(tmp_path_factory.mktemp("weights"))


@pytest.fixture()
def video(tmp_path):
    """One 1.2 s video with one caption (a .vtt beside it)."""
    (tmp_path / "videos").mkdir()
    path = write_video(tmp_path / "videos" / "one.mp4", seconds=1.2, fps=15, seed=1)
    Path(path).with_suffix(".vtt").write_text("WEBVTT\n\n00:00.000 --> 00:01.100\nstir the soup\n")
    return path


def extract(capsys, *argv):
    """(exit status, stderr + stdout) of the command line run in this process."""
    status = extract_features.main([str(a) for a in argv])
    out = capsys.readouterr()
    return status, out.err + out.out


def assert_one_line_error(status, log, *expected):
    errors = [line for line in log.splitlines() if line.startswith("error: ")]
    assert status == 2 and len(errors) == 1 and "Traceback" not in log, log
    for text in expected:
        assert text in errors[0], (text, errors[0])


def queries(out):
    return (Path(out) / "msrvtt_queries.csv").read_text().splitlines()


# ------------------------------------------------------------------ flags


@pytest.mark.parametrize("flags, expected", [
    (["--window", "0"], "--window must be at least 1 second"),  # looped forever before
    (["--window", "-1"], "--window must be at least 1 second"),  # looped forever before
    (["--window", "nan"], "got nan"),  # marked every video failed before
    (["--window", "inf"], "got inf"),
    (["--region_frames", "0"], "--region_frames must be a whole number >= 1"),
    (["--batch_size", "0"], "--batch_size must be a whole number >= 1"),
    (["--detector_batch", "0"], "--detector_batch must be a whole number >= 1"),
    (["--max_boxes", "0"], "--max_boxes must be a whole number >= 1"),  # accepted before
    (["--max_actions", "0"], "--max_actions must be a whole number >= 1"),  # accepted before
    (["--merge_iou", "-1"], "--merge_iou must be an IoU between 0 and 1"),  # accepted before
    (["--merge_iou", "nan"], "--merge_iou must be an IoU between 0 and 1"),
    (["--subtitle_encoding", "klingon"], "unknown encoding 'klingon'"),
    (["--action_config", "[50]"], "--action_config must be a JSON object"),
    (["--action_config", "{depth"], "--action_config is not JSON"),
])
def test_bad_flags_stop_the_run_with_one_line(tmp_path, video, capsys, flags, expected):
    status, log = extract(capsys, video, "--out", tmp_path / "out", "--smoke", "--no_progress", *flags)
    assert_one_line_error(status, log, expected)
    assert not (tmp_path / "out").exists()  # refused before anything is written


def test_weights_required_unless_smoke(tmp_path, video, capsys):
    status, log = extract(capsys, video, "--out", tmp_path / "out")
    assert_one_line_error(status, log, "--detector_weights and --action_weights are required (or --smoke")


def test_unknown_action_config_key_and_bad_value(tmp_path, video, weights, capsys):
    det, act = weights
    base = [video, "--out", tmp_path / "out", "--detector_weights", det, "--action_weights", act]
    status, log = extract(capsys, *base, "--action_config", '{"depht": 50}')
    assert_one_line_error(status, log, "--action_config: unknown key 'depht' for resnet3d", "depth")
    status, log = extract(capsys, *base, "--action_config", '{"widen_factor": "wide"}')
    assert_one_line_error(status, log, "--action_config {\"widen_factor\": \"wide\"}")


def test_missing_detector_weights_named_not_its_config(tmp_path, video, weights, capsys):
    _, act = weights
    gone = tmp_path / "frcnn_vg.pdparams"
    status, log = extract(capsys, video, "--out", tmp_path / "out", "--detector_weights", gone, "--action_weights", act)
    assert_one_line_error(status, log, f"detector weights not found: {gone}")
    assert "config" not in log.split("error: ")[1].split("(")[0]


def test_fixed_windows_refuse_a_window_that_never_advances():
    for window in (0, -1, float("nan")):
        with pytest.raises(ConfigError, match="--window must be a positive number"):
            fixed_windows(10, window)


# ------------------------------------------------------------------ the output folder


@pytest.mark.parametrize("where, expected", [
    ("under_file", "cannot create the output folder (Not a directory)"),  # a path under a regular file: ENOTDIR
    ("file", "cannot create the output folder (File exists)"),  # --out names a regular file
    ("proc", "cannot create the output folder"),  # a folder under /proc cannot be made, even by root
    ("proc_itself", "cannot create the writer lock"),  # an existing folder nobody can write in
])
def test_unwritable_out_is_one_line(tmp_path, video, capsys, where, expected):
    (tmp_path / "file").write_text("keep me")
    out = {"under_file": tmp_path / "file" / "out", "file": tmp_path / "file", "proc": Path("/proc/actbert_out"),
           "proc_itself": Path("/proc")}[where]
    status, log = extract(capsys, video, "--out", out, "--smoke", "--no_progress")
    assert_one_line_error(status, log, expected)
    assert (tmp_path / "file").read_text() == "keep me"


@pytest.mark.parametrize("layout, expected", [
    ({"msrvtt_queries.csv": "my own notes"}, "holds msrvtt_queries.csv but no progress.lmdb"),
    ({"msrvtt.lmdb": "a file"}, "msrvtt.lmdb is a file but extraction writes a folder there"),
    ({"progress.lmdb/data.mdb": "not an lmdb"}, "progress.lmdb: not a readable progress record"),
    ({"shard-00000/data.mdb": "a converted store"}, "is a store or an LMDB (it holds shard-00000)"),
    ({"data.mdb": "an MSR-VTT LMDB"}, "is a store or an LMDB (it holds data.mdb)"),
])
def test_foreign_output_layout_is_refused_and_left_alone(tmp_path, video, capsys, layout, expected):
    out = tmp_path / "out"
    for name, text in layout.items():
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_text(text)
    status, log = extract(capsys, video, "--out", out, "--smoke", "--no_progress")
    assert_one_line_error(status, log, expected)
    assert all((out / name).read_text() == text for name, text in layout.items())


def test_a_store_of_other_widths_stops_the_run_not_every_video(tmp_path, video, weights, capsys):
    # An earlier output (no extraction.json, as before it was recorded) whose store holds 64-d
    # actions; an action model of another width must stop the run, not fail each video.
    out = tmp_path / "out"
    status, _ = extract(capsys, video, "--out", out, "--smoke", "--no_progress")
    assert status == 0
    (out / "extraction.json").unlink()
    det, _ = weights
    paddle.seed(1)
    wide = tmp_path / "r3d10_wide.pdparams"
    paddle.save(ResNet3D(depth=10, widen_factor=0.25, conv1_t_size=3).state_dict(), str(wide))
    other = write_video(tmp_path / "videos" / "two.mp4", seconds=1.2, fps=15, seed=2)
    Path(other).with_suffix(".vtt").write_text("WEBVTT\n\n00:00.000 --> 00:01.100\nadd salt\n")
    status, log = extract(capsys, other, "--out", out, "--detector_weights", det, "--action_weights", wide,
                          "--no_progress")
    assert_one_line_error(status, log, "the store holds action_feature of width 64, this extraction makes 128")
    assert "skipping video" not in log
    assert verify_store(out / "store")["clips"] == 1


def test_another_models_features_are_not_mixed_into_an_output(tmp_path, video, weights, capsys):
    out = tmp_path / "out"
    assert extract(capsys, video, "--out", out, "--smoke", "--no_progress")[0] == 0
    recorded = json.loads((out / "extraction.json").read_text())
    det, act = weights
    status, log = extract(capsys, video, "--out", out, "--detector_weights", det, "--action_weights", act,
                          "--no_progress", "--retry_failed")
    assert_one_line_error(status, log, "holds features made by the --smoke tiny random-init extractors",
                          "this run uses action_weights r3d10_tiny.pdparams (sha256 ")
    assert json.loads((out / "extraction.json").read_text()) == recorded


# ------------------------------------------------------------------ two writers, two spellings


def test_second_extraction_into_one_out_is_refused(tmp_path, video, capsys, monkeypatch):
    out = tmp_path / "out"
    out.mkdir()
    # another process holds out/'s writer lock, as a running extraction does (forked: no imports)
    fork = multiprocessing.get_context("fork")
    ready, release = fork.Event(), fork.Event()
    holder = fork.Process(target=hold_writer_lock, args=(str(out), ready, release))
    holder.start()
    try:
        assert ready.wait(30)
        status, log = extract(capsys, video, "--out", out, "--smoke", "--no_progress")
    finally:
        release.set()
        holder.join(30)
    assert_one_line_error(status, log, f"extraction output {out} is being written by pid {holder.pid}")
    assert sorted(p.name for p in out.iterdir()) == [".writer.lock"]

    held = []  # the lock is held while the videos are extracted, not only at the start

    def video_while_locked(self, job):
        with pytest.raises(BusyError):
            with writer_lock(out, "extraction output"):
                pass
        held.append(job.path)
        return original(self, job)

    original = Extractor.video
    monkeypatch.setattr(Extractor, "video", video_while_locked)
    status, log = extract(capsys, video, "--out", out, "--smoke", "--no_progress")
    assert status == 0 and held == [str(video)], log


def test_same_file_name_in_two_folders_and_one_video_under_four_spellings(tmp_path, capsys, monkeypatch):
    videos = tmp_path / "videos"
    for folder, seed in (("a", 1), ("b", 2)):
        (videos / folder).mkdir(parents=True)
        write_video(videos / folder / "clip.mp4", seconds=1.2, fps=15, seed=seed)
    (videos / "clips.csv").write_text("video,start,end,caption\na/clip.mp4,,,the first\nb/clip.mp4,,,the second\n")
    os.symlink(videos / "a" / "clip.mp4", tmp_path / "link.mp4")
    monkeypatch.chdir(tmp_path)
    spellings = [videos / "a" / "clip.mp4", "videos/a/clip.mp4", "./videos/a/../a/clip.mp4", tmp_path / "link.mp4"]
    out = tmp_path / "out"
    status, log = extract(capsys, videos / "clips.csv", *spellings, "--out", out, "--smoke", "--no_progress")
    assert status == 0 and "2 video(s) extracted (2 clips" in log, log
    rows = dict(row.split(",", 1) for row in queries(out))
    assert rows["clip"] == "the first" and len(rows) == 2  # b's clip did not overwrite a's
    other = next(k for k in rows if k != "clip")
    assert rows[other] == "the second" and other.startswith("clip-") and len(other) == len("clip-") + 8
    assert verify_store(out / "store")["clips"] == 2
    # a rerun naming b alone keeps b's id (recorded); a third clip.mp4 gets a third id
    (videos / "c").mkdir()
    write_video(videos / "c" / "clip.mp4", seconds=1.2, fps=15, seed=3)
    (videos / "more.csv").write_text("video,start,end,caption\nc/clip.mp4,,,the third\nb/clip.mp4,,,the second\n")
    status, log = extract(capsys, videos / "more.csv", "--out", out, "--smoke", "--no_progress")
    assert status == 0 and "1 video(s) extracted" in log and "1 already finished" in log, log
    ids = [row.split(",", 1)[0] for row in queries(out)]
    assert len(ids) == len(set(ids)) == 3 and other in ids


# ------------------------------------------------------------------ writing


def test_disk_full_stops_with_one_line_and_a_rerun_resumes(tmp_path, video, capsys, monkeypatch):
    # The full disk is simulated: the store's commit raises ENOSPC, as a write to a full disk does.
    second = write_video(tmp_path / "videos" / "two.mp4", seconds=1.2, fps=15, seed=2)
    Path(second).with_suffix(".vtt").write_text("WEBVTT\n\n00:00.000 --> 00:01.100\nadd salt\n")
    out = tmp_path / "out"

    def full(self):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(StoreWriter, "commit", full)
    status, log = extract(capsys, video, second, "--out", out, "--smoke", "--no_progress")
    assert_one_line_error(status, log, f"--out {out}: writing failed (No space left on device)")
    monkeypatch.undo()
    status, log = extract(capsys, video, second, "--out", out, "--smoke", "--no_progress")
    assert status == 0 and "2 video(s) extracted" in log, log
    report = verify_store(out / "store")
    assert report["clips"] == 2 and report["complete"] is True  # marked finished: --verify and training agree


def test_store_is_marked_finished_only_when_every_video_is(tmp_path, video, capsys, monkeypatch):
    second = write_video(tmp_path / "videos" / "two.mp4", seconds=1.2, fps=15, seed=2)
    Path(second).with_suffix(".vtt").write_text("WEBVTT\n\n00:00.000 --> 00:01.100\nadd salt\n")
    out = tmp_path / "out"
    original, calls = Extractor.video, []

    def stopped_at_the_second_video(self, job):
        calls.append(job.path)
        if len(calls) == 2:
            raise KeyboardInterrupt  # the run is stopped (Ctrl-C) with one video written
        return original(self, job)

    monkeypatch.setattr(Extractor, "video", stopped_at_the_second_video)
    with pytest.raises(KeyboardInterrupt):
        extract(capsys, video, second, "--out", out, "--smoke", "--no_progress")
    report = verify_store(out / "store")
    assert report["clips"] == 1 and report["complete"] is False
    monkeypatch.undo()
    assert extract(capsys, video, second, "--out", out, "--smoke", "--no_progress")[0] == 0
    report = verify_store(out / "store")
    assert report["clips"] == 2 and report["complete"] is True


# ------------------------------------------------------------------ videos and subtitles


def faststart_cut_in_half(source, target):
    """``source`` remuxed with its index first (faststart), cut at the packet halfway through:
    the header still declares the whole duration, the decoder meets a clean end of file."""
    with av.open(str(source)) as src, av.open(str(target), "w", options={"movflags": "faststart"}) as dst:
        stream = dst.add_stream_from_template(src.streams.video[0])
        for packet in src.demux(src.streams.video[0]):
            if packet.dts is not None:
                packet.stream = stream
                dst.mux(packet)
    with av.open(str(target)) as container:
        starts = [p.pos for p in container.demux(video=0) if p.pos is not None and p.pos > 0]
    data = Path(target).read_bytes()
    Path(target).write_bytes(data[:starts[len(starts) // 2]])
    return target


def test_truncated_faststart_video_is_marked_failed_by_name(tmp_path, capsys):
    whole = write_video(tmp_path / "whole.mp4", seconds=3, fps=15, seed=1)
    cut = faststart_cut_in_half(whole, tmp_path / "cut.mp4")
    out = tmp_path / "out"
    status, log = extract(capsys, cut, "--out", out, "--smoke", "--no_progress", "--window", "1")
    assert status == 0 and re.search(rf"skipping video: {re.escape(str(cut))}: truncated: its frames end at "
                                     r"1\.\d\d s of the 3\.00 s its header declares", log), log
    assert "0 video(s) extracted" in log


def test_action_windows_stay_inside_their_clip_and_are_loop_padded():
    # 0.3 s at 30 fps: 9 frames, fewer than a window's 16; the README says loop-padded
    plan = plan_clip(ClipSpec(1.0, 1.3), fps=30, region_frames=3, max_actions=5)
    (times,) = plan.window_times
    assert len(times) == 9 and min(times) >= 1.0 and max(times) < 1.3
    plan.region = [np.zeros((2, 2, 3), np.uint8)] * 3
    plan.windows = [[np.full((2, 2, 3), k, np.uint8) for k in range(9)] + [None] * 7]
    assert finish_windows(plan)
    assert [int(f[0, 0, 0]) for f in plan.windows[0]] == list(range(9)) + list(range(7))
    # windows of a long clip end with it, none reads past its end
    for fps in (15, 24, 29.97, 30):
        spec = ClipSpec(2.0, 4.1)
        for times in plan_clip(spec, fps, 3, 5).window_times:
            assert spec.start <= min(times) and max(times) < spec.end and len(times) == 16


def test_latin1_subtitles_are_an_error_naming_the_file_or_read_with_their_encoding(tmp_path):
    # Documented choice: UTF-8 by default; other bytes are never replaced silently (U+FFFD before)
    vtt = tmp_path / "a.vtt"
    vtt.write_bytes("WEBVTT\n\n00:00.000 --> 00:01.000\nun café crème\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"a.vtt:4: not valid utf-8 \(byte 0xe9\); give the file's encoding with "
                                        r"--subtitle_encoding"):
        read_subtitles(vtt)
    assert read_subtitles(vtt, "latin-1")[0].caption == "un café crème"
    vtt.write_bytes("\ufeffWEBVTT\n\n00:00.000 --> 00:01.000\nun café crème\n".encode("utf-8"))
    assert read_subtitles(vtt)[0].caption == "un café crème"


def test_cues_of_one_clip_id_keep_all_their_captions(tmp_path, capsys):
    path = write_video(tmp_path / "talk.mp4", seconds=2, fps=15, seed=1)
    (tmp_path / "talk.vtt").write_text("WEBVTT\n\n00:00.000 --> 00:01.000\nfirst speaker\n\n"
                                       "00:00.000 --> 00:01.000\nsecond speaker\n\n"
                                       "00:00.001 --> 00:01.004\nthird, 1 ms later\n\n"
                                       "00:01.000 --> 00:02.000\nanother clip\n")
    settings = ExtractionSettings(inputs=[path], out="-", detector_weights="-", action_weights="-")
    specs = Extractor(None, None, settings).clip_specs(VideoJob(str(path)), duration=2.0)
    assert [(s.clip_id, s.captions) for s in specs] == [
        ("talk_0.00_1.00", ["first speaker", "second speaker", "third, 1 ms later"]),
        ("talk_1.00_2.00", ["another clip"])]
    out = tmp_path / "out"
    status, log = extract(capsys, path, "--out", out, "--smoke", "--no_progress")
    assert status == 0, log
    assert len(queries(out)) == 4 and queries(out)[2] == "talk_0.00_1.00,\"third, 1 ms later\""
    store = PretrainStore(out / "store")
    assert sorted(len(store.get(i).captions) for i in range(len(store))) == [1, 3]
    store.close()


def test_progress_records_video_ids(tmp_path, video, capsys):
    out = tmp_path / "out"
    assert extract(capsys, video, "--out", out, "--smoke", "--no_progress")[0] == 0
    env = lmdb.open(str(out / "progress.lmdb"), readonly=True, lock=False)
    with env.begin() as txn:
        entries = {k.decode(): json.loads(v) for k, v in txn.cursor()}
    env.close()
    assert entries == {os.path.realpath(video): {"status": "done", "clips": 1, "stored": 1, "video_id": "one",
                                                  "queries": [["one_0.00_1.10", "stir the soup"]]}}
