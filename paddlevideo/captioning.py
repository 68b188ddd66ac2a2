"""YouCook2 captioning at test time: generate a caption for every segment of a
``YouCook2CaptionDataset``, score the corpus in one call, write the outputs.

Outputs (in ``output_dir``): ``caption_metrics.json`` (the scores x100, the protocol, the
segment count, the decoding settings, the Java version) and ``captions.csv`` with one row per
segment: ``video_id, segment`` (its index in the video's annotation list), ``start, end,
reference, generated``. Both are written atomically.
"""

import csv
import io
import json
import os
import subprocess

import numpy as np
import paddle

from .loader.dataloader import collate_batch, to_tensors
from .metrics.captioning import most_frequent_sentence, score_systems
from .utils.outfile import atomic_output

VIDEO_INPUTS = ("image_feat", "image_loc", "image_mask", "action_feat", "action_mask")


def decode(tokenizer, ids):
    """Word-piece ids (no specials) -> text, ``##`` pieces joined to their word."""
    return tokenizer.decode(ids).strip() if ids else ""


@paddle.no_grad()
def generate_captions(net, dataset, batch_size=32, beam_size=None):
    """{segment key: generated text} for every segment of ``dataset`` (net in eval mode)."""
    net.eval()
    out = {}
    for start in range(0, len(dataset), batch_size):
        indices = list(range(start, min(start + batch_size, len(dataset))))
        batch = to_tensors({k: v for k, v in collate_batch(dataset, indices).items() if k in VIDEO_INPUTS})
        for i, ids in zip(indices, net.generate(batch, beam_size=beam_size)):
            out[dataset.segments[i].key] = decode(dataset.tokenizer, ids)
    return out


def baseline_captions(train_dataset, dataset):
    """The trivial captioner: the most frequent training sentence for every segment."""
    sentence = most_frequent_sentence([s.sentence for s in train_dataset.segments])
    return {s.key: sentence for s in dataset.segments}


def java_version():
    """``java -version``'s first line, or None."""
    try:
        done = subprocess.run(["java", "-version"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return None
    lines = (done.stderr or done.stdout).strip().splitlines()
    return lines[0] if lines else None


def write_outputs(output_dir, dataset, generated, scores, settings):
    """``caption_metrics.json`` and ``captions.csv`` in ``output_dir`` (module docstring)."""
    os.makedirs(output_dir, exist_ok=True)
    report = {"metrics": scores, "segments": len(dataset.segments), "subset": dataset.subset,
              "protocol": "pycocoevalcap, PTB-tokenized hypotheses and references, one corpus-level call, "
                          "micro level (one reference per segment), x100", "java": java_version(), **settings}
    path = os.path.join(output_dir, "caption_metrics.json")
    with atomic_output(path, "output_dir") as f:
        f.write((json.dumps(report, indent=1) + "\n").encode("utf-8"))
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(["video_id", "segment", "start", "end", "reference", "generated"])
    for seg in dataset.segments:
        writer.writerow([seg.video_id, seg.index, f"{seg.start:g}", f"{seg.end:g}", seg.sentence, generated[seg.key]])
    with atomic_output(os.path.join(output_dir, "captions.csv"), "output_dir") as f:
        f.write(text.getvalue().encode("utf-8"))
    return report


def evaluate_captions(net, dataset, output_dir=None, batch_size=32, beam_size=None, train_dataset=None):
    """Generate, score (one corpus call) and, with ``output_dir``, write the outputs. With
    ``train_dataset`` the most-frequent-sentence baseline is scored too (same call shape).
    Returns {"metrics": ..., "baseline": ... or None, "generated": {key: text}}."""
    generated = generate_captions(net, dataset, batch_size, beam_size)
    systems = {"model": generated}
    if train_dataset is not None:
        systems["baseline"] = baseline_captions(train_dataset, dataset)
    scored = score_systems(dataset.references(), systems)  # one corpus call each, one Java start
    scores = scored["model"][0]
    baseline = scored["baseline"][0] if train_dataset is not None else None
    if output_dir:
        beam = net.beam_size if beam_size is None else beam_size
        write_outputs(output_dir, dataset, generated, scores,
                      {"beam_size": beam, "max_decode_length": net.max_decode_length,
                       "freeze_encoder": net.freeze_encoder, "baseline_most_frequent_sentence": baseline,
                       "empty_captions": int(np.sum([not t for t in generated.values()]))})
    return {"metrics": scores, "baseline": baseline, "generated": generated}
