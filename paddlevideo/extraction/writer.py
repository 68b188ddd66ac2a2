"""The outputs of an extraction: the pretraining store, the MSR-VTT LMDB and query list, the
``.npy``, and ``progress.lmdb`` (what is finished, so that a rerun resumes)."""

import contextlib
import csv
import hashlib
import json
from pathlib import Path

import numpy as np

from ..utils.errors import ActBertError, ConfigError
from ..utils.logger import get_logger
from ..utils.outfile import atomic_file, atomic_path

PROGRESS_MAP = 1 << 30
LMDB_MAP = 1 << 40  # virtual size; the file grows with its contents
IDENTITY_FILE = "extraction.json"
SECONDS_DIR = "seconds"  # --per_second: one <video_id>.npz per video
# What an extraction writes in --out, and whether each is a folder
OUTPUT_KINDS = {"store": True, "msrvtt.lmdb": True, "progress.lmdb": True, "msrvtt_queries.csv": False,
                "actbert_train_data.npy": False, IDENTITY_FILE: False, SECONDS_DIR: True}


def prepare_out(out):
    """Create ``out`` or accept an earlier extraction's output there; ConfigError (one line) for a
    path that cannot be a folder, or a folder holding files of these names that no extraction wrote."""
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"--out {out}: cannot create the output folder ({exc.strerror or exc})") from None
    for name, folder in OUTPUT_KINDS.items():
        path = out / name
        if path.exists() and path.is_dir() != folder:
            raise ConfigError(f"--out {out}: {name} is a {'folder' if path.is_dir() else 'file'} but extraction "
                              f"writes a {'folder' if folder else 'file'} there; choose another --out")
    lmdb_files = sorted(p.name for p in out.iterdir() if p.name == "data.mdb" or p.name.startswith("shard-"))
    if lmdb_files:
        raise ConfigError(f"--out {out}: is a store or an LMDB (it holds {lmdb_files[0]}), not a folder for an "
                          "extraction's outputs; choose another --out")
    ours = [name for name in OUTPUT_KINDS if (out / name).exists()]
    if ours and not (out / "progress.lmdb").is_dir():
        raise ConfigError(f"--out {out}: holds {', '.join(ours)} but no progress.lmdb, so no extraction wrote "
                          "them; they are not overwritten: choose another --out")
    return out


def file_identity(path):
    """{file name, sha256} of a weights or config file (what makes two models the same)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return {"file": Path(path).name, "sha256": digest.hexdigest()}


def check_identity(out, models):
    """Record ``models`` (what made the features) in OUT/extraction.json on the first run, and
    refuse a rerun with other models: one output never mixes two models' features."""
    path = Path(out) / IDENTITY_FILE
    if path.is_file():
        try:
            recorded = json.loads(path.read_text(encoding="utf-8"))["models"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"{path}: unreadable ({exc}); not an extraction output?") from None
        if recorded != models:
            raise ConfigError(f"--out {out} holds features made by {describe_models(recorded)}; this run uses "
                              f"{describe_models(models)}; use the same models or another --out")
        return
    with atomic_file(path, "w", encoding="utf-8", newline="") as f:
        json.dump({"models": models}, f, indent=1, sort_keys=True)


def describe_models(models):
    """One line naming the models of an identity record (files with the start of their sha256)."""
    mode = (f" in per-second mode ({models['per_second']['boxes_per_second']} boxes per second)"
            if "per_second" in models else " in clip mode")
    if "smoke" in models:
        return "the --smoke tiny random-init extractors" + mode
    parts = []
    for key in ("action_weights", "action_config", "detector_weights", "detector_config"):
        value = models.get(key)
        if isinstance(value, dict) and "sha256" in value:
            parts.append(f"{key} {value['file']} (sha256 {value['sha256'][:12]})")
        elif value:
            parts.append(f"{key} {json.dumps(value, sort_keys=True)}")
    return ", ".join(parts) + mode


@contextlib.contextmanager
def writing(out):
    """Turn a failed write into --out (disk full, I/O error) into one line that stops the run."""
    import lmdb

    try:
        yield
    except (OSError, lmdb.Error) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ActBertError(f"--out {out}: writing failed ({reason}); free space or choose another --out "
                           "(a rerun resumes after the last finished video)") from None


class Outputs:
    """The store, the MSR-VTT LMDB and the progress record of this process."""

    def __init__(self, out, rank, world, write_store=True, write_msrvtt=True):
        import lmdb

        from ..loader.store import StoreWriter
        from ..loader.store.lmdb_store import release_readers

        self.out = Path(out)
        self.rank, self.world = rank, world
        try:
            self.progress = lmdb.open(str(self.out / "progress.lmdb"), map_size=PROGRESS_MAP, subdir=True)
        except lmdb.Error as exc:
            raise ConfigError(f"{self.out / 'progress.lmdb'}: not a readable progress record ({exc})") from None
        self.msrvtt = None
        if write_msrvtt:
            release_readers(self.out / "msrvtt.lmdb")  # this process's read handle, if any
            self.msrvtt = lmdb.open(str(self.out / "msrvtt.lmdb"), map_size=LMDB_MAP, subdir=True)
        self.store_path = store_path(self.out, rank, world)
        self.store = StoreWriter(self.store_path, commit_every=1 << 30) if write_store else None

    def status(self, job):
        """The progress entry of a VideoJob (``{"status": "done" | "failed", ...}``) or None."""
        with self.progress.begin() as txn:
            raw = txn.get(job.key.encode("utf-8"))
        return json.loads(raw) if raw else None

    def claims(self):
        """{video id: resolved path} of the videos earlier runs recorded."""
        with self.progress.begin() as txn:
            entries = [(k.decode("utf-8"), json.loads(v)) for k, v in txn.cursor()]
        return {value["video_id"]: key for key, value in entries if "video_id" in value}

    def check_dims(self, clips):
        """ConfigError if the store already holds features of other widths (another model, or a
        store that no extraction with these models wrote): a run-level error, not a video's."""
        dims = self.store.dims if self.store is not None else None
        for clip in clips[:1] if dims else ():
            widths = {"image_feature": clip.image_feature.shape[1], "image_target": clip.image_target.shape[1],
                      "action_feature": clip.action_feature.shape[1]}
            for name, width in widths.items():
                if dims.get(name) != width:
                    raise ConfigError(f"{self.store_path}: the store holds {name} of width {dims.get(name)}, this "
                                      f"extraction makes {width} (another model?); choose another --out")

    def write_video(self, job, clips):
        """Write one video's clips (list of Clip) to every output, then mark the video done."""
        from ..loader.dataset.msrvtt_dataset import msrvtt_record_bytes

        self.check_dims(clips)
        video = job.path
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
        self.mark(job, {"status": "done", "clips": len(clips), "stored": stored, "queries": queries})

    def write_seconds(self, job, record):
        """Write one video's per-second record (dict of arrays) as ``OUT/seconds/<video_id>.npz``
        (atomically: a killed run leaves no partial record), then mark the video done."""
        folder = self.out / SECONDS_DIR
        folder.mkdir(exist_ok=True)
        target = folder / f"{job.video_id}.npz"
        with atomic_path(target, suffix=".npz") as tmp:
            np.savez(tmp, **record)
        self.mark(job, {"status": "done", "seconds": int(len(record["action"])), "file": str(target.name)})

    def mark(self, job, value):
        """Record a VideoJob's outcome (``value``) with its video id."""
        value = {**value, "video_id": job.video_id}
        with self.progress.begin(write=True) as txn:
            txn.put(job.key.encode("utf-8"), json.dumps(value).encode("utf-8"))

    def finish_store(self):
        """Mark this process's store complete (every video of its share has a progress entry)."""
        if self.store is not None:
            self.store.finish()

    def close(self):
        try:
            if self.store is not None:
                self.store.close()
        finally:  # the LMDB handles are released even when the store's last commit fails
            for env in (self.progress, self.msrvtt):
                if env is not None:
                    env.close()


def store_path(out, rank, world):
    return Path(out) / "store" if world == 1 else Path(out) / "store" / f"rank-{rank:03d}"


def finalise(out, videos, write_npy=False):
    """Once every video (resolved paths) has a progress entry: the query CSV of every clip in
    ``out`` (these videos' first, then earlier runs'), and the .npy. Returns False if some videos
    are not finished yet (another process's share)."""
    import lmdb

    out = Path(out)
    env = lmdb.open(str(out / "progress.lmdb"), map_size=PROGRESS_MAP, subdir=True, readonly=True, lock=False)
    with env.begin() as txn:
        entries = {k.decode("utf-8"): json.loads(v) for k, v in txn.cursor()}
    env.close()
    if any(v not in entries for v in videos):
        return False
    order = list(dict.fromkeys([*videos, *entries]))
    rows = [q for v in order for q in entries[v].get("queries", [])]
    if rows:
        with atomic_file(out / "msrvtt_queries.csv", "w", encoding="utf-8", newline="") as f:
            csv.writer(f, lineterminator="\n").writerows(rows)
    if write_npy:
        from ..loader.store import PretrainStore
        from ..loader.store.synthetic import npy_item

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
            with atomic_file(out / "actbert_train_data.npy") as f:
                np.save(f, items, allow_pickle=True)
    return True
