"""YouCook2 (Zhou et al., AAAI 2018): the official annotation file and MIL-NCE's zero-shot
retrieval clip list.

``youcookii_annotations_trainval.json``::

    {"database": {video_id: {"duration": s, "subset": "training" | "validation",
        "recipe_type": "113", "video_url": "...",
        "annotations": [{"segment": [start_s, end_s], "id": 0, "sentence": "..."}]}}}

``validation_youcook.csv`` (MIL-NCE; 3,350 rows of 436 validation videos)::

    end,start,task,text,video_id
    60,47,226,pick the ends off the verdalago,xHr8X2Wpmno

**Clip keys.** A segment is found again, in the feature LMDB and in every output, by
``segment_key(video_id, start, end)`` = ``<video_id>_<start>_<end>`` with both bounds
printed with two decimals (``xHr8X2Wpmno_47.00_60.00``). It is the key
``tools/extract_features.py`` gives a clip cut from a CSV row, it needs nothing but the
row itself (the retrieval CSV has no segment index), and the annotation file and the
CSV give the same key for the same segment. One video of the official validation set
annotates the same span twice with two sentences (``oJZUxU9szWA`` [120, 252], both in
MIL-NCE's list): the n-th segment (n >= 2, file order) of a video with bounds already
used gets ``_<n>`` appended (``oJZUxU9szWA_120.00_252.00_2``), so every segment has its
own key and its own (identical) features. The segment's position in its video's list
(``index``) is kept for the outputs.
"""

import csv
from dataclasses import dataclass, replace

from ..utils.errors import DataError
from ..utils.textfile import read_text
from .annotation_file import read_database, segment_bounds, video_fields

SUBSETS = ("training", "validation", "testing")
CSV_COLUMNS = ("end", "start", "task", "text", "video_id")


def segment_key(video_id, start, end, occurrence=1):
    """The clip key of a segment: ``<video_id>_<start:.2f>_<end:.2f>``, plus ``_<occurrence>``
    for the second and later segments of a video with the same bounds (module docstring)."""
    key = f"{video_id}_{float(start):.2f}_{float(end):.2f}"
    return key if occurrence == 1 else f"{key}_{occurrence}"


@dataclass(frozen=True)
class Segment:
    """One annotated segment: its video, position in the video's list, bounds (s) and sentence."""

    video_id: str
    index: int
    start: float
    end: float
    sentence: str
    subset: str = ""
    recipe_type: str = ""
    occurrence: int = 1  # n-th segment of its video with these bounds, in file order

    @property
    def key(self):
        return segment_key(self.video_id, self.start, self.end, self.occurrence)

    @property
    def span(self):
        return segment_key(self.video_id, self.start, self.end)

    @property
    def duration(self):
        return self.end - self.start


@dataclass(frozen=True)
class YouCookVideo:
    video_id: str
    subset: str
    recipe_type: str
    duration: float
    segments: tuple


def _segment(where, video_id, position, entry, subset, recipe_type):
    if not isinstance(entry, dict):
        raise DataError(f"{where}: expected an object with 'segment', 'id', 'sentence', got {type(entry).__name__}")
    start, end = segment_bounds(where, entry.get("segment"), allow_empty=False)
    sentence = entry.get("sentence")
    if subset != "testing" and (not isinstance(sentence, str) or not sentence.strip()):
        raise DataError(f"{where}: 'sentence' must be a non-empty string, got {sentence!r}")
    return Segment(video_id, position, start, end, (sentence or "").strip(), subset, recipe_type)


def _video(path, video_id, record):
    where = f"{path}: video {video_id!r}"
    duration, subset, annotations = video_fields(where, record, "annotations", SUBSETS, positive_duration=True)
    recipe = str(record.get("recipe_type", ""))
    segments = _numbered(_segment(f"{where}, annotation {i}", str(video_id), i, e, subset, recipe)
                         for i, e in enumerate(annotations))
    return YouCookVideo(str(video_id), subset, recipe, duration, tuple(segments))


def _numbered(segments):
    """``segments`` with ``occurrence`` set: the n-th of its video with the same bounds, in order."""
    seen, out = {}, []
    for seg in segments:
        seen[seg.span] = seen.get(seg.span, 0) + 1
        out.append(replace(seg, occurrence=seen[seg.span]))
    return out


def read_annotations(path):
    """The videos of ``youcookii_annotations_trainval.json``: {video_id: YouCookVideo}, file order.

    DataError naming the file (and video and annotation) when it is missing, not JSON, or a
    record breaks the layout of the module docstring.
    """
    database = read_database(path, "YouCook2 annotation file")
    return {str(vid): _video(path, vid, record) for vid, record in database.items()}


def subset_segments(videos, subset):
    """Every Segment of the videos of ``subset``, in file order."""
    return [seg for video in videos.values() if video.subset == subset for seg in video.segments]


def _csv_row(path, line, row):
    where = f"{path}:{line}"
    if len(row) != len(CSV_COLUMNS):
        raise DataError(f"{where}: expected {len(CSV_COLUMNS)} fields {','.join(CSV_COLUMNS)}, got {len(row)}")
    values = dict(zip(CSV_COLUMNS, row))
    try:
        start, end = float(values["start"]), float(values["end"])
    except ValueError:
        raise DataError(f"{where}: start/end must be seconds, got {values['start']!r}, {values['end']!r}") from None
    if not 0 <= start < end < float("inf"):
        raise DataError(f"{where}: need 0 <= start < end, got start {start:g}, end {end:g}")
    video_id, text = values["video_id"].strip(), values["text"].strip()
    if not video_id:
        raise DataError(f"{where}: empty video_id")
    if not text:
        raise DataError(f"{where}: empty text (every clip needs its query sentence)")
    return Segment(video_id, -1, start, end, text, "validation", values["task"].strip())


def read_retrieval_csv(path, annotations=None):
    """The clips of MIL-NCE's ``validation_youcook.csv``: [Segment] in file order (``recipe_type``
    = the ``task`` column). With ``annotations`` ({video_id: YouCookVideo}) each row's
    ``index`` is its segment's position in the video, and a row matching no annotated segment
    is a DataError; without, ``index`` is -1.
    """
    rows = list(csv.reader(read_text(path, "YouCook2 retrieval clip list", encoding="utf-8-sig").splitlines()))
    if not rows or tuple(c.strip().lower() for c in rows[0]) != CSV_COLUMNS:
        raise DataError(f"{path}: expected the header '{','.join(CSV_COLUMNS)}' (MIL-NCE's validation_youcook.csv)")
    parsed, seen = [], {}
    for line, row in enumerate(rows[1:], start=2):
        if not any(c.strip() for c in row):
            continue
        clip = _csv_row(path, line, row)
        if (clip.span, clip.sentence) in seen:
            raise DataError(f"{path}:{line}: the clip {clip.span} ({clip.sentence!r}) is listed twice (first on "
                            f"line {seen[clip.span, clip.sentence]})")
        seen[clip.span, clip.sentence] = line
        parsed.append((line, clip))
    if not parsed:
        raise DataError(f"{path}: no clips")
    clips = _numbered(clip for _, clip in parsed)
    if annotations is not None:
        clips = [_matched(path, line, clip, annotations) for (line, _), clip in zip(parsed, clips)]
    return clips


def _matched(path, line, clip, annotations):
    """The row as its annotated segment (its index and key): the one of the same bounds and
    sentence, else the one of the same bounds and occurrence."""
    video = annotations.get(clip.video_id)
    same = [s for s in (video.segments if video else ()) if s.span == clip.span]
    found = [s for s in same if s.sentence == clip.sentence] or [s for s in same if s.occurrence == clip.occurrence]
    if not found:
        raise DataError(f"{path}:{line}: no annotated segment [{clip.start:g}, {clip.end:g}] of video "
                        f"{clip.video_id!r} in the annotation file")
    return replace(clip, index=found[0].index, subset=found[0].subset, occurrence=found[0].occurrence)
