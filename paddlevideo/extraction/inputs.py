"""What to extract: video files, folders, ``.txt`` lists and ``video,start,end,caption`` CSVs,
the cues of a WebVTT / SRT file beside a video, or fixed windows."""

import csv
import os
import re
from dataclasses import dataclass
from pathlib import Path

from ..utils.errors import ConfigError, DataError

VIDEO_EXTENSIONS = {".mp4", ".mkv", ".webm", ".avi", ".mov", ".m4v", ".flv", ".mpg", ".mpeg", ".ts"}


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



def read_csv(path):
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
