"""``main.py --test``: evaluation of a trained ActBERT checkpoint on ``DATASET.test``.

Everything a user can get wrong (the ``-w`` file, the dataset, the config against the
checkpoint) is checked before scoring starts, since a full evaluation takes hours on CPU.

Settings read: ``DATASET.test`` (the MSRVTTDataset), ``PIPELINE.test`` (may be empty),
``DATASET.test_batch_size`` (captions encoded together, default 1 as in PaddleVideo;
each is scored against every video), ``DATASET.test_pair_batch_size`` (caption-video
pairs per matching pass, default 256), ``METRIC`` (which evaluator; default: the test
set's own, MSRVTTMetric for an MSRVTTDataset), ``device``, ``output_dir`` (default
``output/<model_name>``).
"""

import copy

from ..retrieval.scoring import DEFAULT_PAIR_BATCH_SIZE
from ..utils.errors import WeightsError
from ..utils.runtime import select_device
from ..utils.settings import RunSettings

# What describe_checkpoint's answer means to a user who passed the file as -w.
_KIND_HINTS = {
    "backbone": "a backbone-only state dict (bare 'bert.'/'cls.' keys, as MODEL.backbone.pretrained loads)",
    "bert": "a BERT-only initialisation (text stream only; it belongs in MODEL.backbone.pretrained)",
    "optimizer": "an optimizer state (.pdopt), not model weights",
    "unknown": "a state dict whose keys are neither 'backbone.' nor 'bert.'/'cls.' ones",
}


def check_weights_file(weights, flag="-w", task="--test"):
    """Raise WeightsError unless ``weights`` is an existing full-model checkpoint.

    flag, task: how the command line that gave the file names it and what needs it."""
    from ..modeling.weights import describe_checkpoint

    if not weights:
        raise WeightsError(f"{task} needs the checkpoint to evaluate: pass it with {flag}")
    from ..utils.checkpoint import check_file

    check_file(weights, flag)
    kind = describe_checkpoint(weights)
    if kind != "full":
        what = _KIND_HINTS.get(kind, kind)
        raise WeightsError(
            f"{flag} {weights}: expected a full-model checkpoint ('backbone.'-prefixed keys, e.g. ActBERT.pdparams "
            f"or <model_name>_best.pdparams), got {what}"
        )


def build_test_model(model_cfg, weights, flag="-w"):
    """The framework of ``model_cfg`` with ``weights`` loaded, in eval mode.

    ``MODEL.backbone.pretrained`` is ignored: the checkpoint replaces every weight,
    and the initialisation file need not exist on the evaluation machine.
    """
    from ..modeling.builder import build_model
    from ..modeling.weights import load_model_weights

    model_cfg = copy.deepcopy(model_cfg)
    if isinstance(model_cfg.get("backbone"), dict):
        model_cfg["backbone"].pop("pretrained", None)
    model = build_model(model_cfg)
    # Raises WeightsError naming the first missing or mis-shaped parameter, so a
    # config that does not match the checkpoint fails here and not mid-scoring.
    try:
        load_model_weights(model, weights)
    except WeightsError as exc:
        raise WeightsError(f"MODEL.backbone of the config does not match {flag}: {exc}") from None
    if model.fresh_parameters:  # a task head or decoder left at its initialisation would score noise
        raise WeightsError(
            f"{flag} {weights} holds no weights for the framework's own layers: missing key(s) of "
            f"{type(model).__name__}: {', '.join(model.fresh_parameters[:4])}"
            f"{' ...' if len(model.fresh_parameters) > 4 else ''}; give a checkpoint trained with this config "
            "(a pretrained ActBERT has none of them)")
    model.eval()
    return model


def two_stage_plan(cfg, weights):
    """``FIRST_STAGE.rerank_top``'s two-stage plan (None: exhaustive, the default)."""
    from ..retrieval.export import file_digest
    from ..retrieval.two_stage import check_section, plan_from_config

    section = cfg.get("FIRST_STAGE") or {}
    check_section(section)
    return plan_from_config(section, file_digest(weights)) if section.get("rerank_top") is not None else None


def test_model(cfg, weights, amp=False, amp_level="O1", progress=True):
    """Evaluate ``DATASET.test`` by the evaluator of ``METRIC`` (default: the dataset's own,
    e.g. MSRVTTMetric for an MSRVTTDataset) and report its metrics.

    The evaluator writes its files (retrieval: ``<prefix>_metrics.json``, per-query/per-video
    rank CSVs, a rank histogram, the score matrix ``<prefix>_scores.npy`` [Q, V], the prefix
    the metric's, e.g. ``msrvtt``) to the output directory (rank 0), or to a new
    ``test_<date-time>`` folder in it when it holds an earlier test's (``evaluation.results_dir``).
    Returns the metrics dict on rank 0, None on the other ranks.
    """
    from ..evaluation import EvalSettings, build_evaluator
    from ..loader.builder import build_dataset

    run = RunSettings.from_cfg(cfg)
    check_weights_file(weights)
    # The data first (queries, vocabulary, the features LMDB and its first record): a bad
    # input fails in seconds, before the weights load.
    dataset = build_dataset(cfg.DATASET.test, (cfg.get("PIPELINE") or {}).get("test"), where="DATASET.test")
    settings = EvalSettings(
        split="test", output_dir=run.output_dir,
        text_batch_size=int(cfg.DATASET.get("test_batch_size", 1)),
        pair_batch_size=int(cfg.DATASET.get("test_pair_batch_size", DEFAULT_PAIR_BATCH_SIZE)),
        amp=amp, amp_level=amp_level, progress=progress,
    )
    settings.two_stage = two_stage_plan(cfg, weights)  # the first stage checked before the model loads
    evaluator = build_evaluator(cfg.get("METRIC"), dataset, settings)
    select_device(run.device)
    model = build_test_model(cfg.MODEL, weights)
    return evaluator.evaluate(model, dataset)
