"""The coco-caption wrapper on hand-computed cases (one Java run for all of them: the JVM start
is the cost) and its one-line errors."""

import math
import shutil

import pytest

from paddlevideo.metrics import captioning
from paddlevideo.metrics.captioning import CaptionMetricError, caption_scores, most_frequent_sentence
from paddlevideo.utils.errors import DataError

REFS = {"same": "slice the tomato", "disjoint": "add salt to the pan", "cat": "the cat sat on the mat",
        "ptb": "Stir-fry the onions.", "empty": "whisk the eggs"}
HYPS = {"same": "slice the tomato", "disjoint": "xx yy zz", "cat": "the cat on the mat",
        "ptb": "stir-fry the onions", "empty": ""}


@pytest.mark.skipif(shutil.which("java") is None, reason="needs Java (installed by .ci/run)")
def test_hand_computed_scores_in_one_corpus_call():
    totals, each = caption_scores(REFS, HYPS, per_segment=True)
    # A perfect match, and the same after PTB tokenization (case and the final "." dropped on the reference).
    for key in ("same", "ptb"):
        assert each["METEOR"][key] == pytest.approx(100.0)
        assert each["ROUGE-L"][key] == pytest.approx(100.0)
        assert each["BLEU-3"][key] == pytest.approx(100.0, abs=1e-4)
    # Disjoint words and an empty caption score zero.
    for key in ("disjoint", "empty"):
        for name in ("BLEU-1", "METEOR", "ROUGE-L", "CIDEr"):
            assert each[name][key] == pytest.approx(0.0, abs=1e-6)
    # "the cat on the mat" vs "the cat sat on the mat": 5 of 5 unigrams, 3 of 4 bigrams, 1 of 3
    # trigrams match; brevity penalty exp(1 - 6/5).
    bp = math.exp(1 - 6 / 5)
    assert each["BLEU-1"]["cat"] == pytest.approx(100 * bp, rel=1e-6)
    assert each["BLEU-2"]["cat"] == pytest.approx(100 * bp * math.sqrt(3 / 4), rel=1e-6)
    assert each["BLEU-3"]["cat"] == pytest.approx(100 * bp * (3 / 4 / 3) ** (1 / 3), rel=1e-6)
    # ROUGE-L: LCS 5, precision 1, recall 5/6, beta 1.2.
    p, r, b2 = 1.0, 5 / 6, 1.2 ** 2
    assert each["ROUGE-L"]["cat"] == pytest.approx(100 * (1 + b2) * p * r / (r + b2 * p), rel=1e-6)
    # Corpus BLEU-1 pools the counts: 3 + 3 + 5 + 3 + 0 = 14 hypothesis words ("stir-fry" is one PTB
    # token), 3 + 5 + 6 + 3 + 3 = 20 reference words, 3 + 0 + 5 + 3 + 0 = 11 clipped matches.
    assert totals["BLEU-1"] == pytest.approx(100 * 11 / 14 * math.exp(1 - 20 / 14), rel=1e-6)
    # ROUGE-L and METEOR of the corpus are the segments' mean; CIDEr-D too (its IDF from all references).
    assert totals["ROUGE-L"] == pytest.approx(sum(each["ROUGE-L"].values()) / len(REFS), rel=1e-9)
    assert totals["CIDEr"] == pytest.approx(sum(each["CIDEr"].values()) / len(REFS), rel=1e-9)
    assert each["CIDEr"]["same"] > each["CIDEr"]["cat"] > 0


def test_without_java_one_line_names_what_is_missing(monkeypatch):
    monkeypatch.setattr(captioning.shutil, "which", lambda name: None)
    with pytest.raises(CaptionMetricError, match=r"need Java .*'java' is not on the PATH: install a Java runtime"):
        caption_scores(REFS, HYPS)


def test_mismatched_keys_and_empty_references_are_refused():
    with pytest.raises(DataError, match="1 without a caption, e.g. \\['cat'\\]; 0 without a reference"):
        caption_scores({"cat": "x", "dog": "y"}, {"dog": "y"})
    with pytest.raises(DataError, match="segment 'dog' has an empty reference"):
        caption_scores({"dog": "  "}, {"dog": "y"})
    with pytest.raises(DataError, match="no segments"):
        caption_scores({}, {})


def test_most_frequent_sentence_first_met_on_ties():
    assert most_frequent_sentence(["b", "a", "a", "b", "c"]) == "b"
    assert most_frequent_sentence(["c", "a", "a"]) == "a"
    with pytest.raises(DataError):
        most_frequent_sentence([])
