"""Hostile configs for the evaluator of ``--test`` / ``--validate`` (``METRIC``) and the
``device`` key of ``--test``: refused with one ``error:`` line before any model is built."""

import numpy as np
import pytest

import paddlevideo  # noqa: F401  (fills the registries)
from paddlevideo.evaluation import EvalSettings, LossEvaluator, build_evaluator
from paddlevideo.fields import TEXT_KEYS
from paddlevideo.retrieval.evaluation import MultipleChoiceEvaluator, RetrievalEvaluator
from paddlevideo.retrieval.predictor import InferenceEngine
from paddlevideo.retrieval.scoring import ArrayRetrievalSet, DygraphScorer, Scorer
from paddlevideo.utils.config import AttrDict
from paddlevideo.utils.errors import ConfigError, DataError
from paddlevideo.utils.runtime import select_device


def _retrieval_set(query_video_index=(0, 1, 1), num_videos=2, T=6, V=3, A=2):
    """Q captions (word pieces, padded) against ``num_videos`` videos of zeros and exact ones."""
    Q = len(query_video_index)
    queries = {k: np.zeros((Q, T), np.int64) for k in TEXT_KEYS}
    videos = {"image_feat": np.zeros((num_videos, V, 8), np.float32), "image_loc": np.ones((num_videos, V, 5)),
              "image_mask": np.ones((num_videos, V), np.int64), "action_feat": np.zeros((num_videos, A, 4)),
              "action_mask": np.ones((num_videos, A), np.int64)}
    return ArrayRetrievalSet(queries, videos, query_video_index)


class _PretrainSet:
    """A dataset that names no metric (as a pretraining set): validated by the loss."""

    def __len__(self):
        return 4


def test_the_evaluator_is_the_metric_s_or_the_dataset_s_own():
    data = _retrieval_set()
    assert isinstance(build_evaluator(None, data, EvalSettings()), RetrievalEvaluator)
    assert isinstance(build_evaluator({"name": "MSRVTTMetric"}, data, EvalSettings()), RetrievalEvaluator)
    assert isinstance(build_evaluator(None, _PretrainSet(), EvalSettings(split="valid")), LossEvaluator)


@pytest.mark.parametrize("metric, dataset, needed", [
    ("MSRVTTMCMetric", _retrieval_set(), "MSRVTTMetric"),  # multiple choice on a retrieval set
    ("MSRVTTMetric", _PretrainSet(), "ValidationLoss"),  # retrieval metrics on a pretraining set
])
def test_a_metric_of_another_kind_of_set_is_refused(metric, dataset, needed):
    with pytest.raises(ConfigError, match=f"METRIC {metric} does not evaluate DATASET.test .*needs METRIC: "
                                          f"{{name: {needed}}}"):
        build_evaluator({"name": metric}, dataset, EvalSettings())


def test_an_unregistered_metric_is_refused_with_a_suggestion():
    with pytest.raises(ConfigError, match="did you mean 'MSRVTTMetric'"):
        build_evaluator({"name": "MSRVTTMetrc"}, _retrieval_set(), EvalSettings())


@pytest.mark.parametrize("index, message", [
    ((), "nothing to evaluate"),  # zero queries
    ((0, -1), "query 1 .* has no video"),  # negative
    ((0, 2), "query 1 .* has no video"),  # past the last video
])
def test_the_evaluator_checks_the_set_before_any_scoring(index, message):
    with pytest.raises(DataError, match=message):
        build_evaluator(None, _retrieval_set(index), EvalSettings())


def test_best_metric_must_be_one_the_validation_reports():
    evaluator = build_evaluator(None, _retrieval_set(), EvalSettings(split="valid"))
    evaluator.check_best_metric("t2v_R1")
    with pytest.raises(ConfigError, match="best_metric 'nan' is not computed on the retrieval set DATASET.valid"):
        evaluator.check_best_metric("nan")
    LossEvaluator({}, EvalSettings(split="valid")).check_best_metric("anything the loss returns")
    assert MultipleChoiceEvaluator.names is None


def test_both_models_implement_the_scoring_interface():
    assert issubclass(InferenceEngine, Scorer) and issubclass(DygraphScorer, Scorer)


@pytest.mark.parametrize("device", ["bogus", "gpu:-1"])
def test_select_device_refuses_an_unknown_device(device):
    with pytest.raises(ConfigError, match=f"device '{device}' is not available"):
        select_device(device)


class _Reached(Exception):
    """Raised by the stand-in model builder: the run got as far as building the model."""


def test_test_honours_the_device_key(monkeypatch, tmp_path):
    """``--test`` sets the config's ``device`` (it used to ignore it), before the weights load."""
    from paddlevideo.loader import builder
    from paddlevideo.tasks import test as test_task

    def build_test_model(*args, **kwargs):
        raise _Reached

    monkeypatch.setattr(test_task, "check_weights_file", lambda weights: None)
    monkeypatch.setattr(builder, "build_dataset", lambda *args, **kwargs: _retrieval_set())
    monkeypatch.setattr(test_task, "build_test_model", build_test_model)
    cfg = AttrDict(MODEL=AttrDict(), DATASET=AttrDict(test=AttrDict(format="MSRVTTDataset")), device="bogus",
                   output_dir=str(tmp_path))
    with pytest.raises(ConfigError, match="device 'bogus' is not available"):
        test_task.test_model(cfg, "w.pdparams")
    chosen = []
    monkeypatch.setattr(test_task, "select_device", chosen.append)
    cfg.device = "cpu"
    with pytest.raises(_Reached):
        test_task.test_model(cfg, "w.pdparams")
    assert chosen == ["cpu"]
