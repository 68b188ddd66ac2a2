"""The WordPiece tokenizer against paddlenlp's ids (the ids the published weights saw)."""

import json
import unicodedata

import numpy as np
import pytest

from paddlevideo.loader.tokenizer import BertTokenizer, load_tokenizer
from paddlevideo.utils.errors import ConfigError, DataError


@pytest.fixture(scope="module")
def tok(vocab_file):
    return load_tokenizer(vocab_file)


@pytest.fixture(scope="module")
def golden(golden_dir):
    path = golden_dir / "tokenizer" / "paddlenlp_bert_uncased.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_every_golden_line_matches_paddlenlp(tok, golden):
    assert len(golden) == 1031
    bad = [(r["text"][:60], r["tokens"], tok.tokenize(r["text"])) for r in golden
           if tok.encode(r["text"]) != r["ids"] or tok.tokenize(r["text"]) != r["tokens"]]
    assert not bad, bad[:5]
    batch = tok.encode_batch([r["text"] for r in golden])
    assert batch == [r["ids"] for r in golden]


def test_special_ids_come_from_the_vocab_file(tok, tmp_path):
    ids = (tok.pad_id, tok.unk_id, tok.cls_id, tok.sep_id, tok.mask_id, tok.vocab_size)
    assert ids == (0, 100, 101, 102, 103, 30522)
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "tomato", "[SEP]", "[MASK]", "a", "[CLS]", "[UNK]", "##es", "!"]) + "\n")
    small = BertTokenizer(vocab)
    assert (small.pad_id, small.unk_id, small.cls_id, small.sep_id, small.mask_id) == (0, 6, 5, 2, 3)
    assert small.vocab_size == 9
    assert small.tokenize("A Tomatoes! pear") == ["a", "tomato", "##es", "!", "[UNK]"]
    ids, mask, types = small.build_input("a tomato", 6)
    assert ids.tolist() == [5, 4, 1, 2, 0, 0] and mask.tolist() == [1, 1, 1, 1, 0, 0]
    assert ids.dtype == mask.dtype == types.dtype == np.int64 and not types.any()


def test_build_input_truncates_to_max_len(tok):
    ids, mask, _ = tok.build_input("the " * 50, 36)
    assert ids.shape == (36,) and ids[0] == 101 and ids[35] == 102 and mask.all()
    ids, mask, _ = tok.build_input("", 8)
    assert ids.tolist() == [101, 102, 0, 0, 0, 0, 0, 0] and mask.sum() == 2


def test_special_token_strings_only_in_upper_case(tok):
    assert tok.tokenize("a [MASK] b") == ["a", "[MASK]", "b"]
    assert tok.tokenize("[mask]") == ["[", "mask", "]"]


def test_missing_vocab_is_a_config_error_pointing_at_bert_vocab(tmp_path):
    with pytest.raises(ConfigError, match="point `vocab_file` at bert-base-uncased's vocab.txt"):
        load_tokenizer(tmp_path / "nope.txt")
    with pytest.raises(ConfigError, match="vocab_file"):
        load_tokenizer(None)
    bad = tmp_path / "v.txt"
    bad.write_text("[PAD]\n[UNK]\nhello\n")
    with pytest.raises(DataError, match=r"lacks the special token\(s\) \[CLS\], \[SEP\], \[MASK\]"):
        BertTokenizer(bad)


def test_load_tokenizer_is_cached(vocab_file):
    assert load_tokenizer(vocab_file) is load_tokenizer(str(vocab_file))


# --- an independent re-statement of paddlenlp 2.8's BasicTokenizer rules, used as an
# oracle over every code point (the golden file cannot cover them all).
_EXTRA_SYMBOLS = {0x00AD, 0x00B2, 0x00BA, 0x3007, 0x00B5, 0x00D8, 0x014B, 0x01B1}


def _is_split_char(ch):
    cp = ord(ch)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    cat = unicodedata.category(ch)
    return cat[0] in "PS" or cp in _EXTRA_SYMBOLS


def _is_cjk(cp):
    ranges = [(0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F), (0x2B740, 0x2B81F),
              (0x2B820, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F)]
    return any(a <= cp <= b for a, b in ranges)


def _oracle_words(text):
    out = []
    for ch in text:
        cp = ord(ch)
        if cp in (0, 0xFFFD) or (ch not in "\t\n\r" and unicodedata.category(ch).startswith("C")):
            continue
        out.append(" " if ch in " \t\n\r" or unicodedata.category(ch) == "Zs" else
                   f" {ch} " if _is_cjk(cp) else ch)
    words = []
    for word in "".join(out).split():
        word = "".join(c for c in unicodedata.normalize("NFD", word.lower()) if unicodedata.category(c) != "Mn")
        cur = ""
        for ch in word:
            if _is_split_char(ch):
                words += [cur, ch] if cur else [ch]
                cur = ""
            else:
                cur += ch
        words += [cur] if cur else []
    return " ".join(words).split()


# Blocks real captions draw from. Outside them the two disagree only on code points
# added or re-categorised in recent Unicode versions (Python 3.11 has Unicode 14; the
# tables inside `tokenizers` are older) - paddlenlp itself changes with the Python
# version there - and on unassigned code points (paddlenlp drops them, we keep them).
_COMMON_BLOCKS = [(0x0000, 0x05FF), (0x1E00, 0x2BFF), (0x3000, 0x9FFF), (0xAC00, 0xD7AF), (0xF900, 0xFFFF),
                  (0x1F000, 0x1FAFF), (0x20000, 0x2FA1F)]


def test_word_splitting_agrees_with_paddlenlp_rules_on_common_code_points(tok):
    # Words only (independent of the vocabulary): the pre-tokenised words of "x{c}y".
    norm, pre = tok._tok.normalizer, tok._tok.pre_tokenizer
    texts = [f"x{chr(cp)}y" for a, b in _COMMON_BLOCKS for cp in range(a, b + 1)
             if unicodedata.category(chr(cp)) not in ("Cn", "Cs")]
    assert len(texts) > 100_000
    mismatch = [t for t in texts if [w for w, _ in pre.pre_tokenize_str(norm.normalize_str(t))] != _oracle_words(t)]
    assert not mismatch, [hex(ord(t[1])) for t in mismatch[:20]]
