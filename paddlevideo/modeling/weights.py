"""Loading weights files into the backbone or the whole model, with one clear report.

Two kinds of file load:
- a backbone file (``MODEL.backbone.pretrained``): keys bare (``bert.…``, ``cls.…``) or
  prefixed ``backbone.``. It may be a BERT-only initialisation (text stream and masked-LM head,
  e.g. ``bert-base-uncased.pdparams`` or ``tools/bert_to_actbert.py``'s output): the parts BERT
  has no counterpart for are then initialised from scratch and listed as such.
- a full checkpoint (``-w``): every backbone key must be present; the framework's own
  parameters (a task head) are loaded when the file holds them, else left initialised.
Any other missing key, and any shape mismatch, is a WeightsError naming the key(s).
"""

import os
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import paddle

from ..utils.errors import WeightsError
from ..utils.logger import get_logger

PREFIX = "backbone."
# Parameters a BERT checkpoint has no counterpart for: the region and action streams, the
# connection layers, the poolers (BERT's pooler is hidden -> hidden, ActBERT's hidden -> bi_hidden)
# and the heads other than the masked-LM one.
SCRATCH_PREFIXES = (
    "bert.v_embeddings.", "bert.a_embeddings.", "bert.encoder.v_layer.", "bert.encoder.a_layer.",
    "bert.encoder.c_layer.", "bert.t_pooler.", "bert.v_pooler.", "bert.a_pooler.",
    "cls.seq_relationship.", "cls.imagePredictions.", "cls.actionPredictions.",
)
# One tensor stored under two names: the LM decoder is tied to the word embeddings.
TIED = ("bert.embeddings.word_embeddings.weight", "cls.predictions.decoder_weight")
SHOWN = 5  # keys named in a one-line message


@dataclass
class LoadReport:
    """What a load did: keys loaded, initialised from scratch, and ignored."""

    path: str
    loaded: list = field(default_factory=list)
    scratch: list = field(default_factory=list)
    unexpected: list = field(default_factory=list)

    def summary(self):
        parts = [f"loaded {len(self.loaded)} tensors from {self.path}"]
        if self.scratch:
            groups = Counter(next(p for p in SCRATCH_PREFIXES if k.startswith(p)) for k in self.scratch)
            listed = ", ".join(f"{p}* ({n})" for p, n in groups.items())
            parts.append(f"initialised from scratch (absent from a BERT-only initialisation): {listed}")
        if self.unexpected:
            parts.append(f"ignored {len(self.unexpected)} keys the model does not have: {_names(self.unexpected)}")
        return "; ".join(parts)


def _names(keys):
    shown = ", ".join(f"'{k}'" for k in keys[:SHOWN])
    return shown + (f" and {len(keys) - SHOWN} more" if len(keys) > SHOWN else "")


def read_state_dict(path):
    """A Paddle state dict file -> {name: np.ndarray}; WeightsError if it is not one."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise WeightsError(f"weights file not found: {path}")
    try:
        state = paddle.load(path, return_numpy=True)
    except Exception as exc:  # paddle.load raises many types on foreign files; all mean "not ours"
        raise WeightsError(f"{path} is not a Paddle state dict ({type(exc).__name__}: {exc})") from None
    if not isinstance(state, dict) or not state:
        raise WeightsError(f"{path} is not a Paddle state dict (holds a {type(state).__name__})")
    bad = [k for k, v in state.items() if not isinstance(k, str) or not isinstance(v, np.ndarray)]
    if bad:
        raise WeightsError(
            f"{path} is not a model state dict: entry '{bad[0]}' is not a tensor (an optimizer .pdopt file?)"
        )
    return state


def strip_prefix(state):
    """Drop the ``backbone.`` prefix of a full checkpoint's keys (bare keys pass through)."""
    return {k[len(PREFIX):] if k.startswith(PREFIX) else k: v for k, v in state.items()}


def describe_checkpoint(path):
    """What a weights file is: "full" (``backbone.`` keys), "backbone" (bare keys, every stream),
    "bert" (bare keys of a BERT-only initialisation: no region/action streams), "optimizer"
    (a .pdopt), or "unknown". WeightsError if the file cannot be read at all."""
    path = os.fspath(path)
    try:
        state = read_state_dict(path)
    except WeightsError:
        raw = _load_raw(path)
        if isinstance(raw, dict) and raw:
            return "optimizer"
        raise
    keys = list(state)
    # a full checkpoint: the backbone's keys prefixed, maybe beside a framework's own layers (a task
    # head, a caption decoder), never bare bert./cls. ones
    if any(k.startswith(PREFIX) for k in keys) and not any(k.startswith(("bert.", "cls.")) for k in keys):
        return "full"
    if not all(k.startswith(("bert.", "cls.")) for k in keys):
        return "unknown"
    if any(k.startswith("bert.v_embeddings.") for k in keys):
        return "backbone"
    return "bert" if any(k.startswith("bert.embeddings.") for k in keys) else "unknown"


def _load_raw(path):
    try:
        return paddle.load(path, return_numpy=True)
    except Exception:  # same reason as in read_state_dict
        return None


def _tie(state, path):
    """Fill the missing name of the tied decoder/word-embedding pair; both present must agree."""
    present = [k for k in TIED if k in state]
    if len(present) == 1:
        other = TIED[1 - TIED.index(present[0])]
        state[other] = state[present[0]]
    elif len(present) == 2 and not np.array_equal(state[TIED[0]], state[TIED[1]]):
        raise WeightsError(
            f"{path}: '{TIED[0]}' and '{TIED[1]}' differ, but the model ties them (one tensor)"
        )


def match_state(layer, state, path, allow_scratch):
    """Check ``state`` against ``layer.state_dict()``; return (arrays to load, LoadReport)."""
    _tie(state, path)
    expected = layer.state_dict()
    missing = [k for k in expected if k not in state]
    scratch = [k for k in missing if allow_scratch and k.startswith(SCRATCH_PREFIXES)]
    missing = [k for k in missing if k not in scratch]
    mismatched = [
        f"'{k}' file {list(state[k].shape)} vs model {list(p.shape)}"
        for k, p in expected.items()
        if k in state and list(state[k].shape) != list(p.shape)
    ]
    problems = []
    if missing:
        hint = ""
        if allow_scratch and any(k.startswith("cls.predictions.") for k in missing):
            hint = " (a BERT without its masked-LM head: convert it with tools/bert_to_actbert.py --new-lm-head)"
        problems.append(f"{len(missing)} missing key(s): {_names(missing)}{hint}")
    if mismatched:
        more = f"; and {len(mismatched) - SHOWN} more" if len(mismatched) > SHOWN else ""
        shown = "; ".join(mismatched[:SHOWN]) + more
        problems.append(f"shape mismatch: {shown}")
    if problems:
        raise WeightsError(f"{path} does not fit the model: " + "; ".join(problems))
    arrays = {k: state[k].astype(str(expected[k].dtype).replace("paddle.", "")) for k in expected if k in state}
    report = LoadReport(path, loaded=list(arrays), scratch=scratch, unexpected=[k for k in state if k not in expected])
    return arrays, report


def load_backbone_weights(backbone, path):
    """Load a backbone file (bare or ``backbone.`` keys) into ``backbone``; returns a LoadReport.

    Keys a BERT-only initialisation lacks are kept at their initial values and listed."""
    arrays, report = match_state(backbone, strip_prefix(read_state_dict(path)), os.fspath(path), allow_scratch=True)
    _assign(backbone, arrays)
    get_logger().info(report.summary())
    return report


def load_model_weights(model, path):
    """Load a full checkpoint (``backbone.`` keys; bare keys accepted) into a framework model.

    Every backbone key must be present: a BERT-only file belongs in MODEL.backbone.pretrained.
    The framework's own parameters (a task head or caption decoder beside the backbone, e.g.
    ``head.weight``) are loaded when the file holds them, all of them with their shapes; a file
    with none of them (a pretrained ActBERT to fine-tune from) leaves them at their initial
    values, and their names are kept in ``model.fresh_parameters`` (empty otherwise) for the
    caller. Keys outside the backbone that the model does not have are refused."""
    raw = read_state_dict(path)
    own = {k: v for k, v in raw.items() if not k.startswith((PREFIX, "bert.", "cls."))}
    state = strip_prefix({k: v for k, v in raw.items() if k not in own})
    try:
        arrays, report = match_state(model.backbone, state, os.fspath(path), allow_scratch=False)
    except WeightsError as exc:
        hint = " (a BERT-only initialisation? set MODEL.backbone.pretrained instead)" if _is_bert_only(state) else ""
        raise WeightsError(f"{exc}{hint}") from None
    heads, fresh = _framework_layers(model, own, path)
    _assign(model.backbone, arrays)
    for key, array in heads.items():
        model.state_dict()[key].set_value(array)
    model.fresh_parameters = fresh
    get_logger().info(report.summary())
    return report


def _framework_layers(model, own, path):
    """(arrays of the framework's own layers (keys outside ``backbone.``: a task head, a caption
    decoder), the names left at their initial values). Checked like the backbone's: none
    unknown, and when the file holds any of them, every one present with its shape; a file
    with none of them leaves them all initialised (fine-tuning from a pretrained ActBERT)."""
    expected = {k: p for k, p in model.state_dict().items() if not k.startswith(PREFIX)}
    unknown = [k for k in own if k not in expected]
    if unknown:
        raise WeightsError(f"{path} does not fit the model: {len(unknown)} key(s) {type(model).__name__} does not "
                           f"have: {_names(unknown)} (a checkpoint of another framework?)")
    if not own:
        if expected:
            get_logger().info("%s holds no weights for %s: initialised (fine-tuning starts them)", path,
                              _names(list(expected)))
        return {}, list(expected)
    missing = [k for k in expected if k not in own]
    mismatched = [f"'{k}' file {list(own[k].shape)} vs model {list(p.shape)}" for k, p in expected.items()
                  if k in own and list(own[k].shape) != list(p.shape)]
    if missing:
        raise WeightsError(f"{path} does not fit the model: {len(missing)} missing key(s) of "
                           f"{type(model).__name__}: {_names(missing)} (a checkpoint of another framework?)")
    if mismatched:
        raise WeightsError(f"{path} does not fit the model's own parameters: shape mismatch: "
                           f"{'; '.join(mismatched[:SHOWN])}")
    return {k: own[k].astype(str(p.dtype).replace("paddle.", "")) for k, p in expected.items()}, []


def _assign(layer, arrays):
    """Copy checked arrays into the parameters (``set_state_dict`` would warn once per key
    left out, burying the one report under hundreds of lines)."""
    state = layer.state_dict()
    for key, array in arrays.items():
        state[key].set_value(array)


def _is_bert_only(state):
    return any(k.startswith("bert.embeddings.") for k in state) and not any(
        k.startswith("bert.v_embeddings.") for k in state
    )
