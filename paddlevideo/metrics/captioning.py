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

The tokenizer and METEOR are Java programs: without ``java`` on the PATH, ``caption_scores``
raises a one-line CaptionMetricError saying so (no figure is made up).
"""

import shutil

from ..utils.errors import ActBertError, DataError

METRIC_NAMES = ("BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "METEOR", "ROUGE-L", "CIDEr")
JAVA_HINT = "install a Java runtime (e.g. apt-get install default-jre-headless)"


class CaptionMetricError(ActBertError, RuntimeError):
    """What caption scoring needs is missing (pycocoevalcap, Java)."""


def _scorers():
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
    return PTBTokenizer, Bleu, Meteor, Rouge, Cider


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
    tokenizer, bleu, meteor_cls, rouge, cider = _scorers()
    keys = sorted(references)  # a fixed order: the scorers iterate the dicts
    # Everything in one tokenizer run; ("r"|name, key) keeps the sentences apart.
    both = {("r", k): [{"caption": references[k]}] for k in keys}
    for name, hypotheses in systems.items():
        both.update({((name,), k): [{"caption": hypotheses[k] or ""}] for k in keys})
    tokens = tokenizer().tokenize(both)
    gts = {k: tokens[("r", k)] for k in keys}
    meteor, results = meteor_cls(), {}
    try:
        for name in systems:
            res = {k: [tokens[((name,), k)][0] if tokens[((name,), k)] else ""] for k in keys}
            scored = [bleu(4).compute_score(gts, res, verbose=0), meteor.compute_score(gts, res),
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
