"""Caption metrics as papers print them: coco-caption (``pycocoevalcap``) BLEU-1..4, METEOR 1.5,
ROUGE-L and CIDEr-D, x100, in one corpus-level call over all segments.

Protocol (the YouCook2 leaderboard's micro level):
- one reference per segment (the annotation's own sentence, not a decoded or length-capped
  one) and one generated caption per segment;
- both sides go through the Stanford PTB tokenizer bundled with pycocoevalcap (lower case,
  punctuation tokens dropped) before scoring;
- every score comes from ONE call over the whole evaluated set: CIDEr-D's document
  frequencies are computed from the references passed in, so scoring in chunks and
  averaging gives other figures;
- SPICE is left out (it downloads Stanford CoreNLP models at first use).

``YouCook2CaptionMetric`` (``METRIC.name``) collects the generated captions of a test and
writes ``caption_metrics.json`` and ``captions.csv`` (video_id, segment, start, end,
reference, generated), with the trivial captioner scored beside the model.

The tokenizer and METEOR are Java programs: without ``java`` on the PATH, ``caption_scores``
raises a one-line CaptionMetricError saying so (no figure is made up).
"""

import csv
import inspect
import io
import json
import os
import shutil
import subprocess

from ..utils.errors import ActBertError, DataError
from ..utils.logger import get_logger
from ..utils.outfile import atomic_output
from .registry import METRICS

METRIC_NAMES = ("BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "METEOR", "ROUGE-L", "CIDEr")
METRICS_FILE, CAPTIONS_FILE = "caption_metrics.json", "captions.csv"
CSV_HEADER = ("video_id", "segment", "start", "end", "reference", "generated")
PROTOCOL = ("pycocoevalcap 1.2: BLEU-1..4, METEOR 1.5, ROUGE-L, CIDEr-D; PTB-tokenized generated and reference "
            "sentences; one corpus-level call over all segments; micro level (one reference per segment, the "
            "annotation's own sentence); x100")
JAVA_HINT = "install a Java runtime (e.g. apt-get install default-jre-headless)"


class CaptionMetricError(ActBertError, RuntimeError):
    """What caption scoring needs is missing (pycocoevalcap, Java)."""


def scoring_tools():
    """pycocoevalcap's tokenizer and scorer classes; CaptionMetricError when it or Java is missing."""
    try:
        from pycocoevalcap.bleu.bleu import Bleu
        from pycocoevalcap.cider.cider import Cider
        from pycocoevalcap.meteor.meteor import Meteor
        from pycocoevalcap.rouge.rouge import Rouge
        from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer
    except ImportError:
        raise CaptionMetricError("caption metrics need the package pycocoevalcap (pip install pycocoevalcap)") from None
    if shutil.which("java") is None:
        raise CaptionMetricError(f"caption metrics need Java for pycocoevalcap's PTB tokenizer and METEOR, and "
                                 f"'java' is not on the PATH: {JAVA_HINT}")
    folder = os.path.dirname(inspect.getfile(PTBTokenizer))
    if not os.access(folder, os.W_OK):  # it writes its input to a temporary file there
        raise CaptionMetricError(f"pycocoevalcap's PTB tokenizer writes a temporary file in {folder}, which this "
                                 "user cannot write: install pycocoevalcap where you can write (a virtual environment)")
    return PTBTokenizer, Bleu, Meteor, Rouge, Cider


def _tokenize(tokenizer, sentences):
    """pycocoevalcap's PTB tokenization of {key: [{"caption"}]}; CaptionMetricError if Java failed
    (the tokenizer then returns fewer lines than it was given)."""
    try:
        tokens = tokenizer().tokenize(sentences)
    except (OSError, ValueError) as exc:
        raise CaptionMetricError(f"pycocoevalcap's PTB tokenizer (Java) failed: {exc}") from None
    if set(tokens) != set(sentences):
        raise CaptionMetricError(f"pycocoevalcap's PTB tokenizer (Java) returned {len(tokens)} of "
                                 f"{len(sentences)} sentences: check that 'java -version' runs")
    return tokens


def _meteor_failed(meteor, exc):
    """CaptionMetricError for a METEOR process that died (out of memory: it asks for -Xmx2G)."""
    process = getattr(meteor, "meteor_p", None)
    said = ""
    if process is not None and process.poll() is not None and process.stderr:
        said = process.stderr.read().decode("utf-8", "replace").strip().splitlines()[-1:] or ""
        said = f": {said[0]}" if said else ""
    return CaptionMetricError(f"pycocoevalcap's METEOR (Java, meteor-1.5.jar with -Xmx2G) failed "
                              f"({type(exc).__name__}){said}")


def _check(references, hypotheses):
    if not references:
        raise DataError("caption metrics: no segments to score")
    if set(references) != set(hypotheses):
        missing = sorted(set(references) - set(hypotheses))
        extra = sorted(set(hypotheses) - set(references))
        raise DataError(f"caption metrics: the generated captions and the references name different segments "
                        f"({len(missing)} without a caption, e.g. {missing[:1]}; {len(extra)} without a "
                        f"reference, e.g. {extra[:1]})")
    for key, text in references.items():
        if not isinstance(text, str) or not text.strip():
            raise DataError(f"caption metrics: segment {key!r} has an empty reference")


def caption_scores(references, hypotheses, per_segment=False):
    """references, hypotheses: {segment key: sentence} (same keys) -> {metric: score x 100}
    (METRIC_NAMES), from one corpus-level call. An empty generated caption scores zero
    against its reference (it is kept, not dropped). With ``per_segment`` also
    {metric: {key: score x 100}} (BLEU per segment is pycocoevalcap's sentence-level one).
    """
    result = score_systems(references, {"": hypotheses})[""]
    return result if per_segment else result[0]


def score_systems(references, systems):
    """``caption_scores`` of several captioners against the same references, each its own corpus
    call, sharing one tokenizer run and one METEOR process (the JVM starts are the cost):
    {name: (totals, per segment)} for systems {name: {segment key: sentence}}."""
    for hypotheses in systems.values():
        _check(references, hypotheses)
    tokenizer, bleu, meteor_cls, rouge, cider = scoring_tools()
    keys = sorted(references)  # a fixed order: the scorers iterate the dicts
    # Everything in one tokenizer run; ("r"|name, key) keeps the sentences apart.
    both = {("r", k): [{"caption": references[k]}] for k in keys}
    for name, hypotheses in systems.items():
        both.update({((name,), k): [{"caption": hypotheses[k] or ""}] for k in keys})
    tokens = _tokenize(tokenizer, both)
    gts = {k: tokens[("r", k)] for k in keys}
    meteor, results = meteor_cls(), {}
    try:
        for name in systems:
            res = {k: [tokens[((name,), k)][0] if tokens[((name,), k)] else ""] for k in keys}
            try:
                meteor_scored = meteor.compute_score(gts, res)
            except (OSError, ValueError) as exc:  # a dead process: a broken pipe, or '' read as a score
                raise _meteor_failed(meteor, exc) from None
            scored = [bleu(4).compute_score(gts, res, verbose=0), meteor_scored,
                      rouge().compute_score(gts, res), cider().compute_score(gts, res)]
            values = list(scored[0][0]) + [s[0] for s in scored[1:]]
            each = list(scored[0][1]) + [s[1] for s in scored[1:]]
            per_segment = {n: {k: 100.0 * float(v) for k, v in zip(keys, per)} for n, per in zip(METRIC_NAMES, each)}
            results[name] = ({n: 100.0 * float(v) for n, v in zip(METRIC_NAMES, values)}, per_segment)
    finally:
        _close(meteor)
    return results


def _close(meteor):
    """End METEOR's Java process (pycocoevalcap 1.2 leaves it running)."""
    process = getattr(meteor, "meteor_p", None)
    if process is not None and process.poll() is None:
        for stream in (process.stdin, process.stdout, process.stderr):
            if stream:
                stream.close()
        process.kill()
        process.wait()


def most_frequent_sentence(sentences):
    """The trivial captioner's output: the most frequent of ``sentences`` (ties: first met)."""
    counts = {}
    for s in sentences:
        counts[s] = counts.get(s, 0) + 1
    if not counts:
        raise DataError("no training sentences for the most-frequent-sentence baseline")
    return max(counts, key=counts.get)


def format_table(systems):
    """{name: {metric: score}} -> the metrics as rows, one column per captioner (side by side)."""
    names = list(systems)
    widths = [max(10, len(n) + 3) for n in names]
    lines = [f"{'':8s}" + "".join(f"{n:>{w}s}" for n, w in zip(names, widths))]
    lines += [f"{m:8s}" + "".join(f"{systems[n][m]:{w}.2f}" for n, w in zip(names, widths)) for m in METRIC_NAMES]
    return "\n".join(lines)


def _java_version():
    """``java -version``'s first line, or None (recorded beside the figures)."""
    try:
        done = subprocess.run(["java", "-version"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return None
    lines = (done.stderr or done.stdout).strip().splitlines()
    return lines[0] if lines else None


def write_caption_outputs(output_dir, rows, report):
    """``caption_metrics.json`` (``report`` + the Java version) and ``captions.csv``: one row per
    segment (video_id, segment, start, end, reference, generated) in ``output_dir``, atomically."""
    os.makedirs(output_dir, exist_ok=True)
    report = {**report, "java": _java_version()}
    with atomic_output(os.path.join(output_dir, METRICS_FILE), "output_dir") as f:
        f.write((json.dumps(report, indent=1) + "\n").encode("utf-8"))
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(CSV_HEADER)
    writer.writerows(rows)
    with atomic_output(os.path.join(output_dir, CAPTIONS_FILE), "output_dir") as f:
        f.write(text.getvalue().encode("utf-8"))


@METRICS.register()
class YouCook2CaptionMetric:
    """``METRIC: {name: YouCook2CaptionMetric, batch_size, beam_size, baseline}``: coco-caption
    scores of generated captions (the evaluator reads ``batch_size``, ``beam_size`` and
    ``baseline``; ``data_size``, ``log_interval``: PaddleVideo's builder keys, unused).

    Set by the evaluator before ``accumulate``: ``segments`` [(key, video_id, index, start,
    end, reference)] of the evaluated set, in order; ``baseline_sentence``: given to every
    segment (the trivial captioner, scored in the same Java run) or None; ``settings``: what
    the report records of the run. ``update(keys, captions)`` per batch, then
    ``accumulate()`` -> {metric: score x100}; with ``output_dir`` it writes
    ``caption_metrics.json`` and ``captions.csv``.
    """

    def __init__(self, data_size=None, batch_size=None, log_interval=1, output_dir=None, beam_size=None,
                 baseline=True):
        self.output_dir, self.segments, self.baseline_sentence, self.settings = output_dir, [], None, {}
        self.generated = {}

    def update(self, keys, captions):
        self.generated.update(zip(keys, captions))

    def accumulate(self):
        references = {s[0]: s[5] for s in self.segments}
        systems = {"model": self.generated}
        if self.baseline_sentence is not None:
            systems["most frequent training sentence"] = {k: self.baseline_sentence for k in references}
        scored = {name: totals for name, (totals, _) in score_systems(references, systems).items()}
        get_logger().info("YouCook2 captioning, %d segments (coco-caption, PTB-tokenized, x100):\n%s",
                          len(references), format_table(scored))
        if self.output_dir:
            report = {"metrics": scored["model"], "segments": len(references), "protocol": PROTOCOL,
                      "baseline_most_frequent_sentence": scored.get("most frequent training sentence"),
                      "baseline_sentence": self.baseline_sentence,
                      "empty_captions": sum(not self.generated[k] for k in references), **self.settings}
            rows = [(vid, index, f"{start:g}", f"{end:g}", ref, self.generated[key])
                    for key, vid, index, start, end, ref in self.segments]
            write_caption_outputs(self.output_dir, rows, report)
            get_logger().info("captions and metrics written to %s", self.output_dir)
        return scored["model"]
