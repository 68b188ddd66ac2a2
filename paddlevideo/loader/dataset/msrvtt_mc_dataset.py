"""MSR-VTT multiple choice (JSFusion's MC test: 2,990 videos, 5 candidate captions each).

``file_path`` may be in any of the layouts in circulation (the answer index is 0-based in all):

- JSFusion's ``MSR_MC_test.csv``: tab-separated (commas also accepted) with a header naming
  ``vid_key`` (``msr7010``, read as video ``video7010``) or ``video_id``, the candidates
  ``a1`` .. ``a5`` and ``answer``; ``key`` (if present) is the question id.
- ``msrvtt_mc_test.json`` (ClipBERT / VindLU style): a JSON list of
  ``{"video": "video7010.mp4", "caption": [5 captions], "answer": 0}``.
- ``msrvtt_mc_test.jsonl``: one JSON object per line,
  ``{"clip_name": "video7010", "options": [5 captions], "answer": 0, "qid": ...}``.

In the JSON layouts the video is read from ``video``, ``clip_name``, ``video_id`` or
``vid_key`` (a file extension such as ``.mp4`` is dropped), the candidates from
``options``, ``caption`` or ``captions``, the question id from ``qid``, ``question_id``,
``id`` or ``key`` (default: the question's position).

Candidates must be non-empty strings; two questions with one id, or with the same video and
candidates, are refused (either would be scored twice).

Video features come from ``features_path`` (an MSR-VTT-format LMDB, read as
``MSRVTTDataset`` reads it). The candidates are the dataset's queries, question after
question (``num_choices`` each), so caption ``q * num_choices + c`` is candidate c of
question q; ``answers`` int64 [N]; ``question_ids``; ``question_video`` [N] the index of
each question's video in ``video_ids``.
"""

import csv
import json
import os
import re

import numpy as np

from ...utils.errors import DataError
from ..registry import DATASETS
from .msrvtt_dataset import MSRVTTDataset

VIDEO_FIELDS = ("video", "clip_name", "video_id", "vid_key")
CANDIDATE_FIELDS = ("options", "caption", "captions")
QID_FIELDS = ("qid", "question_id", "id", "key")
VIDEO_EXTENSIONS = (".mp4", ".avi", ".webm", ".mkv")


def _video_id(value):
    """``video7010.mp4`` -> ``video7010``; JSFusion's ``msr7010`` -> ``video7010``."""
    vid = str(value).strip()
    stem, ext = os.path.splitext(vid)
    if ext.lower() in VIDEO_EXTENSIONS:
        vid = stem
    return re.sub(r"^msr(\d+)$", r"video\1", vid)


def _first(entry, fields):
    return next((entry[f] for f in fields if f in entry), None)


def _read_csv(path):
    with open(path, encoding="utf-8-sig", newline="") as f:
        text = f.read()
    delimiter = "\t" if "\t" in text.split("\n", 1)[0] else ","
    rows = list(csv.reader(text.splitlines(), delimiter=delimiter))
    header = [c.strip().lower() for c in rows[0]] if rows else []
    choices = sorted((c for c in header if re.fullmatch(r"a\d+", c)), key=lambda c: int(c[1:]))
    vid_col = "video_id" if "video_id" in header else "vid_key" if "vid_key" in header else None
    if vid_col is None or not choices or "answer" not in header:
        raise DataError(f"{path}: expected a JSFusion MC header with vid_key (or video_id), a1..a5 and answer; "
                        f"got {header}")
    questions = []
    for line, row in enumerate(rows[1:], start=2):
        if not any(c.strip() for c in row):
            continue
        if len(row) != len(header):
            raise DataError(f"{path}:{line}: expected {len(header)} fields, got {len(row)}")
        entry = dict(zip(header, row))
        questions.append((f"{path}:{line}", entry.get("key") or str(len(questions)), _video_id(entry[vid_col]),
                          [entry[c] for c in choices], entry["answer"]))
    return questions


def _read_json(path):
    with open(path, encoding="utf-8") as f:
        if path.endswith(".jsonl"):
            entries = []
            for line, text in enumerate(f, start=1):
                if text.strip():
                    try:
                        entries.append((f"{path}:{line}", json.loads(text)))
                    except json.JSONDecodeError as exc:
                        raise DataError(f"{path}:{line}: not a JSON object ({exc.msg})") from None
        else:
            try:
                data = json.load(f)
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}: not valid JSON ({exc})") from None
            if not isinstance(data, list):
                raise DataError(f"{path}: expected a JSON list of questions, got {type(data).__name__}")
            entries = [(f"{path}: question {n}", e) for n, e in enumerate(data)]
    questions = []
    for where, entry in entries:
        if not isinstance(entry, dict):
            raise DataError(f"{where}: expected an object, got {entry!r}")
        video, candidates = _first(entry, VIDEO_FIELDS), _first(entry, CANDIDATE_FIELDS)
        if video is None or candidates is None or "answer" not in entry:
            raise DataError(f"{where}: needs a video ({'/'.join(VIDEO_FIELDS)}), candidates "
                            f"({'/'.join(CANDIDATE_FIELDS)}) and 'answer'; got keys {', '.join(entry)}")
        if not isinstance(candidates, list):
            raise DataError(f"{where}: the candidates must be a list of captions, got {candidates!r}")
        qid = _first(entry, QID_FIELDS)
        questions.append((where, str(len(questions) if qid is None else qid), _video_id(video), candidates,
                          entry["answer"]))
    return questions


def read_mc_questions(path):
    """[(where, question id, video id, [candidate captions], answer index)] of an MC file."""
    if not os.path.isfile(path):
        raise DataError(f"file_path (the MSR-VTT multiple-choice file) not found: '{path}'")
    questions = _read_json(path) if path.endswith((".json", ".jsonl")) else _read_csv(path)
    if not questions:
        raise DataError(f"{path}: no questions")
    count = len(questions[0][3])
    for where, _, _, candidates, answer in questions:
        if len(candidates) != count or count < 2:
            raise DataError(f"{where}: {len(candidates)} candidates, expected {max(count, 2)} as in the first question")
        for c, candidate in enumerate(candidates):
            if not isinstance(candidate, str):
                raise DataError(f"{where}: candidate {c} must be a caption string, got {type(candidate).__name__} "
                                f"{candidate!r:.60}")
            if not candidate.strip():
                raise DataError(f"{where}: candidate {c} is an empty caption")
        try:
            index = int(answer)
        except (TypeError, ValueError):
            raise DataError(f"{where}: answer {answer!r} is not an index") from None
        if str(answer).strip() != str(index) or not 0 <= index < count:
            raise DataError(f"{where}: answer index {answer!r} is out of range 0..{count - 1}")
    _refuse_repeats(questions)
    return questions


def _refuse_repeats(questions):
    """DataError naming both places when two questions share an id, or repeat the same video and
    candidates (a repeated question would count twice in the accuracy)."""
    seen_ids, seen_questions = {}, {}
    for where, qid, video, candidates, _ in questions:
        first = seen_ids.setdefault(qid, where)
        if first != where:
            raise DataError(f"{where}: question id '{qid}' repeats that of {first}; question ids must be unique")
        key = (video, tuple(c.strip() for c in candidates))
        first = seen_questions.setdefault(key, where)
        if first != where:
            raise DataError(f"{where}: repeats the question of {first} (video '{video}', the same candidates); "
                            "each question must appear once")


@DATASETS.register()
class MSRVTTMCDataset(MSRVTTDataset):
    """MSR-VTT multiple-choice questions: each video against its candidate captions.

    Takes ``MSRVTTDataset``'s arguments (``file_path`` is the MC file, any layout above).
    """

    default_metric = "MSRVTTMCMetric"

    def _read_queries(self):
        questions = read_mc_questions(self.file_path)
        self.num_choices = len(questions[0][3])
        self.question_ids = [q[1] for q in questions]
        self._where = [q[0] for q in questions]
        self.answers = np.array([int(q[4]) for q in questions], dtype=np.int64)
        query_videos = [q[2] for q in questions for _ in range(self.num_choices)]
        captions = [str(c).strip() for q in questions for c in q[3]]
        return query_videos, captions

    def _check_videos_present(self, query_videos):
        with self._open().begin(buffers=True) as txn:
            for q in range(self.num_questions):
                vid = query_videos[q * self.num_choices]
                if txn.get(vid.encode("utf-8")) is None:
                    raise DataError(f"{self._where[q]} (question id '{self.question_ids[q]}') names video '{vid}', "
                                    f"which is not in the features LMDB '{self.features_path}'")

    @property
    def num_questions(self):
        return len(self.answers)

    @property
    def question_video(self):
        """Index in ``video_ids`` of each question's video: int64 [N]."""
        return self.query_video_index[:: self.num_choices]

    def pairs(self):
        """(candidate caption, video) of every candidate, question after question: int64 [N * C, 2]."""
        return np.stack([np.arange(self.num_queries), self.query_video_index], axis=1)

    def __repr__(self):
        return (f"MSRVTTMCDataset({self.num_questions} questions x {self.num_choices} candidates, "
                f"{self.num_videos} videos, file_path='{self.file_path}')")
