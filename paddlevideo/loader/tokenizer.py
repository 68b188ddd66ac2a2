"""BERT (uncased) WordPiece tokenizer, built on the ``tokenizers`` library.

The published ActBERT weights were trained on ids from paddlenlp's ``BertTokenizer``
over bert-base-uncased's ``vocab.txt``. This module reproduces those ids exactly
(checked on 1031 reference lines, see ``tests/loader/test_tokenizer.py``) without
depending on paddlenlp:

- normalisation: drop control characters and U+FFFD, map whitespace to a space, put
  spaces around CJK ideographs, lower-case, strip accents (NFD, drop Mn marks);
- pre-tokenisation: split on whitespace, and isolate every punctuation character
  (ASCII non-alphanumerics, Unicode P*) and every symbol (Unicode S*: currency, emoji,
  math, plus a few letters paddlenlp lists as symbols, e.g. ``²`` ``µ``), as paddlenlp's
  BasicTokenizer does (Hugging Face's BERT does not split symbols: ``€20`` differs);
- WordPiece: greedy longest-match-first with ``##`` continuations, a word longer than
  100 characters or with no segmentation becomes ``[UNK]``;
- the special-token strings (``[CLS]`` ...) written in upper case in the text are kept
  as one token each (paddlenlp treats them as "no split" tokens, and so does an added
  special token of ``tokenizers``).

The vocabulary is never downloaded: the user points ``vocab_file`` at a ``vocab.txt``.
Special-token ids are read from that file, so a small demo vocabulary may place them
anywhere.
"""

import functools
from pathlib import Path

import numpy as np
from tokenizers import AddedToken, Regex, Tokenizer, pre_tokenizers
from tokenizers.decoders import WordPiece as WordPieceDecoder
from tokenizers.models import WordPiece
from tokenizers.normalizers import BertNormalizer

from ..utils.errors import ConfigError, DataError

SPECIAL_TOKENS = {"pad": "[PAD]", "unk": "[UNK]", "cls": "[CLS]", "sep": "[SEP]", "mask": "[MASK]"}
# BERT's WordPiece gives up on longer words (they become [UNK]); paddlenlp uses the same limit.
MAX_CHARS_PER_WORD = 100
# Characters that become words of their own beyond what BertPreTokenizer splits off:
# - paddlenlp's "symbols": Unicode category S*, and the code points it lists explicitly
#   (soft hyphen, superscript two, masculine ordinal, ideographic zero, micro sign,
#   O with stroke, eng, upsilon);
# - CJK Unified Ideographs Extension E (U+2B820-U+2CEAF), which paddlenlp spaces out
#   like other CJK ideographs but BertNormalizer's CJK table omits.
_ISOLATED = Regex(
    r"[\p{S}\x{00AD}\x{00B2}\x{00BA}\x{3007}\x{00B5}\x{00D8}\x{014B}\x{01B1}\x{2B820}-\x{2CEAF}]"
)

_MISSING_VOCAB_HINT = (
    "point `vocab_file` at bert-base-uncased's vocab.txt (30522 lines; the one the published "
    "weights use), or at data/demo/vocab.txt for the demo; nothing is downloaded"
)


def first_non_utf8(path):
    """Where the first byte of ``path`` that is not UTF-8 is, as 'line N: byte 0xXX' (for messages)."""
    with open(path, "rb") as f:
        raw = f.read()
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        return f"line {line}: byte 0x{raw[exc.start]:02x}"
    return "no bad byte found on re-reading"


def read_vocab(vocab_file):
    """Token -> id from a ``vocab.txt`` (one token per line, id = line number).

    Like paddlenlp, a token listed twice keeps its last line number.
    Returns (dict, number_of_lines).
    """
    path = Path(vocab_file)
    if not path.is_file():
        raise ConfigError(f"vocab_file not found: '{vocab_file}'; {_MISSING_VOCAB_HINT}")
    try:
        with open(path, encoding="utf-8") as f:
            # Only the line terminator is stripped: tokens are compared verbatim.
            lines = [line.rstrip("\r\n") for line in f]
    except UnicodeDecodeError:
        raise DataError(f"vocab_file '{vocab_file}' is not UTF-8 text ({first_non_utf8(path)}); "
                        f"{_MISSING_VOCAB_HINT}") from None
    if not lines:
        raise DataError(f"vocab_file '{vocab_file}' is empty; {_MISSING_VOCAB_HINT}")
    return {token: i for i, token in enumerate(lines)}, len(lines)


class BertTokenizer:
    """Lower-casing BERT WordPiece tokenizer over a user-given ``vocab.txt``.

    Attributes: ``vocab_size`` (number of vocabulary lines), ``pad_id``, ``unk_id``,
    ``cls_id``, ``sep_id``, ``mask_id`` (ids of ``[PAD]`` ... in that file),
    ``vocab_file``.
    """

    def __init__(self, vocab_file):
        self.vocab_file = str(vocab_file)
        vocab, self.vocab_size = read_vocab(vocab_file)
        missing = [tok for tok in SPECIAL_TOKENS.values() if tok not in vocab]
        if missing:
            raise DataError(
                f"vocab_file '{vocab_file}' lacks the special token(s) {', '.join(missing)}; "
                f"expected a BERT vocabulary with [PAD] [UNK] [CLS] [SEP] [MASK]; {_MISSING_VOCAB_HINT}"
            )
        for role, token in SPECIAL_TOKENS.items():
            setattr(self, f"{role}_id", vocab[token])
        self._vocab = vocab
        self._tok = self._build(vocab)

    @staticmethod
    def _build(vocab):
        tok = Tokenizer(WordPiece(vocab, unk_token="[UNK]", max_input_chars_per_word=MAX_CHARS_PER_WORD))
        # strip_accents=None follows `lowercase`, as BERT uncased does.
        tok.normalizer = BertNormalizer(clean_text=True, handle_chinese_chars=True, strip_accents=None, lowercase=True)
        tok.pre_tokenizer = pre_tokenizers.Sequence(
            [pre_tokenizers.BertPreTokenizer(), pre_tokenizers.Split(_ISOLATED, behavior="isolated")]
        )
        tok.decoder = WordPieceDecoder(prefix="##")
        # Special tokens match the raw (un-normalised) text, case-sensitively, and are
        # never split: "[CLS]" stays one token while "[cls]" is ordinary text.
        tok.add_special_tokens([AddedToken(t, normalized=False, special=True) for t in SPECIAL_TOKENS.values()])
        return tok

    def tokenize(self, text):
        """WordPiece tokens of ``text`` (list[str]), without [CLS]/[SEP]."""
        return self._tok.encode(text, add_special_tokens=False).tokens

    def encode(self, text):
        """Token ids of ``text`` (list[int]), without [CLS]/[SEP]."""
        return self._tok.encode(text, add_special_tokens=False).ids

    def unknown_words(self, text):
        """The words of ``text`` (as written there) that the vocabulary does not cover: each
        piece read as ``[UNK]``, in order (list[str])."""
        enc = self._tok.encode(text, add_special_tokens=False)
        return [text[start:end] for i, (start, end) in zip(enc.ids, enc.offsets) if i == self.unk_id]

    def encode_batch(self, texts):
        """``encode`` of each text (list[list[int]]); runs in parallel inside ``tokenizers``."""
        return [enc.ids for enc in self._tok.encode_batch(list(texts), add_special_tokens=False)]

    def convert_tokens_to_ids(self, tokens):
        """Ids of ``tokens``; a token not in the vocabulary gives ``unk_id``."""
        return [self._vocab.get(t, self.unk_id) for t in tokens]

    def decode(self, ids):
        """Text of ``ids`` (``##`` pieces joined), special tokens included."""
        return self._tok.decode(list(ids), skip_special_tokens=False)

    def build_input(self, text, max_len):
        """BERT single-sentence input ``[CLS] tokens [SEP]`` padded to ``max_len``.

        Tokens beyond ``max_len - 2`` are dropped (as the reference does).
        Returns ``(ids, mask, type_ids)``, each int64 ``[max_len]``: mask is 1 on
        [CLS], tokens and [SEP], 0 on padding (``pad_id``); type ids are all 0.
        """
        return self.build_input_ids(self.encode(text), max_len)

    def build_input_ids(self, token_ids, max_len):
        """``build_input`` from already encoded ``token_ids`` (list[int])."""
        if max_len < 2:
            raise ConfigError(f"max_seq_length must be at least 2 (room for [CLS] and [SEP]), got {max_len}")
        body = [self.cls_id, *token_ids[: max_len - 2], self.sep_id]
        ids = np.full(max_len, self.pad_id, dtype=np.int64)
        ids[: len(body)] = body
        mask = np.zeros(max_len, dtype=np.int64)
        mask[: len(body)] = 1
        return ids, mask, np.zeros(max_len, dtype=np.int64)

    def __repr__(self):
        return f"BertTokenizer(vocab_file='{self.vocab_file}', vocab_size={self.vocab_size})"


@functools.lru_cache(maxsize=8)
def _load_resolved(path, mtime_ns):
    return BertTokenizer(path)


def load_tokenizer(vocab_file):
    """The process-wide ``BertTokenizer`` of ``vocab_file`` (built once, then cached).

    The cache key includes the file's modification time, so a rewritten vocabulary
    (e.g. regenerated demo data) is picked up.
    """
    if vocab_file is None or str(vocab_file) == "":
        raise ConfigError(f"no vocab_file given; {_MISSING_VOCAB_HINT}")
    path = Path(vocab_file).expanduser()
    if not path.is_file():
        raise ConfigError(f"vocab_file not found: '{vocab_file}'; {_MISSING_VOCAB_HINT}")
    path = path.resolve()
    return _load_resolved(str(path), path.stat().st_mtime_ns)
