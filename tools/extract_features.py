"""Extract ActBERT's region and action features from your own videos.

    python tools/extract_features.py VIDEOS... --out DIR \\
        --detector_weights frcnn_vg.pdparams --action_weights r3d50_K700.pdparams [--device gpu]
    python -m paddle.distributed.launch --gpus 0,1,2,3 tools/extract_features.py ... (videos split by rank)

VIDEOS: video files, folders (searched recursively), ``.txt`` lists (one path a line) or a
``.csv`` with the header ``video,start,end,caption`` (seconds; empty start/end = the whole
video; relative paths are relative to the CSV). Without a CSV row, a video's clips are the
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

Outputs in DIR:
- ``store/``: the pretraining store (``StoreWriter``; captioned clips only); under several
  processes ``store/rank-NNN/`` per rank (give the list as ``DATASET.train.file_path``);
- ``msrvtt.lmdb`` + ``msrvtt_queries.csv``: MSR-VTT-format features (one record per clip,
  key = clip id) and the headerless ``clip_id,caption`` query list for ``--test``;
- ``actbert_train_data.npy`` with ``--npy``: PaddleVideo's pickled training array;
- ``progress.lmdb``: what is finished; a rerun skips finished (and failed) videos.

A video that cannot be used (not a video, no frames, one frame, broken subtitles, every
segment past its end) is logged and skipped; a missing or mismatched checkpoint stops the
run with one line ``error: ...``.
"""

import argparse
import csv
import json
import os
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from paddlevideo.utils.errors import ConfigError, DataError, exit_status  # noqa: E402
from paddlevideo.utils.logger import get_logger, setup_logger  # noqa: E402

VIDEO_EXTENSIONS = {".mp4", ".mkv", ".webm", ".avi", ".mov", ".m4v", ".flv", ".mpg", ".mpeg", ".ts"}
WINDOW_FRAMES = 16  # frames per action window (the 3D ResNet's input length)
ACTION_SIZE = 112
BACKGROUND = 1600  # index of the detector's background class (the last of 1601)
PROGRESS_MAP = 1 << 30
LMDB_MAP = 1 << 40  # virtual size; the file grows with its contents


# ------------------------------------------------------------------------- inputs


@dataclass
class ClipSpec:
    """One clip to extract: [start, end) seconds of a video and its caption (may be empty)."""

    start: float
    end: float
    caption: str = ""
    clip_id: str = ""


@dataclass
class VideoJob:
    path: str
    clips: list = None  # [ClipSpec] from a CSV, or None: subtitles or fixed windows

    @property
    def video_id(self):
        return Path(self.path).stem


def _read_csv(path):
    jobs, base = {}, Path(path).parent
    with open(path, encoding="utf-8-sig", newline="") as f:
        rows = list(csv.reader(f))
    if not rows or [c.strip().lower() for c in rows[0][:4]] != ["video", "start", "end", "caption"]:
        raise ConfigError(f"{path}: expected the header 'video,start,end,caption'")
    for line, row in enumerate(rows[1:], start=2):
        if not any(c.strip() for c in row):
            continue
        if len(row) < 4:
            raise ConfigError(f"{path}:{line}: expected 4 fields video,start,end,caption, got {len(row)}")
        video = row[0].strip()
        video = str(base / video) if not os.path.isabs(video) else video
        try:
            start = float(row[1]) if row[1].strip() else 0.0
            end = float(row[2]) if row[2].strip() else float("inf")
        except ValueError:
            raise ConfigError(f"{path}:{line}: start/end must be seconds, got {row[1]!r}, {row[2]!r}") from None
        if not end > start >= 0:
            raise ConfigError(f"{path}:{line}: need 0 <= start < end, got start {start}, end {end}")
        job = jobs.setdefault(video, VideoJob(video, []))
        job.clips.append(ClipSpec(start, end, ",".join(row[3:]).strip()))
    return list(jobs.values())


def list_videos(inputs):
    """The VideoJobs named by ``inputs`` (files, folders, .txt lists, .csv clip lists), deduplicated."""
    jobs = {}
    for item in map(str, inputs):
        if os.path.isdir(item):
            found = sorted(str(p) for p in Path(item).rglob("*") if p.suffix.lower() in VIDEO_EXTENSIONS)
            new = [VideoJob(p) for p in found]
        elif item.lower().endswith(".csv"):
            new = _read_csv(item) if os.path.isfile(item) else None
        elif item.lower().endswith(".txt"):
            if not os.path.isfile(item):
                new = None
            else:
                base = Path(item).parent
                with open(item, encoding="utf-8") as f:
                    names = [n.strip() for n in f if n.strip() and not n.startswith("#")]
                new = [VideoJob(n if os.path.isabs(n) else str(base / n)) for n in names]
        else:
            new = [VideoJob(item)]
        if new is None:
            raise ConfigError(f"input list not found: {item}")
        for job in new:
            if job.path in jobs and job.clips is not None:
                jobs[job.path].clips = (jobs[job.path].clips or []) + job.clips
            else:
                jobs.setdefault(job.path, job)
    return list(jobs.values())


_TIME = re.compile(r"^(?:(\d+):)?(\d{1,2}):(\d{1,2})(?:[.,](\d{1,3}))?$")


def _seconds(text, where):
    m = _TIME.match(text.strip())
    if not m:
        raise DataError(f"{where}: broken timestamp {text.strip()!r} (expected [hh:]mm:ss.mmm)")
    h, mi, s, ms = m.groups()
    if int(mi) > 59 or int(s) > 59:
        raise DataError(f"{where}: broken timestamp {text.strip()!r}")
    return int(h or 0) * 3600 + int(mi) * 60 + int(s) + int((ms or "0").ljust(3, "0")) / 1000


def read_subtitles(path):
    """[ClipSpec] of the cues of a WebVTT or SRT file; DataError naming file:line on a broken one."""
    with open(path, encoding="utf-8-sig", errors="replace") as f:
        lines = f.read().splitlines()
    cues, i = [], 0
    while i < len(lines):
        line = lines[i]
        if "-->" not in line:
            i += 1
            continue
        where = f"{path}:{i + 1}"
        left, _, right = line.partition("-->")
        start, end = _seconds(left, where), _seconds(right.split()[0] if right.split() else "", where)
        if not end > start:
            raise DataError(f"{where}: cue ends ({end:.3f} s) before it starts ({start:.3f} s)")
        text = []
        i += 1
        while i < len(lines) and lines[i].strip():
            text.append(re.sub(r"<[^>]*>", "", lines[i]).strip())
            i += 1
        caption = " ".join(t for t in text if t)
        if caption:
            cues.append(ClipSpec(start, end, caption))
    if not cues:
        raise DataError(f"{path}: no subtitle cues with text")
    return cues


def subtitle_file(video_path):
    for ext in (".vtt", ".srt"):
        candidate = Path(video_path).with_suffix(ext)
        if candidate.is_file():
            return candidate
    return None


def fixed_windows(duration, window, min_length=1.0):
    """[ClipSpec] of consecutive ``window``-second windows; a last shorter one if >= ``min_length``."""
    clips, start = [], 0.0
    while start < duration:
        end = min(start + window, duration)
        if end - start >= min(min_length, duration):
            clips.append(ClipSpec(start, end))
        start += window
    return clips


# ------------------------------------------------------------------------- decoding


@dataclass
class ClipFrames:
    """Frames gathered for one clip: the detector's frames and the action windows (preprocessed)."""

    spec: ClipSpec
    region_times: list
    window_times: list  # per window, WINDOW_FRAMES target times
    region: list = field(default_factory=list)  # uint8 [H, W, 3]
    windows: list = field(default_factory=list)  # per window, list of uint8 frames


def _plan(spec, fps, region_frames, max_actions):
    length = spec.end - spec.start
    n_frames = max(1, int(round(length * fps)))
    regions = [spec.start + (k + 0.5) * length / region_frames for k in range(region_frames)]
    n_windows = max(1, min(max_actions, n_frames // WINDOW_FRAMES))
    windows = []
    for k in range(n_windows):
        centre = spec.start + (k + 0.5) * length / n_windows
        first = centre - WINDOW_FRAMES / (2 * fps)
        windows.append([max(spec.start, first) + j / fps for j in range(WINDOW_FRAMES)])
    return ClipFrames(spec, regions, windows)


def open_video(path):
    """(container, stream, fps, duration s) of a video file; DataError if it is not a usable video."""
    import av

    if not os.path.isfile(path):
        raise DataError(f"{path}: file not found")
    if os.path.getsize(path) == 0:
        raise DataError(f"{path}: empty file (0 bytes)")
    try:
        container = av.open(path)
    except (av.error.FFmpegError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: not a readable video ({exc})") from None
    if not container.streams.video:
        container.close()
        raise DataError(f"{path}: holds no video stream")
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    fps = float(rate) if rate else 0.0
    if stream.duration is not None and stream.time_base is not None:
        duration = float(stream.duration * stream.time_base)
    elif container.duration is not None:
        duration = container.duration / 1e6
    else:
        duration = 0.0
    if not fps > 0:
        container.close()
        raise DataError(f"{path}: no frame rate in the video stream")
    if stream.frames and stream.frames < 2 or 0 < duration < 1.5 / fps:
        container.close()
        raise DataError(f"{path}: a single frame, not a video")
    return container, stream, fps, duration


def decode_clips(path, plans, fps):
    """Fill ``plans`` (ClipFrames, sorted by start) from one pass over the video.

    A request for time t takes the first frame whose timestamp is >= t - half a frame.
    Returns the number of decoded frames. Frames are kept only where requested.
    """
    import av

    requests = []  # (time, plan index, kind, window, slot)
    for p, plan in enumerate(plans):
        for slot, t in enumerate(plan.region_times):
            requests.append((t, p, "r", 0, slot))
        plan.windows = [[None] * WINDOW_FRAMES for _ in plan.window_times]
        plan.region = [None] * len(plan.region_times)
        for w, times in enumerate(plan.window_times):
            for slot, t in enumerate(times):
                requests.append((t, p, "a", w, slot))
    requests.sort(key=lambda r: r[0])
    half = 0.5 / fps
    container, stream, _, _ = open_video(path)
    decoded, pointer = 0, 0
    try:
        first = requests[0][0] if requests else 0.0
        if first > 2.0 and stream.time_base:
            container.seek(int((first - 1.0) / stream.time_base), stream=stream, backward=True)
        start_time = float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0
        for frame in container.decode(stream):
            decoded += 1
            t = (float(frame.pts * stream.time_base) - start_time) if frame.pts is not None else decoded / fps
            if pointer < len(requests) and requests[pointer][0] <= t + half:
                image = frame.to_ndarray(format="rgb24")
                while pointer < len(requests) and requests[pointer][0] <= t + half:
                    _, p, kind, w, slot = requests[pointer]
                    if kind == "r":
                        plans[p].region[slot] = image
                    else:
                        plans[p].windows[w][slot] = image
                    pointer += 1
            if pointer >= len(requests):
                break
    except av.error.FFmpegError as exc:
        raise DataError(f"{path}: decoding failed after {decoded} frame(s) ({exc})") from None
    finally:
        container.close()
    return decoded


def finish_windows(plan):
    """Drop missing frames: region frames past the end go, an action window is loop-padded
    from its frames (as the public loader pads short clips); empty windows go."""
    plan.region = [f for f in plan.region if f is not None]
    windows = []
    for frames in plan.windows:
        got = [f for f in frames if f is not None]
        if got:
            windows.append([got[j % len(got)] for j in range(WINDOW_FRAMES)])
    plan.windows = windows
    return bool(plan.region) and bool(plan.windows)


# ------------------------------------------------------------------------- selection


def iou(box, boxes):
    """IoU of one box [4] with boxes [N, 4] (x1, y1, x2, y2)."""
    x1 = np.maximum(box[0], boxes[:, 0])
    y1 = np.maximum(box[1], boxes[:, 1])
    x2 = np.minimum(box[2], boxes[:, 2])
    y2 = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return inter / np.maximum(area + areas - inter, 1e-9)


def select_regions(detections, max_boxes=36, merge_iou=0.5):
    """The clip's regions from per-frame detector outputs (see the module docstring).

    detections: list of dicts with ``boxes`` [N, 4], ``features`` [N, D], ``cls_prob``
    [N, 1601]. Returns (boxes [M, 4], features [M, D], cls_prob [M, 1601]), M <= max_boxes,
    best first.
    """
    boxes = np.concatenate([np.asarray(d["boxes"], np.float32).reshape(-1, 4) for d in detections])
    feats = np.concatenate([np.asarray(d["features"], np.float32) for d in detections])
    probs = np.concatenate([np.asarray(d["cls_prob"], np.float32) for d in detections])
    if not len(boxes):
        return boxes, feats, probs
    objects = np.delete(probs, BACKGROUND, axis=1) if probs.shape[1] > BACKGROUND else probs
    score, label = objects.max(axis=1), objects.argmax(axis=1)
    order = np.argsort(-score, kind="stable")
    kept = []
    for i in order:
        if len(kept) == max_boxes:
            break
        same = [k for k in kept if label[k] == label[i]]
        if same and (iou(boxes[i], boxes[same]) > merge_iou).any():
            continue
        kept.append(i)
    kept = np.array(kept, dtype=np.int64)
    return boxes[kept], feats[kept], probs[kept]


# ------------------------------------------------------------------------- models


def set_device(device):
    import paddle

    if device == "gpu":
        if not paddle.device.is_compiled_with_cuda():
            raise ConfigError("--device gpu: this Paddle has no CUDA (install paddlepaddle-gpu)")
        paddle.set_device(f"gpu:{paddle.distributed.ParallelEnv().device_id}")
    else:
        paddle.set_device("cpu")


def load_action_model(name, weights, config=None):
    """The action model of ``name`` (``resnet3d``: kenshohara's 3D ResNet) with ``weights``."""
    from paddlevideo.modeling.extractors.resnet3d import load_resnet3d

    builders = {"resnet3d": load_resnet3d}
    if name not in builders:
        raise ConfigError(f"--action_model must be one of {sorted(builders)}, got {name!r}")
    return builders[name](weights, **(config or {}))


def load_detector(weights, config=None):
    """The bottom-up-attention Faster R-CNN (Visual Genome) with ``weights``."""
    try:
        from paddlevideo.modeling.extractors.frcnn_vg import load_frcnn_vg
    except ImportError as exc:
        raise ConfigError(f"the region detector is not available in this checkout ({exc})") from None
    return load_frcnn_vg(weights, config)


def run_actions(model, windows, batch_size):
    """Pooled features [N, D] and arg-max classes [N] of action windows (lists of 16 uint8 frames)."""
    import paddle

    from paddlevideo.modeling.extractors.resnet3d import preprocess_frames

    feats, classes = [], []
    for i in range(0, len(windows), batch_size):
        batch = np.stack([preprocess_frames(np.stack(w), ACTION_SIZE) for w in windows[i:i + batch_size]])
        with paddle.no_grad():
            pooled, logits = model(paddle.to_tensor(batch))
        feats.append(pooled.numpy())
        classes.append(logits.numpy().argmax(axis=1))
    return np.concatenate(feats), np.concatenate(classes)


def run_detector(detector, images, batch_size, max_boxes):
    out = []
    for i in range(0, len(images), batch_size):
        out.extend(detector.extract(images[i:i + batch_size], max_boxes=max_boxes))
    return out


# ------------------------------------------------------------------------- outputs


class Outputs:
    """The store, the MSR-VTT LMDB and the progress record of this process."""

    def __init__(self, out, rank, world, write_store=True, write_msrvtt=True):
        import lmdb

        from paddlevideo.loader.store import StoreWriter
        from paddlevideo.loader.store.lmdb_store import release_readers

        self.out = Path(out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.rank, self.world = rank, world
        self.progress = lmdb.open(str(self.out / "progress.lmdb"), map_size=PROGRESS_MAP, subdir=True)
        self.msrvtt = None
        if write_msrvtt:
            release_readers(self.out / "msrvtt.lmdb")  # this process's read handle, if any
            self.msrvtt = lmdb.open(str(self.out / "msrvtt.lmdb"), map_size=LMDB_MAP, subdir=True)
        self.store_path = store_path(self.out, rank, world)
        self.store = StoreWriter(self.store_path, commit_every=1 << 30) if write_store else None

    def status(self, video):
        with self.progress.begin() as txn:
            raw = txn.get(video.encode("utf-8"))
        return json.loads(raw) if raw else None

    def write_video(self, video, clips):
        """Write one video's clips (list of Clip) to every output, then mark the video done."""
        from paddlevideo.loader.dataset.msrvtt_dataset import msrvtt_record_bytes

        queries, stored = [], 0
        if self.store is not None:
            for clip in clips:
                if clip.captions:
                    self.store.add(clip, f"{video}: clip {clip.clip_id}")
                    stored += 1
            self.store.commit()
        if self.msrvtt is not None:
            with self.msrvtt.begin(write=True) as txn:
                for clip in clips:
                    if not clip.n_boxes:
                        get_logger().warning("%s: clip %s has no boxes; not written to the MSR-VTT LMDB",
                                             video, clip.clip_id)
                        continue
                    record = {"image_h": clip.image_h, "image_w": clip.image_w,
                              "features": np.asarray(clip.image_feature, np.float32),
                              "boxes": np.asarray(clip.boxes, np.float32),
                              "action_features": np.asarray(clip.action_feature, np.float32)}
                    txn.put(clip.clip_id.encode("utf-8"), msrvtt_record_bytes(clip.clip_id, record))
                    queries += [[clip.clip_id, c] for c in clip.captions]
        self.mark(video, {"status": "done", "clips": len(clips), "stored": stored, "queries": queries})

    def mark(self, video, value):
        with self.progress.begin(write=True) as txn:
            txn.put(video.encode("utf-8"), json.dumps(value).encode("utf-8"))

    def close(self):
        if self.store is not None:
            self.store.close()
        for env in (self.progress, self.msrvtt):
            if env is not None:
                env.close()


def store_path(out, rank, world):
    return Path(out) / "store" if world == 1 else Path(out) / "store" / f"rank-{rank:03d}"


def finalise(out, videos, write_npy=False):
    """Once every video has a progress entry: the query CSV (and the .npy). Returns False if some
    videos are not finished yet (another process's share)."""
    import lmdb

    out = Path(out)
    env = lmdb.open(str(out / "progress.lmdb"), map_size=PROGRESS_MAP, subdir=True, readonly=True, lock=False)
    with env.begin() as txn:
        status = [txn.get(v.encode("utf-8")) for v in videos]
    env.close()
    if any(s is None for s in status):
        return False
    rows = [q for s in map(json.loads, status) for q in s.get("queries", [])]
    if rows:
        _atomic_write(out / "msrvtt_queries.csv", lambda f: csv.writer(f, lineterminator="\n").writerows(rows))
    if write_npy:
        from paddlevideo.loader.store import PretrainStore
        from paddlevideo.loader.store.synthetic import npy_item

        stores = sorted({str(p.parent) for p in (out / "store").rglob("shard-*")})
        if stores:
            store = PretrainStore(stores)
            items = np.empty(len(store), dtype=object)
            for i in range(len(store)):
                clip = store.get(i)
                clip.image_feature = clip.image_feature.astype(np.float32)
                clip.action_feature = clip.action_feature.astype(np.float32)
                items[i] = npy_item(clip)
            store.close()
            tmp = out / f"actbert_train_data.{os.getpid()}.npy"
            np.save(tmp, items, allow_pickle=True)
            os.replace(tmp, out / "actbert_train_data.npy")
    return True


def _atomic_write(path, write):
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8", newline="") as f:
        write(f)
    os.replace(tmp, path)


# ------------------------------------------------------------------------- the run


class Extractor:
    """Turns one video into Clip objects with the two models."""

    def __init__(self, detector, action_model, args):
        self.detector, self.action_model, self.args = detector, action_model, args

    def clip_specs(self, job, duration):
        log = get_logger()
        if job.clips is not None:
            specs = job.clips
        else:
            subs = subtitle_file(job.path)
            specs = read_subtitles(subs) if subs else fixed_windows(duration, self.args.window)
        kept = []
        for spec in specs:
            end = min(spec.end, duration) if duration > 0 else spec.end
            if duration > 0 and spec.start >= duration:
                log.warning("%s: segment %.2f-%.2f s starts past the end (%.2f s); skipped", job.path, spec.start,
                            spec.end, duration)
                continue
            if not np.isfinite(end):
                raise DataError(f"{job.path}: the video has no duration; give start and end")
            kept.append(ClipSpec(spec.start, end, spec.caption))
        if not kept:
            raise DataError(f"{job.path}: no segment inside the video ({duration:.2f} s)")
        kept.sort(key=lambda s: (s.start, s.end))
        whole = len(kept) == 1 and kept[0].start == 0 and (duration <= 0 or kept[0].end >= duration - 1e-3)
        for spec in kept:
            spec.clip_id = job.video_id if whole else f"{job.video_id}_{spec.start:.2f}_{spec.end:.2f}"
        return kept

    def video(self, job):
        """The Clips of one video; DataError if the video cannot be used."""
        from paddlevideo.loader.store import Clip
        from paddlevideo.modeling.extractors.frcnn_vg import to_actbert_regions

        a = self.args
        container, _, fps, duration = open_video(job.path)
        container.close()
        specs = self.clip_specs(job, duration)
        plans = [_plan(s, fps, a.region_frames, a.max_actions) for s in specs]
        decoded = decode_clips(job.path, plans, fps)
        if decoded < 2:
            raise DataError(f"{job.path}: {decoded} decodable frame(s), not a video")
        plans = [p for p in plans if finish_windows(p) or self._skip(job, p)]
        if not plans:
            raise DataError(f"{job.path}: no frames decoded inside its segments")
        images = [img for p in plans for img in p.region]
        dets = run_detector(self.detector, images, a.detector_batch, a.max_boxes)
        windows = [w for p in plans for w in p.windows]
        act_feat, act_cls = run_actions(self.action_model, windows, a.batch_size)
        clips, di, wi = [], 0, 0
        for p in plans:
            boxes, feats, probs = select_regions(dets[di:di + len(p.region)], a.max_boxes, a.merge_iou)
            di += len(p.region)
            n = len(p.windows)
            h, w = p.region[0].shape[:2]
            # the released features' class order: background first (the detector scores it last)
            regions = to_actbert_regions({"boxes": boxes, "features": feats, "cls_prob": probs,
                                          "num_boxes": len(boxes), "image_hw": (h, w)})
            clips.append(Clip(
                clip_id=p.spec.clip_id, video_id=job.video_id, captions=[p.spec.caption] if p.spec.caption else [],
                image_h=float(h), image_w=float(w), boxes=boxes, image_feature=feats,
                image_target=regions["image_target"],
                action_feature=act_feat[wi:wi + n], action_target=act_cls[wi:wi + n].astype(np.int64)))
            wi += n
        return clips

    @staticmethod
    def _skip(job, plan):
        get_logger().warning("%s: no frames for segment %.2f-%.2f s; skipped", job.path, plan.spec.start,
                             plan.spec.end)
        return False


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("inputs", nargs="+", help="video files, folders, .txt lists or a video,start,end,caption .csv")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--detector_weights", required=True, help="converted bottom-up-attention Faster R-CNN .pdparams")
    p.add_argument("--detector_config", help="its config.yaml (default: the VG model's)")
    p.add_argument("--action_weights", required=True, help="converted 3D ResNet .pdparams")
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
    return p.parse_args(argv)


def run(args, detector=None, action_model=None):
    """Extract every video of this process's share; returns (done, skipped, failed)."""
    from tqdm import tqdm

    log = get_logger()
    rank = int(os.environ.get("PADDLE_TRAINER_ID", 0) or 0)
    world = int(os.environ.get("PADDLE_TRAINERS_NUM", 1) or 1)
    try:
        config = json.loads(args.action_config)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"--action_config is not JSON ({exc})") from None
    jobs = list_videos(args.inputs)
    if not jobs:
        raise ConfigError(f"no videos found in {' '.join(args.inputs)}")
    set_device(args.device)
    action_model = action_model or load_action_model(args.action_model, args.action_weights, config)
    detector = detector or load_detector(args.detector_weights, args.detector_config)
    mine = jobs[rank::world]
    outputs = Outputs(args.out, rank, world, not args.no_store, not args.no_msrvtt)
    extractor = Extractor(detector, action_model, args)
    done = skipped = failed = clips_total = 0
    began = time.perf_counter()
    try:
        bar = tqdm(mine, desc=f"extract[{rank}]" if world > 1 else "extract", unit="video",
                   disable=args.no_progress, position=rank)
        for job in bar:
            status = outputs.status(job.path)
            if status and (status["status"] == "done" or not args.retry_failed):
                skipped += 1
                continue
            try:
                clips = extractor.video(job)
                outputs.write_video(job.path, clips)
            except DataError as exc:
                failed += 1
                log.warning("skipping video: %s", exc)
                outputs.mark(job.path, {"status": "failed", "reason": str(exc)})
                continue
            done += 1
            clips_total += len(clips)
            bar.set_postfix(clips=clips_total)
    finally:
        outputs.close()
    elapsed = time.perf_counter() - began
    log.info("rank %d: %d video(s) extracted (%d clips, %.1f s), %d already finished, %d skipped as unusable",
             rank, done, clips_total, elapsed, skipped, failed)
    if finalise(args.out, [j.path for j in jobs], args.npy):
        stores = sorted({str(p.parent) for p in (Path(args.out) / "store").rglob("shard-*")})
        log.info("all videos finished; store: %s; MSR-VTT: %s + %s", stores if len(stores) > 1 else
                 (stores[0] if stores else "-"), Path(args.out) / "msrvtt.lmdb", Path(args.out) / "msrvtt_queries.csv")
    return done, skipped, failed


def main(argv=None):
    args = parse_args(argv)
    setup_logger(level="INFO")
    get_logger().setLevel("INFO")  # every rank logs its own skips (training logs on rank 0 only)
    return exit_status(run, args)


if __name__ == "__main__":
    sys.exit(main())
