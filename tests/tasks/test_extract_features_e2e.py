"""Raw videos -> tools/extract_features.py (tiny random extractors) -> store + MSR-VTT LMDB -> main.py.

The test writes its own short videos of moving squares: one with a .vtt beside it, two
through a ``video,start,end,caption`` CSV (one segment past the end), and four unusable
ones (not a video, 0 bytes, a single frame, a broken subtitle file).
"""

import json
from pathlib import Path

import lmdb
import numpy as np
import pytest
import yaml

import main
from paddlevideo.extraction.smoke import SMOKE_FEATURE_DIM, save_tiny_extractors
from paddlevideo.loader.dataset.msrvtt_dataset import MSRVTTDataset
from paddlevideo.loader.store import PretrainStore, verify_store
from paddlevideo.loader.store.synthetic import write_video
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


@pytest.fixture(scope="module")
def extracted(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("extract")
    det, act = save_tiny_extractors(tmp)  # the smoke path's models, as files
    inputs = make_videos(tmp / "videos")
    argv = [*inputs, "--out", str(tmp / "out"), "--detector_weights", str(det), "--action_weights", str(act),
            "--batch_size", "3", "--no_progress", "--npy"]
    return tmp, argv


def run_extract(argv, capsys):
    status = extract_features.main(argv)
    out = capsys.readouterr()
    return status, out.out + out.err


def test_extract_then_rerun_then_train_and_test(extracted, capsys, vocab_file):
    tmp, argv = extracted
    status, log = run_extract(argv, capsys)
    assert status == 0, log
    out = tmp / "out"

    # every unusable input is a logged skip naming the file and the problem
    for expected in ("notvideo.mp4: not a readable video", "empty.mp4: empty file (0 bytes)",
                     "still.mp4: a single frame", "broken.srt:2: broken timestamp '00:00:0x,500'",
                     "segment 5.00-6.00 s starts past the end"):
        assert expected in log, expected
    assert "3 video(s) extracted (4 clips" in log and "4 skipped as unusable" in log

    # the store: the four captioned clips, checked by the store's own verify pass, marked finished
    report = verify_store(out / "store")
    assert report["clips"] == 4 and report["complete"] is True
    models = json.loads((out / "extraction.json").read_text())["models"]
    assert models["action_weights"]["file"] == "r3d10_tiny.pdparams" and len(models["action_weights"]["sha256"]) == 64
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

    # main.py: two training steps on the store, then --test on the LMDB with the trained weights
    train_cfg, test_cfg = write_configs(tmp, out, vocab_file)
    # Two steps, both finite: with seed 1 a sample's actions are all masked (zero), which gave
    # non-finite gradients at step 1 before the backbone's LayerNorm stopped them (issue 10).
    assert main.main(["-c", str(train_cfg), "--seed", "1"]) == 0
    log = capsys.readouterr().out
    assert "step:1 " in log and "step:2 " in log and "END epoch:1" in log, log
    assert "step skipped" not in log, log
    weights = tmp / "train" / "Tiny_epoch_00001.pdparams"
    assert main.main(["-c", str(test_cfg), "--test", "-w", str(weights)]) == 0
    log = capsys.readouterr().out
    assert "R@1" in log
    scores = np.load(tmp / "test" / "msrvtt_scores.npy")
    assert scores.shape == (4, 4) and np.isfinite(scores).all()  # four queries x four extracted clips


def write_configs(tmp, out, vocab):
    """actbert_demo / actbert_msrvtt_demo with the extractors' sizes, on the extracted files."""
    backbone = {"vocab_size": 30522, "v_feature_size": FEATURE_DIM, "a_feature_size": FEATURE_DIM,
                "v_target_size": 1601, "a_target_size": 700, "max_position_embeddings": 40}
    train = yaml.safe_load((ROOT / "configs/multimodal/actbert/actbert_demo.yaml").read_text())
    train["MODEL"]["backbone"].update(backbone)
    store = {"format": "ActBertDataset", "file_path": str(out / "store"), "vocab_file": str(vocab)}
    train["DATASET"] = {"batch_size": 2, "num_workers": 0, "train": store}
    train["PIPELINE"] = {"train": {"transform": [
        {"FeaturePadding": {"max_region_num": 36, "max_action_num": 5}}, {"RandomCap": None}, {"Tokenize": None},
        {"RandomMask": {"max_seq_length": 16, "max_action_length": 5, "max_region_length": 36}}]}}
    train.update(model_name="Tiny", epochs=1, save_interval=1, log_interval=1, output_dir=str(tmp / "train"))
    test = yaml.safe_load((ROOT / "configs/multimodal/actbert/actbert_msrvtt_demo.yaml").read_text())
    test["MODEL"]["backbone"].update(backbone)
    test["DATASET"]["test"].update(file_path=str(out / "msrvtt_queries.csv"), features_path=str(out / "msrvtt.lmdb"),
                                   vocab_file=str(vocab), max_region_num=37)
    test.update(model_name="Tiny", output_dir=str(tmp / "test"))
    paths = tmp / "train.yaml", tmp / "test.yaml"
    for path, cfg in zip(paths, (train, test)):
        path.write_text(yaml.safe_dump(cfg))
    return paths
