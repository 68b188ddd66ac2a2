"""The extraction run: settings, the two models, one video -> Clips, and the loop over videos."""

import codecs
import inspect
import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..utils.errors import ActBertError, ConfigError, DataError
from ..utils.logger import get_logger
from ..utils.progress import progress_bar
from ..utils.writer_lock import writer_lock
from .frames import decode_clips, finish_windows, open_video, plan_clip
from .inputs import ClipSpec, assign_video_ids, fixed_windows, list_videos, read_subtitles, subtitle_file
from .regions import select_regions
from .seconds import extract_seconds
from .smoke import SMOKE_LABEL
from .writer import SECONDS_DIR, Outputs, check_identity, file_identity, finalise, prepare_out, writing

ACTION_SIZE = 112


@dataclass
class ExtractionSettings:
    """Everything an extraction run needs (``tools/extract_features.py`` builds it from its flags).

    ``action_config``: keyword arguments of the action model (read from the weights' shapes
    when empty). The rest as the command line's flags of the same names.
    """

    inputs: list
    out: str
    detector_weights: str
    action_weights: str
    detector_config: str = None
    action_model: str = "resnet3d"
    action_config: dict = field(default_factory=dict)
    device: str = "cpu"
    window: float = 10.0
    region_frames: int = 3
    max_boxes: int = 36
    merge_iou: float = 0.5
    max_actions: int = 5
    batch_size: int = 8
    detector_batch: int = 4
    write_store: bool = True
    write_msrvtt: bool = True
    write_npy: bool = False
    retry_failed: bool = False
    progress: bool = True
    subtitle_encoding: str = "utf-8"
    smoke: bool = False  # tiny random-init extractors instead of the weights (features meaningless)
    per_second: bool = False  # one record of per-second features per video (seconds.py), nothing else
    boxes_per_second: int = 7

    def check(self):
        """ConfigError (one line, naming the flag) for a value no run can use."""
        for name in ("region_frames", "max_boxes", "max_actions", "batch_size", "detector_batch", "boxes_per_second"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"--{name} must be a whole number >= 1, got {value!r}")
        if not (isinstance(self.window, (int, float)) and math.isfinite(self.window) and self.window >= 1):
            raise ConfigError(f"--window must be at least 1 second (shorter fixed windows are not kept), "
                              f"got {self.window!r}")
        if not (isinstance(self.merge_iou, (int, float)) and 0 <= self.merge_iou <= 1):
            raise ConfigError(f"--merge_iou must be an IoU between 0 and 1 (1 keeps every box), got {self.merge_iou!r}")
        try:
            codecs.lookup(self.subtitle_encoding)
        except LookupError:
            raise ConfigError(f"--subtitle_encoding: unknown encoding {self.subtitle_encoding!r}") from None
        if not isinstance(self.action_config, dict):
            raise ConfigError(f"--action_config must be a JSON object of model arguments, got {self.action_config!r}")
        if self.per_second and self.write_npy:
            raise ConfigError("--npy writes clips (PaddleVideo's training array); --per_second writes per-second "
                              "records: give one of them")
        if not self.smoke and not (self.detector_weights and self.action_weights):
            raise ConfigError("--detector_weights and --action_weights are required (or --smoke: tiny random-init "
                              "extractors to try the pipeline)")


def parse_action_config(text):
    """The ``--action_config`` JSON text -> dict; ConfigError if it is not JSON."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"--action_config is not JSON ({exc})") from None


def set_device(device):
    import paddle

    if device == "gpu":
        if not paddle.device.is_compiled_with_cuda():
            raise ConfigError("--device gpu: this Paddle has no CUDA (install paddlepaddle-gpu)")
        paddle.set_device(f"gpu:{paddle.distributed.ParallelEnv().device_id}")
    else:
        paddle.set_device("cpu")


def load_action_model(name, weights, config=None):
    """The action model of ``name`` (``resnet3d``: kenshohara's 3D ResNet) with ``weights``;
    ``config``: its constructor's arguments (an unknown key is a ConfigError naming it)."""
    from ..modeling.extractors.resnet3d import ResNet3D, load_resnet3d

    builders = {"resnet3d": (load_resnet3d, ResNet3D)}
    if name not in builders:
        raise ConfigError(f"--action_model must be one of {sorted(builders)}, got {name!r}")
    load, model_class = builders[name]
    config = config or {}
    known = [k for k in inspect.signature(model_class).parameters]
    unknown = sorted(set(config) - set(known))
    if unknown:
        raise ConfigError(f"--action_config: unknown key {unknown[0]!r} for {name} (known: {', '.join(known)})")
    try:
        return load(weights, **config)
    except (TypeError, ValueError) as exc:
        if isinstance(exc, ActBertError):
            raise
        raise ConfigError(f"--action_config {json.dumps(config)}: {exc}") from None


def load_detector(weights, config=None):
    """The bottom-up-attention Faster R-CNN (Visual Genome) with ``weights``."""
    try:
        from ..modeling.extractors.frcnn_vg import load_frcnn_vg
    except ImportError as exc:
        raise ConfigError(f"the region detector is not available in this checkout ({exc})") from None
    return load_frcnn_vg(weights, config)


def load_models(settings):
    """(detector, action model, identity) of the settings; ``identity`` says which models made
    the features (recorded in the output, compared on a rerun)."""
    if settings.smoke:
        from .smoke import tiny_extractors

        get_logger().warning("%s (for real features give --detector_weights and --action_weights)", SMOKE_LABEL)
        detector, action_model = tiny_extractors(seed=0)
        return detector, action_model, {"smoke": SMOKE_LABEL}
    action_model = load_action_model(settings.action_model, settings.action_weights, settings.action_config)
    detector = load_detector(settings.detector_weights, settings.detector_config)
    return detector, action_model, model_identity(settings)


def model_identity(settings):
    """{what: file name and sha256, or value} of the models the settings name."""
    from ..modeling.extractors.frcnn_vg import config_path_for

    return {"detector_weights": file_identity(settings.detector_weights),
            "detector_config": file_identity(settings.detector_config or config_path_for(settings.detector_weights)),
            "action_model": settings.action_model, "action_weights": file_identity(settings.action_weights),
            "action_config": settings.action_config}


def run_actions(model, windows, batch_size):
    """Pooled features [N, D] and arg-max classes [N] of action windows (lists of 16 uint8 frames)."""
    import paddle

    from ..modeling.extractors.resnet3d import preprocess_frames

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


class Extractor:
    """Turns one video into Clip objects with the two models."""

    def __init__(self, detector, action_model, settings):
        self.detector, self.action_model, self.settings = detector, action_model, settings

    def clip_specs(self, job, duration):
        log = get_logger()
        if job.clips is not None:
            specs = job.clips
        else:
            subs = subtitle_file(job.path)
            specs = (read_subtitles(subs, self.settings.subtitle_encoding) if subs
                     else fixed_windows(duration, self.settings.window))
        kept = []
        for spec in specs:
            end = min(spec.end, duration) if duration > 0 else spec.end
            if duration > 0 and spec.start >= duration:
                log.warning("%s: segment %.2f-%.2f s starts past the end (%.2f s); skipped", job.path, spec.start,
                            spec.end, duration)
                continue
            if not np.isfinite(end):
                raise DataError(f"{job.path}: the video has no duration; give start and end")
            kept.append(ClipSpec(spec.start, end, spec.caption, spec.clip_id))
        if not kept:
            raise DataError(f"{job.path}: no segment inside the video ({duration:.2f} s)")
        kept.sort(key=lambda s: (s.start, s.end))
        # Cues (or CSV rows) of one span, to the clip id's 10 ms, are one clip with all their captions;
        # segments with their own ids (YouCook2's) stay apart even when cut to the same span.
        spans = {}
        for spec in kept:
            span = spans.setdefault(spec.clip_id or f"{spec.start:.2f}_{spec.end:.2f}", spec)
            if spec.caption and spec.caption not in span.captions:
                span.captions.append(spec.caption)
        kept = list(spans.values())
        whole = len(kept) == 1 and kept[0].start == 0 and (duration <= 0 or kept[0].end >= duration - 1e-3)
        for spec in kept:
            own = job.video_id if whole else f"{job.video_id}_{spec.start:.2f}_{spec.end:.2f}"
            spec.clip_id = spec.clip_id or own
        return kept

    def video(self, job):
        """The Clips of one video; DataError if the video cannot be used."""
        from ..loader.store import Clip
        from ..modeling.extractors.frcnn_vg import to_actbert_regions

        a = self.settings
        container, _, fps, duration = open_video(job.path)
        container.close()
        specs = self.clip_specs(job, duration)
        plans = [plan_clip(s, fps, a.region_frames, a.max_actions) for s in specs]
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
                clip_id=p.spec.clip_id, video_id=job.video_id, captions=list(p.spec.captions),
                image_h=float(h), image_w=float(w), boxes=boxes, image_feature=feats,
                image_target=regions["image_target"],
                action_feature=act_feat[wi:wi + n], action_target=act_cls[wi:wi + n].astype(np.int64)))
            wi += n
        return clips

    def seconds(self, job):
        """The per-second record of one video (``seconds.py``); DataError if the video cannot be used."""
        a = self.settings
        container, _, fps, duration = open_video(job.path)
        container.close()
        if not duration > 0:
            raise DataError(f"{job.path}: the video declares no duration; per-second features need one")
        record, decoded = extract_seconds(
            job.path, duration, fps, lambda images: run_detector(self.detector, images, a.detector_batch,
                                                                 a.boxes_per_second),
            lambda windows: run_actions(self.action_model, windows, a.batch_size)[0], a.boxes_per_second,
            a.merge_iou)
        if decoded < 2:
            raise DataError(f"{job.path}: {decoded} decodable frame(s), not a video")
        return record

    @staticmethod
    def _skip(job, plan):
        get_logger().warning("%s: no frames for segment %.2f-%.2f s; skipped", job.path, plan.spec.start,
                             plan.spec.end)
        return False


def run(settings, detector=None, action_model=None):
    """Extract every video of this process's share (``ExtractionSettings``); returns (done,
    skipped, failed). ``detector`` / ``action_model``: models to use instead of the weights.

    Bad settings, an output that is not an extraction's, another writer on it, other models
    than the output's, or a failed write stop the run (ActBertError); an unusable video is
    logged, recorded as failed and skipped.
    """
    settings.check()
    rank = int(os.environ.get("PADDLE_TRAINER_ID", 0) or 0)
    world = int(os.environ.get("PADDLE_TRAINERS_NUM", 1) or 1)
    jobs = list_videos(settings.inputs)
    if not jobs:
        raise ConfigError(f"no videos found in {' '.join(map(str, settings.inputs))}")
    out = prepare_out(settings.out)
    # one lock per process share: the launcher's ranks write side by side, a second run is refused
    with writer_lock(out if world == 1 else out / f"rank-{rank:03d}", "extraction output"):
        set_device(settings.device)
        if detector is None or action_model is None:
            detector, action_model, identity = load_models(settings)
            if settings.per_second:  # one output never mixes clip records and per-second records
                identity = {**identity, "per_second": {"boxes_per_second": settings.boxes_per_second}}
            check_identity(out, identity)
        return _run_locked(settings, jobs, detector, action_model, rank, world)


def _run_locked(settings, jobs, detector, action_model, rank, world):
    log = get_logger()
    began = time.perf_counter()
    with writing(settings.out):
        outputs = Outputs(settings.out, rank, world, settings.write_store and not settings.per_second,
                          settings.write_msrvtt and not settings.per_second)
    try:
        counts = _extract_share(settings, jobs, Extractor(detector, action_model, settings), outputs, rank, world)
    finally:
        with writing(settings.out):
            outputs.close()
    done, skipped, failed, clips = counts
    log.info("rank %d: %d video(s) extracted (%d %s, %.1f s), %d already finished, %d skipped as unusable",
             rank, done, clips, "seconds" if settings.per_second else "clips", time.perf_counter() - began, skipped,
             failed)
    with writing(settings.out):
        finished = finalise(settings.out, [j.key for j in jobs], settings.write_npy)
    if finished and settings.per_second:
        log.info("all videos finished; per-second records: %s", Path(settings.out) / SECONDS_DIR)
    elif finished:
        out = Path(settings.out)
        stores = sorted({str(p.parent) for p in (out / "store").rglob("shard-*")})
        log.info("all videos finished; store: %s; MSR-VTT: %s + %s", stores if len(stores) > 1 else
                 (stores[0] if stores else "-"), out / "msrvtt.lmdb", out / "msrvtt_queries.csv")
    if settings.smoke:
        log.warning("%s: %s is for trying the pipeline only", SMOKE_LABEL, settings.out)
    return done, skipped, failed


def _extract_share(settings, jobs, extractor, outputs, rank, world):
    """Extract this process's share of ``jobs``; (done, skipped, failed, clips). Only writes into
    ``outputs`` are turned into the run-level write error: a video's own faults stay its own."""
    log = get_logger()
    done = skipped = failed = clips_total = 0
    assign_video_ids(jobs, outputs.claims())
    mine = jobs[rank::world]
    bar = progress_bar(mine, requested=settings.progress, desc=f"extract[{rank}]" if world > 1 else "extract",
                       unit="video", position=rank)
    for job in bar:
        status = outputs.status(job)
        if status and (status["status"] == "done" or not settings.retry_failed):
            skipped += 1
            continue
        try:
            if settings.per_second:
                record = extractor.seconds(job)
                clips = range(len(record["action"]))  # counted as seconds
                with writing(settings.out):
                    outputs.write_seconds(job, record)
            else:
                clips = extractor.video(job)
                with writing(settings.out):
                    outputs.write_video(job, clips)
        except DataError as exc:
            failed += 1
            log.warning("skipping video: %s", exc)
            with writing(settings.out):
                outputs.mark(job, {"status": "failed", "reason": str(exc)})
            continue
        done += 1
        clips_total += len(clips)
        bar.set_postfix(clips=clips_total)
    if all(outputs.status(job) for job in mine):
        with writing(settings.out):
            outputs.finish_store()
    return done, skipped, failed, clips_total
