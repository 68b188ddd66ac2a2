"""The outputs of an extraction: the pretraining store, the MSR-VTT LMDB and query list, the
``.npy``, and ``progress.lmdb`` (what is finished, so that a rerun resumes)."""

import csv
import json
import os
from pathlib import Path

import numpy as np

from ..utils.logger import get_logger

PROGRESS_MAP = 1 << 30
LMDB_MAP = 1 << 40  # virtual size; the file grows with its contents


class Outputs:
    """The store, the MSR-VTT LMDB and the progress record of this process."""

    def __init__(self, out, rank, world, write_store=True, write_msrvtt=True):
        import lmdb

        from ..loader.store import StoreWriter
        from ..loader.store.lmdb_store import release_readers

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
        from ..loader.dataset.msrvtt_dataset import msrvtt_record_bytes

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
            tmp = out / f"actbert_train_data.{os.getpid()}.npy"
            np.save(tmp, items, allow_pickle=True)
            os.replace(tmp, out / "actbert_train_data.npy")
    return True


def _atomic_write(path, write):
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8", newline="") as f:
        write(f)
    os.replace(tmp, path)
