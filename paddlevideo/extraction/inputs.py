"""What to extract: video files, folders, ``.txt`` lists and ``video,start,end,caption`` CSVs,
YouCook2's annotation JSON and MIL-NCE's YouCook2 retrieval CSV, the cues of a WebVTT / SRT
file beside a video, or fixed windows."""

import codecs
import csv
import hashlib
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..loader import youcook2
from ..utils.errors import ConfigError, DataError
from ..utils.logger import get_logger

VIDEO_EXTENSIONS = {".mp4", ".mkv", ".webm", ".avi", ".mov", ".m4v", ".flv", ".mpg", ".mpeg", ".ts"}


@dataclass
class ClipSpec:
    """One clip to extract: [start, end) seconds of a video and its caption (may be empty);
    ``captions``: every caption of the clip once cues of the same span are merged."""

    start: float
    end: float
    caption: str = ""
    clip_id: str = ""
    captions: list = field(default_factory=list)


@dataclass
class VideoJob:
    """One video: ``path`` as first given, ``key`` its resolved path (one video under several
    spellings is one job), ``video_id`` the file name's stem unless ``assign_video_ids`` had to
    make it unique."""

    path: str
    clips: list = None  # [ClipSpec] from a CSV, or None: subtitles or fixed windows
    video_id: str = ""
    key: str = ""

    def __post_init__(self):
        self.video_id = self.video_id or Path(self.path).stem
        self.key = self.key or os.path.realpath(self.path)


def assign_video_ids(jobs, claimed=None):
    """Give every job a video id no other video holds.

    A video keeps its file name's stem unless an earlier job of the list, or ``claimed``
    ({video id: key} of a previous run), holds that stem for another file; then the id is
    ``stem-`` + 8 hex digits of a hash of its resolved path, stable from run to run. Returns
    the claims including this list's.
    """
    claims = dict(claimed or {})
    for job in jobs:
        stem = Path(job.path).stem
        video_id = stem
        if claims.get(stem, job.key) != job.key:
            video_id = f"{stem}-{hashlib.sha1(job.key.encode('utf-8')).hexdigest()[:8]}"
        job.video_id = video_id
        claims[video_id] = job.key
    return claims



def find_videos(root):
    """{file name stem: path} of the videos under ``root`` (any depth), first in sorted order."""
    found = {}
    for p in sorted(Path(root).rglob("*")):
        if p.suffix.lower() in VIDEO_EXTENSIONS:
            found.setdefault(p.stem, str(p))
    return found


def read_youcook2(path):
    """VideoJobs of YouCook2's segments: every segment of ``youcookii_annotations_trainval.json``
    (both subsets) or every row of MIL-NCE's ``validation_youcook.csv``, one clip each with its
    sentence and clip id ``<video_id>_<start>_<end>`` (``loader.youcook2.segment_key``).

    The videos are looked up by YouTube id (file name stem) anywhere under the file's folder
    (the official download keeps ``raw_videos/<subset>/<recipe>/<id>.mp4`` beside the JSON).
    Videos not found are logged with their count (YouCook2 videos go offline); none found is
    a ConfigError.
    """
    if str(path).lower().endswith(".json"):
        segments = [s for v in youcook2.read_annotations(path).values() for s in v.segments]
    else:
        segments = youcook2.read_retrieval_csv(path)
    videos, jobs = find_videos(Path(path).parent), {}
    for seg in segments:
        if seg.video_id in videos:
            job = jobs.setdefault(seg.video_id, VideoJob(videos[seg.video_id], [], video_id=seg.video_id))
            job.clips.append(ClipSpec(seg.start, seg.end, seg.sentence, clip_id=seg.key))
    missing = sorted({s.video_id for s in segments} - set(jobs))
    if not jobs:
        raise ConfigError(f"{path}: none of its {len(missing)} YouCook2 videos is under {Path(path).parent} "
                          "(files named <video_id>.mp4, .mkv, .webm, ... at any depth)")
    if missing:
        get_logger().warning("%s: %d of its %d videos are not under %s and are skipped (e.g. %s)", path,
                             len(missing), len(missing) + len(jobs), Path(path).parent, ", ".join(missing[:3]))
    return list(jobs.values())


def _is_youcook2_csv(path):
    with open(path, encoding="utf-8-sig", newline="") as f:
        header = next(csv.reader(f), [])
    return tuple(c.strip().lower() for c in header) == youcook2.CSV_COLUMNS


def read_csv(path):
    if _is_youcook2_csv(path):
        return read_youcook2(path)
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
            new = read_csv(item) if os.path.isfile(item) else None
        elif item.lower().endswith(".json"):
            new = read_youcook2(item) if os.path.isfile(item) else None
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
            if job.key in jobs and job.clips is not None:
                jobs[job.key].clips = (jobs[job.key].clips or []) + job.clips
            else:
                jobs.setdefault(job.key, job)
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


def read_text(path, encoding="utf-8"):
    """The text of a subtitle file in ``encoding`` (UTF-8: a BOM is dropped). Bytes that are not
    valid in it are a DataError naming file:line and the byte, never replaced silently."""
    raw = Path(path).read_bytes()
    if codecs.lookup(encoding).name == "utf-8":
        encoding = "utf-8-sig"
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise DataError(f"{path}:{line}: not valid {exc.encoding} (byte 0x{raw[exc.start]:02x}); give the file's "
                        "encoding with --subtitle_encoding (e.g. latin-1) or re-save it as UTF-8") from None


def read_subtitles(path, encoding="utf-8"):
    """[ClipSpec] of the cues of a WebVTT or SRT file; DataError naming file:line on a broken one."""
    lines = read_text(path, encoding).splitlines()
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
    if not (isinstance(window, (int, float)) and math.isfinite(window) and window > 0):
        raise ConfigError(f"--window must be a positive number of seconds, got {window!r}")
    clips, start = [], 0.0
    while start < duration:
        end = min(start + window, duration)
        if end - start >= min(min_length, duration):
            clips.append(ClipSpec(start, end))
        start += window
    return clips
