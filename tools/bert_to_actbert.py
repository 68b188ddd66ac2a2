"""Convert a Hugging Face BERT checkpoint into an ActBERT backbone file.

    python tools/bert_to_actbert.py SOURCE OUTPUT.pdparams

SOURCE is ``model.safetensors`` or ``pytorch_model.bin`` (read without torch and without running
its pickle), or a folder holding one. Keys may carry the ``bert.`` prefix (``BertForPreTraining`` checkpoints) or not
(``BertModel``). The output holds the text stream (``bert.embeddings.*``,
``bert.encoder.layer.*``) and, when the checkpoint has one, the masked-LM head
(``cls.predictions.*``), with Linear weights transposed to Paddle's [in, out] layout. Point
``MODEL.backbone.pretrained`` at it: the region/action streams, connection layers and their
heads start from scratch. A checkpoint without an LM head (e.g. a sentence-embedding model)
gives a text-stream-only file, which the loader refuses as missing ``cls.predictions.*``;
``--new-lm-head`` writes a freshly initialised head into it instead (the reference
initialisation: Normal(0, 0.02) dense weight, zero biases, LayerNorm 1/0; the decoder weight
is the word embeddings, as always), so it can be ``pretrained``.
"""

import argparse
import os
import re
import sys

import numpy as np

if not __package__:  # run as python tools/<tool>.py: the checkout importable (tools/_path.py)
    import _path  # noqa: F401

from paddlevideo.utils.conversion import check_finite, check_outputs  # noqa: E402
from paddlevideo.utils.errors import WeightsError, exit_status  # noqa: E402

CHECKPOINT_NAMES = ("model.safetensors", "pytorch_model.bin")
# Body parameters ActBERT's text stream shares with BERT, after the "bert." prefix is removed.
BODY = re.compile(
    r"^(embeddings\.(word_embeddings|position_embeddings|token_type_embeddings)\.weight"
    r"|embeddings\.LayerNorm\.(weight|bias)"
    r"|encoder\.layer\.\d+\.(attention\.self\.(query|key|value)|attention\.output\.dense|intermediate\.dense"
    r"|output\.dense)\.(weight|bias)"
    r"|encoder\.layer\.\d+\.(attention\.output|output)\.LayerNorm\.(weight|bias))$"
)
HEAD = {
    "cls.predictions.transform.dense.weight": "cls.predictions.transform.dense.weight",
    "cls.predictions.transform.dense.bias": "cls.predictions.transform.dense.bias",
    "cls.predictions.transform.LayerNorm.weight": "cls.predictions.transform.LayerNorm.weight",
    "cls.predictions.transform.LayerNorm.bias": "cls.predictions.transform.LayerNorm.bias",
    "cls.predictions.bias": "cls.predictions.decoder_bias",
}
WORD_EMBEDDINGS = "bert.embeddings.word_embeddings.weight"
DECODER = "cls.predictions.decoder_weight"


def find_checkpoint(source):
    """The checkpoint file of ``source`` (a file, or a folder holding one of CHECKPOINT_NAMES)."""
    if os.path.isdir(source):
        for name in CHECKPOINT_NAMES:
            if os.path.isfile(os.path.join(source, name)):
                return os.path.join(source, name)
        raise WeightsError(f"{source} holds neither {' nor '.join(CHECKPOINT_NAMES)}")
    if not os.path.isfile(source):
        raise WeightsError(f"checkpoint not found: {source}")
    return source


def read_checkpoint(path):
    """{name: float32 np.ndarray} of a safetensors or PyTorch checkpoint."""
    if path.endswith(".safetensors"):
        from safetensors.numpy import load_file

        try:
            return load_file(path)
        except Exception as exc:  # safetensors raises its own error types on foreign files
            raise WeightsError(f"{path} is not a safetensors file ({exc})") from None
    if path.endswith(".bin"):
        return _read_torch(path)
    raise WeightsError(f"{path}: expected a .safetensors or .bin (PyTorch) checkpoint")


def _read_torch(path):
    from paddlevideo.utils.torch_file import torch_state_dict

    state = torch_state_dict(path)
    return {k: v.astype(np.float32) if np.issubdtype(v.dtype, np.floating) else v for k, v in state.items()}


def _canonical(name):
    """Old TF-converted checkpoints call LayerNorm parameters gamma/beta."""
    return name.replace("LayerNorm.gamma", "LayerNorm.weight").replace("LayerNorm.beta", "LayerNorm.bias")


def _is_linear_weight(name, array):
    return name.endswith(".weight") and array.ndim == 2 and "embeddings" not in name


def convert(state):
    """HF state dict -> (ActBERT state dict, mapped [(source, target, transposed)], skipped [source]).

    Raises WeightsError when ``state`` holds no BERT word embeddings."""
    out, mapped, skipped = {}, [], []
    for source, array in state.items():
        name = _canonical(source)
        body = name[len("bert."):] if name.startswith("bert.") else name
        if BODY.match(body):
            target = "bert." + body
        elif name in HEAD:
            target = HEAD[name]
        else:
            skipped.append(source)
            continue
        transposed = _is_linear_weight(target, array)
        out[target] = np.ascontiguousarray(array.T if transposed else array, dtype=np.float32)
        mapped.append((source, target, transposed))
    if WORD_EMBEDDINGS not in out:
        raise WeightsError("not a BERT checkpoint: no 'embeddings.word_embeddings.weight' (with or without 'bert.')")
    # The LM decoder is tied to the word embeddings; ActBERT checkpoints store it under both names.
    out[DECODER] = out[WORD_EMBEDDINGS]
    mapped.append(("(tied to word embeddings)", DECODER, False))
    return out, mapped, skipped


def new_lm_head(state, seed=0):
    """The LM head's own tensors (transform and decoder bias), freshly initialised as the
    reference initialises them, sized from the word embeddings [vocab, hidden]."""
    vocab, hidden = state[WORD_EMBEDDINGS].shape
    rng = np.random.default_rng(seed)
    return {
        "cls.predictions.transform.dense.weight": rng.normal(0.0, 0.02, (hidden, hidden)).astype(np.float32),
        "cls.predictions.transform.dense.bias": np.zeros(hidden, np.float32),
        "cls.predictions.transform.LayerNorm.weight": np.ones(hidden, np.float32),
        "cls.predictions.transform.LayerNorm.bias": np.zeros(hidden, np.float32),
        "cls.predictions.decoder_bias": np.zeros(vocab, np.float32),
    }


def save(state, path):
    import paddle

    from paddlevideo.utils.conversion import write_atomically

    tensors = {k: paddle.to_tensor(v) for k, v in state.items()}
    write_atomically(path, lambda tmp: paddle.save(tensors, tmp))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", help="model.safetensors, pytorch_model.bin, or a folder holding one")
    parser.add_argument("output", help="the backbone .pdparams to write")
    parser.add_argument("--new-lm-head", action="store_true",
                        help="if the checkpoint has no masked-LM head, write a freshly initialised one")
    parser.add_argument("--seed", type=int, default=0, help="seed of --new-lm-head's initialisation")
    return exit_status(run, parser.parse_args(argv))


def run(args):
    checkpoint = find_checkpoint(args.source)
    check_outputs([args.output], [checkpoint])
    state, mapped, skipped = convert(check_finite(read_checkpoint(checkpoint), checkpoint))
    fresh = {}
    if args.new_lm_head and "cls.predictions.decoder_bias" not in state:
        fresh = new_lm_head(state, args.seed)
        state.update(fresh)
    save(state, args.output)
    for source, target, transposed in mapped:
        print(f"{source} -> {target}{' (transposed)' if transposed else ''}")
    if skipped:
        print(f"not used by ActBERT ({len(skipped)}): {', '.join(skipped)}")
    if fresh:
        print(f"initialised from scratch (--new-lm-head, seed {args.seed}): {', '.join(fresh)}")
    elif "cls.predictions.decoder_bias" not in state:
        print("note: no masked-LM head in this checkpoint; the file holds the text stream only "
              "(--new-lm-head adds a freshly initialised one)")
    layers = len({t.split(".")[3] for _, t, _ in mapped if t.startswith("bert.encoder.layer.")})
    print(f"wrote {len(state)} tensors ({layers} text layers) from {checkpoint} to {args.output}")


if __name__ == "__main__":
    sys.exit(main())
