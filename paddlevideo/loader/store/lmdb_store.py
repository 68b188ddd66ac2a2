"""The sharded LMDB pretraining store: reader, writer and verify pass.

Layout on disk — a store is a directory of shards, each an LMDB environment::

    my_store/
      shard-00000/data.mdb   (+ lock.mdb)
      shard-00001/data.mdb
      ...

Keys of a shard:

- ``__header__``: UTF-8 JSON ``{format, version, shard, count, sealed, complete, dims,
  dtypes, top_k, renormalised, max_shard_bytes}``. ``count`` is the number of committed
  clips of the shard; it is rewritten in the same transaction as the clips it counts, so
  after a crash the header and the records always agree. ``complete`` is true in the
  last shard once the writer finished its source (false while it writes; absent in
  stores written before it existed).
- ``000000000000`` ... (12-digit local index): one clip record (see ``record.py``).
- ``id/<clip_id>``: the local index of that clip, so a restarted writer skips clips
  it has already committed.

The global index of a clip is its shard's offset (sum of the counts of the shards
before it) plus its local index. A single LMDB environment written by this module
(a shard directory), or a list of stores and shards, opens the same way.
"""

import bisect
import contextlib
import ctypes
import functools
import json
import math
import os
import sys
from pathlib import Path

import lmdb
import numpy as np

from ...utils.errors import ConfigError, DataError
from ...utils.logger import get_logger
from ...utils.progress import progress_bar
from ...utils.writer_lock import LOCK_SUFFIX, writer_lock
from . import sigbus
from .record import RECORD_DTYPES, decode_captions, decode_clip, encode_clip, validate_clip

FORMAT_NAME = "actbert-pretrain-store"
FORMAT_VERSION = 1
HEADER_KEY = b"__header__"
ID_PREFIX = b"id/"
SHARD_PATTERN = "shard-{:05d}"
DEFAULT_TOP_K = 32
DEFAULT_MAX_SHARD_BYTES = 32 << 30
DEFAULT_ACTION_CLASSES = 700
# Pages a commit may add beyond the records themselves: copied B-tree paths of both
# key families, the rewritten header and LMDB's free-list bookkeeping.
_TXN_SLACK_PAGES = 64


def record_key(local_index):
    """Key of the record at ``local_index`` of a shard (12 ASCII digits)."""
    return b"%012d" % local_index


def shard_paths(paths):
    """LMDB environment directories of a store given as a path or a list of paths.

    Each path is either one environment (holding ``data.mdb``) or a directory of
    ``shard-*`` environments (taken in name order).
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    if not paths:
        raise ConfigError("the store path list is empty; give a store directory or a list of shards")
    found = []
    for path in map(Path, paths):
        if (path / "data.mdb").is_file():
            found.append(path)
            continue
        shards = sorted(p for p in path.glob("shard-*") if (p / "data.mdb").is_file()) if path.is_dir() else []
        if not shards:
            raise DataError(f"{path}: no pretraining store here (expected data.mdb or shard-*/data.mdb)")
        found.extend(shards)
    return found


def _open_env(path, write=False, map_size=None, what=None):
    """An LMDB environment; readers never take the lock file, so any number may share it.

    A reader opens a directory holding ``data.mdb`` or a single LMDB file; ``what`` names the
    setting the path came from in its errors (e.g. "features_path (the MSR-VTT LMDB)")."""
    named = f"{what} '{path}'" if what else str(path)
    try:
        if write:
            release_readers(path)
            env = lmdb.open(str(path), map_size=map_size, subdir=True, meminit=False, max_dbs=0)
        else:
            if not os.path.exists(path):
                raise DataError(f"{named}: not found")
            env = lmdb.open(str(path), readonly=True, lock=False, readahead=False, meminit=False,
                            subdir=os.path.isdir(path))
    except lmdb.Error as exc:
        raise DataError(f"{named}: cannot open as LMDB ({exc})") from None
    try:
        check_complete_file(env, path, what)
    except DataError:
        env.close()
        raise
    return env


def check_complete_file(env, path, what=None):
    """DataError unless the LMDB file of ``env`` holds every page its meta page says is in use.

    A truncated copy (an interrupted download or ``cp``, a full disk) still opens, but
    reading a page past the end of the mapped file kills the process with SIGBUS; this
    compares the file size with the meta page's last page before any page is read.
    """
    data = _data_file(path)
    needed = (env.info()["last_pgno"] + 1) * env.stat()["psize"]
    size = os.path.getsize(data)
    if size < needed:
        named = f"{what} '{data}'" if what else data
        raise DataError(f"{named}: truncated LMDB file ({size} bytes, its meta page counts {needed} bytes of "
                        f"pages in use); copy it again or re-run the conversion")


# py-lmdb allows one handle per environment and process, and a handle must not be used
# across a fork: read handles are shared by every PretrainStore of a process, keyed by
# path, and a forked child (a DataLoader worker) first closes the handles it inherited
# (which only unmaps its own copy: readers opened with lock=False share no lock table)
# and then opens its own.
_READERS = {"pid": None, "envs": {}, "files": {}}


def _own_readers():
    """The handle table of this process (after a fork, the inherited one is closed first)."""
    if _READERS["pid"] != os.getpid():
        for env in _READERS["envs"].values():
            env.close()
        _READERS.update(pid=os.getpid(), envs={}, files={}, reads=0)
        sigbus.watch(())
    return _READERS["envs"]


def _data_file(path):
    """The file an LMDB at ``path`` maps: ``path/data.mdb``, or ``path`` itself (a single-file LMDB)."""
    return os.path.join(path, "data.mdb") if os.path.isdir(path) else str(path)


def reader_env(path, key=None, what=None):
    """This process's read-only handle of the LMDB at ``path`` (opened on first use): a store
    shard, or any other LMDB directory or file (the MSR-VTT features).

    ``key`` is ``os.path.realpath(path)`` when the caller has it already (it is slow);
    ``what`` names the path's setting in errors.
    """
    _own_readers()
    key = key or os.path.realpath(path)
    env = _READERS["envs"].get(key)
    if env is None:
        env = _READERS["envs"][key] = _open_env(path, what=what)
        _READERS["files"][key] = _data_file(path)
        sigbus.watch(_READERS["files"].values())  # a file truncated under us: one line, not a bare SIGBUS
    return env


def release_readers(path=None):
    """Close this process's read handles (of the shard at ``path``, or all), e.g. before writing."""
    envs = _own_readers()
    key = os.path.realpath(path) if path is not None else None
    for name in [k for k in envs if key is None or k == key]:
        envs.pop(name).close()
        _READERS["files"].pop(name, None)
    sigbus.watch(_READERS["files"].values())


# Reading a record maps its pages (and the kernel maps neighbouring cached pages with
# them) into the reader. Those pages are page cache, shared and reclaimable, but they
# count in the process's resident set, which would then creep up to the size of the
# part of the store read so far. Every TRIM_EVERY reads the mappings are dropped again
# (MADV_DONTNEED on a read-only file mapping only clears page-table entries), so a
# worker's RSS stays flat whatever the store size.
TRIM_EVERY = 64
_MADV_DONTNEED = 4


@functools.lru_cache(maxsize=1)
def _madvise():
    libc = ctypes.CDLL(None, use_errno=True)
    libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    return libc.madvise


def trim_mappings():
    """Drop this process's page mappings of the store files it reads (Linux; elsewhere a no-op)."""
    if not sys.platform.startswith("linux"):
        return
    names = {os.path.join(path, "data.mdb") for path in _own_readers()}
    with open("/proc/self/maps") as maps:
        for line in maps:
            fields = line.split(maxsplit=5)
            if len(fields) == 6 and fields[5].strip() in names:
                start, end = (int(x, 16) for x in fields[0].split("-"))
                _madvise()(start, end - start, _MADV_DONTNEED)


def read_header(env, path):
    """The checked header of one shard (dict); DataError names the file and key."""
    where = f"{path}: record {HEADER_KEY.decode()}"
    try:
        with env.begin() as txn:
            raw = txn.get(HEADER_KEY)
    except lmdb.Error as exc:
        raise DataError(f"{where}: unreadable LMDB page ({exc}); the shard is corrupt") from None
    if raw is None:
        raise DataError(f"{where}: missing; not an ActBERT pretraining store (PaddleVideo's .npy is read directly)")
    try:
        header = json.loads(bytes(raw).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"{where}: corrupt header ({exc})") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT_NAME:
        raise DataError(f"{where}: format {header.get('format') if isinstance(header, dict) else header!r}, "
                        f"expected '{FORMAT_NAME}'")
    if header.get("version") != FORMAT_VERSION:
        raise DataError(f"{where}: store format version {header.get('version')}, this code reads version "
                        f"{FORMAT_VERSION}; convert the data again with this version")
    if header.get("dtypes") != RECORD_DTYPES:
        raise DataError(f"{where}: dtypes {header.get('dtypes')}, expected {RECORD_DTYPES}")
    for key in ("count", "dims", "top_k"):
        if key not in header:
            raise DataError(f"{where}: header lacks '{key}'")
    return header


def _same_layout(a, b):
    return all(a.get(k) == b.get(k) for k in ("dims", "dtypes", "top_k", "renormalised"))


class PretrainStore:
    """Read-only random access to the clips of a (sharded) store.

    Opening reads every shard's header (counts and layout). Each process opens a
    shard's LMDB environment on first use, read-only and without the lock file; the
    store object holds only paths and counts, so a DataLoader worker (forked or
    spawned) never uses its parent's handles but opens its own.

    Args:
        paths: store directory, one shard, or a list of either.
        check_crc: verify each record's CRC-32 when it is read.
    """

    def __init__(self, paths, check_crc=True):
        self.paths = shard_paths(paths)
        self.check_crc = check_crc
        self._real_paths = [os.path.realpath(p) for p in self.paths]
        headers = [read_header(reader_env(path), path) for path in self.paths]
        for path, header in zip(self.paths[1:], headers[1:]):
            if not _same_layout(header, headers[0]):
                raise DataError(f"{path}: record {HEADER_KEY.decode()}: layout {header['dims']} top_k="
                                f"{header['top_k']} differs from {self.paths[0]} ({headers[0]['dims']})")
        self.header = headers[0]
        self.counts = [int(h["count"]) for h in headers]
        # True: the conversion finished; False: interrupted (or still running); None: not recorded.
        self.complete = headers[-1].get("complete")
        # offsets[s] = global index of shard s's first clip
        self.offsets = np.concatenate([[0], np.cumsum(self.counts)]).astype(np.int64).tolist()
        self.dims = dict(self.header["dims"])
        if self.complete is False:
            get_logger().warning("%s: incomplete store, %d clips so far (its conversion did not finish; run it "
                                 "again to continue)", self.paths[-1].parent, len(self))

    def __len__(self):
        return self.offsets[-1]

    def _env(self, shard):
        return reader_env(self.paths[shard], self._real_paths[shard])

    def locate(self, index):
        """(shard number, record key) of global ``index``."""
        if not 0 <= index < len(self):
            raise IndexError(f"clip index {index} out of range for a store of {len(self)} clips")
        shard = bisect.bisect_right(self.offsets, index) - 1
        return shard, record_key(index - self.offsets[shard])

    def where(self, index):
        """'<shard path>: record <key>' of global ``index``, for messages."""
        shard, key = self.locate(index)
        return f"{self.paths[shard]}: record {key.decode()}"

    def _read(self, index, decode):
        _READERS["reads"] = _READERS.get("reads", 0) + 1
        if _READERS["reads"] % TRIM_EVERY == 0:
            trim_mappings()
        shard, key = self.locate(index)
        where = f"{self.paths[shard]}: record {key.decode()}"
        try:
            with self._env(shard).begin(buffers=True) as txn:
                buf = txn.get(key)
                if buf is None:
                    raise DataError(f"{where}: missing, although the header counts {self.counts[shard]} clips")
                return decode(buf, where), where
        except lmdb.Error as exc:
            raise DataError(f"{where}: unreadable LMDB page ({exc}); the shard is corrupt") from None

    def get(self, index):
        """The checked Clip at global ``index`` (features float16, targets top-k sparse)."""
        clip, where = self._read(
            index, lambda buf, where: decode_clip(buf, where, self.dims["image_target"], self.check_crc))
        validate_clip(clip, f"{where} (clip {clip.clip_id})", self.dims)
        return clip

    def captions(self, index):
        """The captions (list[str]) of global ``index``; reads only the record's first bytes."""
        return self._read(index, decode_captions)[0]

    def close(self):
        """Close this process's handles of the shards (they reopen on the next read)."""
        for path in self.paths:
            release_readers(path)


class StoreWriter:
    """Append clips to a sharded store; restartable after a crash.

    Clips are buffered and written ``commit_every`` at a time, each batch in one LMDB
    transaction together with the shard header that counts it. A shard is sealed
    before it would exceed ``max_shard_bytes`` (its LMDB map size, so it can never
    grow beyond it) and the next one is started.

    Re-opening an existing store continues it ("create or continue"): clips already
    committed (looked up by clip id) are skipped by ``add``, so a crashed conversion can
    simply be run again, and new clips are appended. Clips added but not committed when
    the process died are lost and are written again by the rerun. A path that is a file,
    or a non-empty folder that is not a store, is refused.

    One writer per store: the writer holds ``writer_lock`` on the store folder from its
    creation to ``close()`` (the kernel releases it if the process dies), and a second
    writer of the same store, in any process, is refused with ``BusyError`` before it
    reads or writes anything. Readers take no lock.

    The store records whether it is complete: ``finish()`` (called when a ``with`` block
    ends without an exception) marks it so; adding clips clears the mark until the next
    ``finish()``. A conversion that stopped early stays incomplete.

    Args:
        path: store directory (created if missing).
        top_k: classes kept per region distribution (the header records it).
        renormalise: rescale the kept top-k values to the row's original total.
        max_shard_bytes: upper bound of each shard's ``data.mdb``.
        commit_every: clips per transaction.
        dims: expected sizes ``image_feature``, ``image_target``, ``action_feature``,
            ``action_target`` (number of action classes); by default taken from the first
            clip (and 700 action classes).

    Example::

        with StoreWriter("data/howto100m/store", top_k=32) as writer:
            for clip in my_clips():            # Clip objects, dense image_target [N, C]
                writer.add(clip)
        report = verify_store("data/howto100m/store")
    """

    def __init__(self, path, top_k=DEFAULT_TOP_K, renormalise=False, max_shard_bytes=DEFAULT_MAX_SHARD_BYTES,
                 commit_every=500, dims=None):
        self.path = Path(path)
        self.top_k, self.renormalise = int(top_k), bool(renormalise)
        self.max_shard_bytes, self.commit_every = int(max_shard_bytes), int(commit_every)
        if self.max_shard_bytes < 1 << 20:
            raise ConfigError(f"max_shard_bytes must be at least 1 MiB, got {self.max_shard_bytes}")
        self.dims = dict(dims) if dims else None
        self._check_target()
        self._pending = []  # [(clip_id, record bytes)]
        self._pending_ids = set()
        self._sealed = []  # read-only environments of full shards, for the id lookup
        self._committed_before = 0  # clips in sealed shards
        self._env, self._header = None, None
        self._lock = contextlib.ExitStack()
        self._lock.enter_context(writer_lock(self.path, "store"))
        try:
            self._resume()
        except BaseException:
            self._lock.close()
            raise

    # ---------------------------------------------------------------- state

    def _check_target(self):
        """Create the store folder, or accept an existing store; refuse anything else."""
        advice = "give a new or empty folder, or an existing store to continue it"
        if self.path.exists() and not self.path.is_dir():
            raise ConfigError(f"{self.path}: is a file, but a store is a folder of shards; {advice}")
        if self.path.is_dir():
            foreign = sorted(p.name for p in self.path.iterdir()
                             if not (p.is_dir() and p.name.startswith("shard-")) and p.name != LOCK_SUFFIX)
            if foreign:
                raise ConfigError(f"{self.path}: not empty and not a pretraining store (it holds "
                                  f"{', '.join(foreign[:3])}{', ...' if len(foreign) > 3 else ''}); {advice}")
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"{self.path}: cannot create the store folder ({exc.strerror or exc})") from None

    def _resume(self):
        existing = sorted(p for p in self.path.glob("shard-*") if (p / "data.mdb").is_file())
        for i, shard in enumerate(existing):
            if shard.name != SHARD_PATTERN.format(i):
                raise DataError(f"{shard}: shard numbering has a gap (expected {SHARD_PATTERN.format(i)})")
            env = _open_env(shard, write=True, map_size=self.max_shard_bytes)
            header = read_header(env, shard)
            self._adopt_layout(header, shard)
            if header.get("sealed") or i < len(existing) - 1:
                self._sealed.append(env)
                self._committed_before += int(header["count"])
            else:
                self._env, self._header = env, header

    def _adopt_layout(self, header, shard):
        if header["top_k"] != self.top_k or bool(header.get("renormalised")) != self.renormalise:
            raise ConfigError(f"{shard}: store was written with top_k={header['top_k']}, renormalise="
                              f"{header.get('renormalised')}; reopen it with the same settings")
        if self.dims is not None and self.dims != header["dims"]:
            raise ConfigError(f"{shard}: store dims {header['dims']} differ from the requested {self.dims}")
        self.dims = dict(header["dims"])

    def _new_shard(self):
        number = len(self._sealed)
        shard = self.path / SHARD_PATTERN.format(number)
        self._env = _open_env(shard, write=True, map_size=self.max_shard_bytes)
        self._header = {
            "format": FORMAT_NAME, "version": FORMAT_VERSION, "shard": number, "count": 0, "sealed": False,
            "complete": False, "dims": self.dims, "dtypes": RECORD_DTYPES, "top_k": self.top_k,
            "renormalised": self.renormalise, "max_shard_bytes": self.max_shard_bytes,
        }
        with self._env.begin(write=True) as txn:
            self._put_header(txn)

    def _put_header(self, txn):
        txn.put(HEADER_KEY, json.dumps(self._header).encode("utf-8"))

    @property
    def num_committed(self):
        """Clips committed so far, over all shards (a deterministic source may skip these)."""
        return self._committed_before + (self._header["count"] if self._header else 0)

    def __contains__(self, clip_id):
        """Whether ``clip_id`` is committed or waiting in the current batch."""
        if clip_id in self._pending_ids:
            return True
        key = ID_PREFIX + str(clip_id).encode("utf-8")
        envs = self._sealed + ([self._env] if self._env is not None else [])
        for env in envs:
            with env.begin() as txn:
                if txn.get(key) is not None:
                    return True
        return False

    # ---------------------------------------------------------------- writing

    def add(self, clip, where=None):
        """Queue ``clip`` (a ``Clip``); False if its id is already in the store.

        Raises DataError if the clip fails the checks the reader applies, before
        anything is written; the message starts with ``where`` (where the clip comes
        from), by default the store and clip id.
        """
        if clip.clip_id in self:
            return False
        if self.dims is None:
            self.dims = {
                "image_feature": int(clip.image_feature.shape[1]),
                "image_target": int(clip.image_target.shape[1] if clip.image_target is not None
                                    else clip.num_classes),
                "action_feature": int(clip.action_feature.shape[1]),
                "action_target": DEFAULT_ACTION_CLASSES,
            }
        validate_clip(clip, where or f"{self.path}: clip {clip.clip_id}", self.dims)
        value = encode_clip(clip, self.top_k, self.renormalise)
        if self._pages(len(value)) + _TXN_SLACK_PAGES > self.max_shard_bytes // 4096:
            raise ConfigError(f"{self.path}: clip {clip.clip_id} needs {len(value)} bytes, more than fits in a "
                              f"shard of max_shard_bytes={self.max_shard_bytes}")
        self._pending.append((str(clip.clip_id), value))
        self._pending_ids.add(str(clip.clip_id))
        if len(self._pending) >= self.commit_every:
            self.commit()
        return True

    @staticmethod
    def _pages(nbytes, psize=4096):
        # A value larger than half a page lives in its own overflow pages (16-byte header).
        return math.ceil((nbytes + 16) / psize) + 1

    def _used_pages(self):
        info, stat = self._env.info(), self._env.stat()
        return info["last_pgno"] + 1, stat["psize"]

    def commit(self):
        """Write the queued clips (one transaction per shard touched)."""
        while self._pending:
            if self._env is None:
                self._new_shard()
            used, psize = self._used_pages()
            budget = self.max_shard_bytes // psize - used - _TXN_SLACK_PAGES
            take = 0
            while take < len(self._pending) and budget >= self._pages(len(self._pending[take][1]), psize):
                budget -= self._pages(len(self._pending[take][1]), psize)
                take += 1
            if take:
                take = self._write(self._pending[:take])
            if not take and self._header["count"] == 0:
                raise ConfigError(f"{self.path}: a clip of {len(self._pending[0][1])} bytes does not fit in an "
                                  f"empty shard of max_shard_bytes={self.max_shard_bytes}")
            if take < len(self._pending):
                self._seal()
            done = self._pending[:take]
            self._pending = self._pending[take:]
            self._pending_ids.difference_update(cid for cid, _ in done)

    def _write(self, batch):
        """Write ``batch`` [(clip_id, value)] and the new count in one transaction.

        Returns how many were written: all, or 0 if the shard turned out to be full
        (the estimate of LMDB's page use was short), in which case nothing is.
        """
        count = self._header["count"]
        try:
            with self._env.begin(write=True) as txn:
                for i, (clip_id, value) in enumerate(batch):
                    txn.put(record_key(count + i), value)
                    txn.put(ID_PREFIX + clip_id.encode("utf-8"), b"%d" % (count + i))
                self._header["count"] = count + len(batch)
                self._header["complete"] = False
                self._put_header(txn)
        except lmdb.MapFullError:
            self._header["count"] = count
            return 0
        return len(batch)

    def _seal(self):
        """Mark the current shard full; the next commit starts a new one."""
        self._header["sealed"] = True
        with self._env.begin(write=True) as txn:
            self._put_header(txn)
        self._env.sync(True)
        self._committed_before += self._header["count"]
        self._sealed.append(self._env)
        self._env, self._header = None, None

    def finish(self):
        """Commit what is queued and mark the store complete (its source is fully written)."""
        self.commit()
        if self._env is None and not self._sealed:
            self._new_shard()  # an empty source still makes a (complete, empty) store
        if self._env is not None:
            env, header = self._env, self._header
        else:
            env = self._sealed[-1]
            header = read_header(env, self.path / SHARD_PATTERN.format(len(self._sealed) - 1))
        header["complete"] = True
        with env.begin(write=True) as txn:
            txn.put(HEADER_KEY, json.dumps(header).encode("utf-8"))
        env.sync(True)

    def close(self):
        """Commit what is queued and close every shard (the store stays incomplete unless finished)."""
        self.commit()
        for env in self._sealed + ([self._env] if self._env is not None else []):
            env.close()
        self._sealed, self._env = [], None
        self._lock.close()  # the next writer may start

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *exc):
        # Queued clips passed every check, so they are committed even when the caller
        # stops on an error: a rerun then resumes after them. Only a block that ran to
        # its end marks the store complete.
        if exc_type is None:
            self.finish()
        self.close()


def verify_store(paths, check_records=True, progress=False):
    """Count and check every record of a store; raise DataError on the first problem.

    Checks each shard header (format, version, layout shared by all shards), that the
    keys are exactly the header's count of records and as many ids, and, with
    ``check_records``, decodes and validates every record (CRC, sizes, finite values,
    boxes, captions). Returns ``{"clips", "shards", "bytes", "dims", "top_k", "complete"}``
    (``complete``: True, False for an interrupted conversion, None if not recorded).
    """
    store = PretrainStore(paths)
    total_bytes = 0
    for shard, path in enumerate(store.paths):
        env = store._env(shard)
        with env.begin() as txn:
            n_records = n_ids = 0
            for key in txn.cursor().iternext(values=False):
                if key.startswith(ID_PREFIX):
                    n_ids += 1
                elif key != HEADER_KEY:
                    n_records += 1
        count = store.counts[shard]
        if n_records != count or n_ids != count:
            raise DataError(f"{path}: record {HEADER_KEY.decode()}: header counts {count} clips, found "
                            f"{n_records} records and {n_ids} ids")
        total_bytes += os.path.getsize(Path(path) / "data.mdb")
    if check_records:
        indices = range(len(store))
        indices = progress_bar(indices, requested=progress, desc="verify", unit="clip")
        for i in indices:
            store.get(i)
    store.close()
    get_logger().info("verified %d clips in %d shard(s), %.1f MB", len(store), len(store.paths), total_bytes / 1e6)
    return {"clips": len(store), "shards": len(store.paths), "bytes": total_bytes, "dims": store.dims,
            "top_k": store.header["top_k"], "complete": store.complete}
