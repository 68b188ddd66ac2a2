"""Extract ActBERT's region and action features from your own videos.

    python tools/extract_features.py VIDEOS... --out DIR \\
        --detector_weights frcnn_vg.pdparams --action_weights r3d50_K700.pdparams [--device gpu]
    python -m paddle.distributed.launch --gpus 0,1,2,3 tools/extract_features.py ... (videos split by rank)
    python tools/extract_features.py VIDEOS... --out DIR --smoke   (tiny random-init extractors: a trial run)
    python tools/extract_features.py VIDEOS... --out DIR --per_second ...   (COIN, CrossTask: one record per video)

VIDEOS: video files, folders (searched recursively), ``.txt`` lists (one path a line) or a
``.csv`` with the header ``video,start,end,caption`` (seconds; empty start/end = the whole
video; relative paths are relative to the CSV), or YouCook2's files: the annotation JSON
``youcookii_annotations_trainval.json`` (every segment of both subsets) or MIL-NCE's
``validation_youcook.csv`` (header ``end,start,task,text,video_id``): one clip per segment with
its sentence, clip id ``<video_id>_<start>_<end>`` (two decimals, e.g. ``xHr8X2Wpmno_47.00_60.00``,
the same from both files; ``_2`` appended for a span the video annotates twice), the videos
found by YouTube id anywhere under the file's folder (``raw_videos/<subset>/<recipe>/<id>.mp4``).
Without a CSV row, a video's clips are the
cues of a subtitle file beside it (``name.vtt`` or ``name.srt``: HowTo100M-style clips with
their ASR captions), else fixed ``--window`` second windows without captions.

Per clip:
- regions: the detector runs on ``--region_frames`` frames at the centres of equal parts of
  the clip; all their boxes are ranked by confidence (best object class, background
  excluded) and taken greedily, dropping a box that overlaps a kept box of the same class
  with IoU > ``--merge_iou`` (the same object in another frame), up to ``--max_boxes``;
- actions: up to ``--max_actions`` windows of 16 consecutive frames (native frame rate),
  one centred in each of n equal parts of the clip, n = clip frames // 16 (at least 1; a
  shorter clip is loop-padded to 16 frames), each resized to 112 x 112 for the 3D ResNet:
  its pooled feature and its arg-max Kinetics class;
- the caption (CSV or subtitle cue).

With ``--per_second`` (the step tasks, whose labels are seconds) each video becomes one
record instead, ``DIR/seconds/<video_id>.npz``: for each second t of the video (T =
ceil(duration)), up to ``--boxes_per_second`` regions of the frame in the middle of the
second and the action feature of a 16-frame window centred there (the format is in
``paddlevideo/extraction/seconds.py`` and data/README.md, "Per-second features"). Name the
videos by their COIN / CrossTask (YouTube) ids: the record is found by the file's stem.
Only ``seconds/``, ``progress.lmdb`` and ``extraction.json`` are written then.

Outputs in DIR (clip mode):
- ``store/``: the pretraining store (``StoreWriter``; captioned clips only); under several
  processes ``store/rank-NNN/`` per rank (give the list as ``DATASET.train.file_path``);
- ``msrvtt.lmdb`` + ``msrvtt_queries.csv``: MSR-VTT-format features (one record per clip,
  key = clip id) and the headerless ``clip_id,caption`` query list for ``--test``;
- ``actbert_train_data.npy`` with ``--npy``: PaddleVideo's pickled training array;
- ``progress.lmdb``: what is finished; a rerun skips finished (and failed) videos;
- ``extraction.json``: which models made the features; a rerun with others is refused.

A video that cannot be used (not a video, no frames, one frame, truncated, broken or
non-UTF-8 subtitles without ``--subtitle_encoding``, every segment past its end) is logged and
skipped; bad flags, a missing or mismatched checkpoint, an output that is not an extraction's
or is being written by another extraction, and a failed write stop the run with one line
``error: ...`` (exit status 2). The code is the package ``paddlevideo/extraction/``.
"""


import argparse
import sys

if not __package__:  # run as python tools/<tool>.py: the checkout importable (tools/_path.py)
    import _path  # noqa: F401

from paddlevideo.extraction import ExtractionSettings, parse_action_config, run  # noqa: E402
from paddlevideo.utils.errors import exit_status  # noqa: E402
from paddlevideo.utils.logger import get_logger, setup_logger  # noqa: E402


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("inputs", nargs="+", help="video files, folders, .txt lists, a video,start,end,caption .csv, or "
                   "YouCook2's annotation .json / retrieval .csv")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--detector_weights", help="converted bottom-up-attention Faster R-CNN .pdparams")
    p.add_argument("--detector_config", help="its config.yaml (default: the VG model's)")
    p.add_argument("--action_weights", help="converted 3D ResNet .pdparams")
    p.add_argument("--action_model", default="resnet3d", help="action model kind (resnet3d)")
    p.add_argument("--action_config", default="{}", help='JSON model arguments, e.g. \'{"depth": 50}\' '
                                                         "(default: read from the weights' shapes)")
    p.add_argument("--device", default="cpu", choices=("cpu", "gpu"))
    p.add_argument("--window", type=float, default=10.0, help="fixed window seconds (no CSV, no subtitles)")
    p.add_argument("--region_frames", type=int, default=3, help="frames per clip given to the detector")
    p.add_argument("--max_boxes", type=int, default=36)
    p.add_argument("--merge_iou", type=float, default=0.5, help="same-class overlap that marks a repeated box")
    p.add_argument("--max_actions", type=int, default=5)
    p.add_argument("--batch_size", type=int, default=8, help="action windows per 3D CNN batch")
    p.add_argument("--detector_batch", type=int, default=4, help="images per detector call")
    p.add_argument("--no_store", action="store_true", help="do not write the pretraining store")
    p.add_argument("--no_msrvtt", action="store_true", help="do not write the MSR-VTT LMDB")
    p.add_argument("--npy", action="store_true", help="also write PaddleVideo's actbert_train_data.npy")
    p.add_argument("--retry_failed", action="store_true", help="try again videos a previous run skipped")
    p.add_argument("--no_progress", action="store_true")
    p.add_argument("--subtitle_encoding", default="utf-8", help="encoding of the .vtt/.srt files (e.g. latin-1)")
    p.add_argument("--per_second", action="store_true", help="one record of per-second features per video "
                                                             "(COIN, CrossTask) instead of clips")
    p.add_argument("--boxes_per_second", type=int, default=7, help="--per_second: regions kept per second")
    p.add_argument("--smoke", action="store_true", help="tiny random-init extractors instead of the weights, to try "
                                                        "the pipeline (64-d features, meaningless)")
    return p.parse_args(argv)




def settings_from_args(args):
    """The package's ``ExtractionSettings`` of the parsed flags."""
    return ExtractionSettings(
        inputs=args.inputs, out=args.out, detector_weights=args.detector_weights,
        action_weights=args.action_weights, detector_config=args.detector_config, action_model=args.action_model,
        action_config=parse_action_config(args.action_config), device=args.device, window=args.window,
        region_frames=args.region_frames, max_boxes=args.max_boxes, merge_iou=args.merge_iou,
        max_actions=args.max_actions, batch_size=args.batch_size, detector_batch=args.detector_batch,
        write_store=not args.no_store, write_msrvtt=not args.no_msrvtt, write_npy=args.npy,
        retry_failed=args.retry_failed, progress=not args.no_progress, subtitle_encoding=args.subtitle_encoding,
        smoke=args.smoke, per_second=args.per_second, boxes_per_second=args.boxes_per_second)


def extract(args):
    return run(settings_from_args(args))


def main(argv=None):
    args = parse_args(argv)
    setup_logger(level="INFO")
    get_logger().setLevel("INFO")  # every rank logs its own skips (training logs on rank 0 only)
    return exit_status(extract, args)


if __name__ == "__main__":
    sys.exit(main())
