"""Raw videos -> tools/extract_features.py (tiny random extractors) -> store + MSR-VTT LMDB -> main.py.

The test writes its own short videos of moving squares: one with a .vtt beside it, two
through a ``video,start,end,caption`` CSV (one segment past the end), and four unusable
ones (not a video, 0 bytes, a single frame, a broken subtitle file).
"""

import json
import os
import shlex
from pathlib import Path

import lmdb
import numpy as np
import pytest

import main
from paddlevideo.extraction.smoke import SMOKE_FEATURE_DIM, SMOKE_LABEL
from paddlevideo.loader.dataset.msrvtt_dataset import MSRVTTDataset
from paddlevideo.loader.store import PretrainStore, verify_store
from paddlevideo.loader.store.synthetic import write_video
from paddlevideo.utils.config import get_config
from tools import extract_features

ROOT = Path(__file__).resolve().parents[2]
FEATURE_DIM = SMOKE_FEATURE_DIM


def make_videos(folder):
    folder.mkdir()
    write_video(folder / "cook.mp4", seconds=3, fps=30, seed=1)
    (folder / "cook.vtt").write_text("WEBVTT\n\n00:00.000 --> 00:01.500\nstir the <c>soup</c>\n\n"
                                     "00:01.500 --> 00:02.900 align:start\nadd salt\nand pepper\n")
    write_video(folder / "walk.mp4", seconds=2, fps=30, seed=2)
    write_video(folder / "jump.mp4", seconds=3.5, fps=30, seed=3, width=144, height=112)
    (folder / "clips.csv").write_text("video,start,end,caption\nwalk.mp4,0,1.2,\"a square walks, slowly\"\n"
                                      "walk.mp4,5,6,past the end\njump.mp4,,,a blue square jumps\n")
    (folder / "notvideo.mp4").write_text("this is not a video")
    (folder / "empty.mp4").write_bytes(b"")
    write_video(folder / "still.mp4", seconds=0, seed=4)
    write_video(folder / "broken.mp4", seconds=1, seed=5)
    (folder / "broken.srt").write_text("1\n00:00:00,000 --> 00:00:0x,500\nhello\n")
    bad = ["notvideo.mp4", "empty.mp4", "still.mp4", "broken.mp4"]
    (folder / "bad.txt").write_text("\n".join(bad) + "\n")
    return [str(folder / "cook.mp4"), str(folder / "clips.csv"), str(folder / "bad.txt")]


def readme_blocks(section="## Your own videos"):
    """The command blocks of a README section: [[argv, ...], ...], continuation lines joined."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    body = text.split(section + "\n", 1)[1].split("\n## ", 1)[0]
    blocks = []
    for block in body.split("```")[1::2]:
        lines = [line for line in block.replace("\\\n", " ").splitlines() if line.strip()]
        blocks.append([shlex.split(line, comments=True) for line in lines if not line.lstrip().startswith("#")])
    return blocks


def smoke_commands():
    """The README's --smoke block: (extract argv, train argv, test argv) after ``python tool``."""
    block = next(b for b in readme_blocks() if any("--smoke" in argv for argv in b))
    assert [argv[1] for argv in block] == ["tools/extract_features.py", "main.py", "main.py"], block
    return [argv[2:] for argv in block]


@pytest.fixture(scope="module")
def extracted(tmp_path_factory):
    """The README's smoke commands, run in a folder laid out as they expect: ``my_videos/`` is
    this test's inputs, ``data/howto100m/vocab.txt`` bert-base-uncased's vocabulary."""
    tmp = tmp_path_factory.mktemp("extract")
    inputs = make_videos(tmp / "videos")
    extract, train, test = smoke_commands()
    assert extract[0] == "my_videos/"
    extract = [*inputs, *extract[1:], "--batch_size", "3", "--npy"]  # + the .npy, and odd action batches
    configs = [str(ROOT / a) if a.startswith("configs/") else a for a in train], \
        [str(ROOT / a) if a.startswith("configs/") else a for a in test]
    return tmp, extract, configs


def run_extract(argv, capsys):
    status = extract_features.main(argv)
    out = capsys.readouterr()
    return status, out.out + out.err


def test_readme_smoke_commands_extract_then_rerun_then_train_and_test(extracted, capsys, vocab_file, monkeypatch):
    tmp, argv, (train_argv, test_argv) = extracted
    monkeypatch.chdir(tmp)
    (tmp / "data" / "howto100m").mkdir(parents=True)
    os.symlink(vocab_file, tmp / "data" / "howto100m" / "vocab.txt")
    status, log = run_extract(argv, capsys)
    assert status == 0, log
    out = tmp / "data" / "smoke"
    assert log.count("SMOKE RUN: tiny random-init extractors, features are meaningless") == 2  # start and end
    assert json.loads((out / "extraction.json").read_text())["models"] == {"smoke": SMOKE_LABEL}

    # every unusable input is a logged skip naming the file and the problem
    for expected in ("notvideo.mp4: not a readable video", "empty.mp4: empty file (0 bytes)",
                     "still.mp4: a single frame", "broken.srt:2: broken timestamp '00:00:0x,500'",
                     "segment 5.00-6.00 s starts past the end"):
        assert expected in log, expected
    assert "3 video(s) extracted (4 clips" in log and "4 skipped as unusable" in log

    # the store: the four captioned clips, checked by the store's own verify pass, marked finished
    report = verify_store(out / "store")
    assert report["clips"] == 4 and report["complete"] is True
    store = PretrainStore(out / "store")
    clips = {c.clip_id: c for c in (store.get(i) for i in range(len(store)))}
    store.close()
    assert set(clips) == {"cook_0.00_1.50", "cook_1.50_2.90", "walk_0.00_1.20", "jump"}
    assert clips["cook_1.50_2.90"].captions == ["add salt and pepper"]
    assert clips["walk_0.00_1.20"].captions == ["a square walks, slowly"]
    # frames // 16 windows, at most 5: jump 3.5 s at 30 fps = 105 frames -> 5, the others 36-45 -> 2
    assert {k: c.n_actions for k, c in clips.items()} == {"cook_0.00_1.50": 2, "cook_1.50_2.90": 2,
                                                          "walk_0.00_1.20": 2, "jump": 5}
    for clip in clips.values():
        assert 1 <= clip.n_boxes <= 36 and clip.image_feature.shape[1] == FEATURE_DIM
        assert clip.action_feature.shape[1] == FEATURE_DIM and (clip.action_target < 700).all()
        assert (clip.image_w, clip.image_h) == ((144.0, 112.0) if clip.clip_id == "jump" else (160.0, 120.0))
        assert clip.target_value.astype(np.float32).sum(axis=1).max() <= 1.01
    assert len({c.action_feature[0].tobytes() for c in clips.values()}) == 4  # different clips, different features

    # the MSR-VTT LMDB + query list, read by the --test dataset
    queries = (out / "msrvtt_queries.csv").read_text().splitlines()
    assert queries[0] == "cook_0.00_1.50,stir the soup" and len(queries) == 4
    ds = MSRVTTDataset(out / "msrvtt_queries.csv", out / "msrvtt.lmdb", vocab_file, max_region_num=37)
    assert ds.num_videos == 4 and ds.video_ids[-1] == "jump"
    items = np.load(out / "actbert_train_data.npy", allow_pickle=True)
    assert len(items) == 4 and {it[6] for it in items} == {"cook", "walk", "jump"}

    # progress: the bad videos are recorded with their reason; a rerun redoes nothing
    env = lmdb.open(str(out / "progress.lmdb"), readonly=True, lock=False)
    with env.begin() as txn:
        status_of = {Path(k.decode()).name: json.loads(v)["status"] for k, v in txn.cursor()}
    env.close()
    assert status_of == {"cook.mp4": "done", "walk.mp4": "done", "jump.mp4": "done", "notvideo.mp4": "failed",
                         "empty.mp4": "failed", "still.mp4": "failed", "broken.mp4": "failed"}
    status, log = run_extract(argv, capsys)
    assert status == 0 and "0 video(s) extracted (0 clips" in log and "7 already finished" in log
    assert verify_store(out / "store")["clips"] == 4

    # main.py, the README's commands: two training steps on the store (4 clips, batches of 2),
    # then --test on the LMDB with the trained weights
    assert main.main(train_argv) == 0
    log = capsys.readouterr().out
    assert "step:1 " in log and "step:2 " in log and "END epoch:1" in log, log
    assert "step skipped" not in log, log
    assert main.main(test_argv) == 0
    log = capsys.readouterr().out
    assert "R@1" in log
    scores = np.load(tmp / "output" / "ActBert_smoke_test" / "msrvtt_scores.npy")
    assert scores.shape == (4, 4) and np.isfinite(scores).all()  # four queries x four extracted clips


def test_readme_own_videos_commands_chain():
    """Each command of the own-videos section reads what the one before wrote: converted
    weights -> extraction -> store and MSR-VTT files -> training -> its last checkpoint -> test;
    every -o key exists (the configs are validated with the overrides)."""
    blocks = [b for b in readme_blocks() if b and not any("--smoke" in argv for argv in b)]
    converted = [argv[3] for b in blocks for argv in b if argv[1].startswith("tools/convert_")]
    extract = next(argv for b in blocks for argv in b if argv[1] == "tools/extract_features.py")
    flags = dict(zip(extract[2:], extract[3:]))
    assert [flags["--detector_weights"], flags["--action_weights"]] == converted
    out = flags["--out"]
    train, test = next(b for b in blocks if b[0][1] == "main.py")
    check_chain(train[2:], test[2:], out)
    _, smoke_train, smoke_test = smoke_commands()
    check_chain(smoke_train, smoke_test, "data/smoke")


def check_chain(train_argv, test_argv, out):
    def parse(argv):
        args = main.parse_args(argv)
        return args, get_config(ROOT / args.config, args.override)

    train_args, train_cfg = parse(train_argv)
    test_args, test_cfg = parse(test_argv)
    assert train_cfg.DATASET.train.file_path == f"{out}/store"
    assert test_cfg.DATASET.test.file_path == f"{out}/msrvtt_queries.csv"
    assert test_cfg.DATASET.test.features_path == f"{out}/msrvtt.lmdb"
    assert test_cfg.DATASET.test.vocab_file == train_cfg.DATASET.train.vocab_file
    run_dir = train_cfg.get("output_dir") or f"output/{train_cfg.model_name}"
    last = f"{run_dir}/{train_cfg.model_name}_epoch_{train_cfg.epochs:05d}.pdparams"
    assert test_args.test and test_args.weights == last
    sizes = {k: v for k, v in train_cfg.MODEL.backbone.items() if k != "pretrained"}  # the BERT to start from
    assert sizes == test_cfg.MODEL.backbone
