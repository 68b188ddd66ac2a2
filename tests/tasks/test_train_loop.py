"""The training loop in-process on the stand-ins: log lines, accumulation, max_iters,
non-finite losses, validation and the best checkpoint."""

import re

import numpy as np
import paddle
import pytest
import standin

from paddlevideo.tasks.train import NonFiniteLossError, train_model
from paddlevideo.utils import checkpoint as ckpt
from paddlevideo.utils.config import AttrDict, _to_attr, validate_config
from paddlevideo.utils.errors import ConfigError, WeightsError
from paddlevideo.utils.plot import parse_log


def config(tmp_path, **run):
    cfg = _to_attr(standin.tiny_config(tmp_path / "out", **run))
    return validate_config(AttrDict(cfg))


def params(path):
    return {k: v.numpy() for k, v in paddle.load(str(path)).items()}


def test_log_lines_epoch_summary_checkpoints_and_best(tmp_path, capsys):
    cfg = config(tmp_path, best_metric="loss_match", best_mode="min")
    state = train_model(cfg, validate=True)
    out = capsys.readouterr().out
    assert state.global_step == 16 and state.epoch == 3
    line = re.compile(r"epoch:\[  1/2  \] train step:2    loss: \d+\.\d{6} loss_text: \S+ loss_region: \S+ "
                      r"loss_action: \S+ loss_match: \S+ lr: 0\.010000 batch_cost: \S+ sec, reader_cost: \S+ sec, "
                      r"ips: \S+ instance/sec\. eta: \d+:\d\d:\d\d")
    assert line.search(out), out
    assert "lr: 0.001000" in out  # after the piecewise boundary
    assert re.search(r"END epoch:2   train loss_avg: \S+ loss_text_avg: .* avg_ips: \S+ instance/sec\.", out)
    assert re.search(r"END epoch:1   val loss_avg: \S+ .*loss_match_avg: \S+ time: \S+ sec, step: 8\n", out)
    names = {p.name for p in (tmp_path / "out").iterdir()}
    assert {"Tiny_epoch_00001.pdparams", "Tiny_epoch_00002.pdopt", "Tiny_best.pdparams", "Tiny_resume.pdckpt",
            "train.log", "loss_curve.png"} <= names
    curves = parse_log(tmp_path / "out" / "train.log")
    assert {"loss", "loss_text", "loss_match"} <= set(curves["train"]) and curves["val"]["loss"][0] == [8, 16]


def test_accumulation_equals_the_big_batch(tmp_path):
    model = {"framework": "TinyPretrain", "dropout": 0.0}
    big = config(tmp_path / "a", MODEL=model, epochs=1)
    big.DATASET.batch_size = 8
    train_model(big)
    small = config(tmp_path / "b", MODEL=model, epochs=1, grad_accum_steps=2)
    state = train_model(small)
    assert state.global_step == 4
    a = params(tmp_path / "a" / "out" / "Tiny_epoch_00001.pdparams")
    b = params(tmp_path / "b" / "out" / "Tiny_epoch_00001.pdparams")
    for k in a:
        np.testing.assert_allclose(a[k], b[k], rtol=2e-5, atol=1e-6)


def test_max_iters_stops_mid_epoch_with_a_resume_point(tmp_path):
    state = train_model(config(tmp_path), max_iters=3)
    assert (state.global_step, state.epoch, state.batch) == (3, 1, 3)
    saved = ckpt.load_resume(str(tmp_path / "out" / "Tiny_resume.pdckpt"))
    assert saved["train_state"]["global_step"] == 3 and saved["train_state"]["batch"] == 3


def test_nonfinite_step_is_skipped_with_a_warning(tmp_path, capsys):
    state = train_model(config(tmp_path, MODEL={"framework": "TinyPretrain", "nan_at": [2]}, epochs=1))
    assert state.global_step == 7  # 8 batches, one skipped
    assert "non-finite loss, step skipped (1 in a row" in capsys.readouterr().out


def test_nonfinite_streak_stops_and_keeps_the_last_checkpoint(tmp_path):
    cfg = config(tmp_path, MODEL={"framework": "TinyPretrain", "nan_at": [4, 5, 6]}, max_nonfinite_steps=2,
                 checkpoint_steps=1)
    with pytest.raises(NonFiniteLossError, match="non-finite for 2 steps in a row"):
        train_model(cfg)
    saved = ckpt.load_resume(str(tmp_path / "out" / "Tiny_resume.pdckpt"))
    assert saved["train_state"]["global_step"] == 3
    assert all(np.isfinite(v.numpy()).all() for v in saved["model"].values())


def quiet_config(output_dir, **run):
    """The stand-ins without dropout or noise: a run is then a function of the seed alone."""
    raw = standin.tiny_config(output_dir, **run)
    raw["MODEL"]["dropout"] = 0.0
    raw["DATASET"]["train"]["noise"] = 0.0
    return validate_config(AttrDict(_to_attr(raw)))


def test_resume_epoch_continues_from_the_epoch_files(tmp_path, capsys):
    # PaddleVideo's resume_epoch: weights, Adam moments and the schedule of epoch 1's files;
    # epoch 2 then gives the weights of the uninterrupted run.
    train_model(quiet_config(tmp_path / "whole"))
    (tmp_path / "again").mkdir()
    for suffix in ("pdparams", "pdopt"):
        (tmp_path / "again" / f"Tiny_epoch_00001.{suffix}").write_bytes(
            (tmp_path / "whole" / f"Tiny_epoch_00001.{suffix}").read_bytes())
    capsys.readouterr()
    state = train_model(quiet_config(tmp_path / "again", resume_epoch=1))
    out = capsys.readouterr().out
    assert state.epoch == 3 and state.global_step == 16
    assert "resumed after epoch 1" in out and "epoch:[  1/2  ]" not in out
    assert "lr: 0.001000" in out and "lr: 0.010000" not in out  # past the boundary at step 6
    whole, again = params(tmp_path / "whole" / "Tiny_epoch_00002.pdparams"), params(
        tmp_path / "again" / "Tiny_epoch_00002.pdparams")
    for key in whole:
        np.testing.assert_allclose(again[key], whole[key], rtol=1e-6, atol=1e-7, err_msg=key)


def test_resume_epoch_errors(tmp_path):
    with pytest.raises(WeightsError, match=r"resume_epoch=3: .*Tiny_epoch_00003.pdparams not found"):
        train_model(quiet_config(tmp_path / "out", resume_epoch=3))
    with pytest.raises(ConfigError, match="either --resume or resume_epoch"):
        train_model(quiet_config(tmp_path / "out", resume_epoch=1), resume=str(tmp_path / "x.pdckpt"))
    with pytest.raises(ConfigError, match="resume_epoch must be an epoch number"):
        train_model(quiet_config(tmp_path / "out", resume_epoch=-1))
    train_model(quiet_config(tmp_path / "out", epochs=1))
    paddle.save({"linear_99.w_0_moment1_0": paddle.zeros([1])}, str(tmp_path / "out" / "Tiny_epoch_00001.pdopt"))
    with pytest.raises(WeightsError, match=r"does not fit this model's optimiser \(entry 'linear_99.w_0_moment1_0'"):
        train_model(quiet_config(tmp_path / "out", resume_epoch=1))


def test_finite_loss_with_nonfinite_gradient_is_skipped_and_names_the_parameter(tmp_path, capsys):
    # Every step of the epoch has a finite loss and a NaN gradient in head.weight: none may touch
    # the weights or the optimiser state (Adam's moments are created by its first update).
    cfg = config(tmp_path, MODEL={"framework": "TinyPretrain", "nan_grad_at": list(range(1, 9))}, epochs=1,
                 max_nonfinite_steps=100)
    paddle.seed(cfg.seed)
    from paddlevideo.modeling.builder import build_model

    initial = {k: v.numpy() for k, v in build_model(cfg.MODEL).state_dict().items()}
    state = train_model(cfg)
    out = capsys.readouterr().out
    assert state.global_step == 0
    assert "inf/NaN gradient in head.weight, step skipped (8 in a row" in out
    saved = params(tmp_path / "out" / "Tiny_epoch_00001.pdparams")
    for key, value in initial.items():
        np.testing.assert_array_equal(saved[key], value, err_msg=key)
    assert not [k for k in paddle.load(str(tmp_path / "out" / "Tiny_epoch_00001.pdopt")) if "moment" in k]


def test_nonfinite_gradient_streak_stops_training(tmp_path):
    cfg = config(tmp_path, MODEL={"framework": "TinyPretrain", "nan_grad_at": [2, 3]}, max_nonfinite_steps=2)
    with pytest.raises(NonFiniteLossError, match=r"inf/NaN gradient in head\.weight: non-finite for 2 steps"):
        train_model(cfg)


class FakeFloat16Scaler:
    """The parts of paddle.amp.GradScaler the trainer uses (it is disabled on CPU): an overflow is
    found when unscaling; ``step`` then skips the optimiser and ``update`` halves the scale."""

    def __init__(self, scale):
        self._scale, self._found_inf, self.stepped = paddle.to_tensor(scale), paddle.to_tensor(False), []

    def scale(self, loss):
        return loss

    def unscale_(self, optimizer):
        self._found_inf = paddle.to_tensor(any(not bool(paddle.isfinite(p.grad).all())
                                               for p in optimizer._parameter_list if p.grad is not None))

    def step(self, optimizer):
        self.stepped.append(bool(self._found_inf))
        if not bool(self._found_inf):
            optimizer.step()

    def update(self):
        if bool(self._found_inf):
            self._scale = self._scale / 2


@pytest.mark.parametrize("scale, counts", [(1024.0, False), (1.0, True)])
def test_float16_overflow_is_the_scalers_check_and_counts_at_the_lowest_scale(scale, counts):
    from types import SimpleNamespace

    from paddlevideo.tasks.train import Skipped, train_step
    from paddlevideo.utils.amp import AmpPlan

    paddle.seed(0)
    net = standin.TinyPretrain(dropout=0.0, nan_grad_at=[1])
    optimizer = paddle.optimizer.Adam(parameters=net.parameters())
    scaler = FakeFloat16Scaler(scale)
    ctx = SimpleNamespace(model=net, net=net, optimizer=optimizer, scaler=scaler, world_size=1, lr=0.001,
                          plan=AmpPlan(enabled=True, level="O1", dtype="float16", use_scaler=True))
    before = {k: v.numpy() for k, v in net.state_dict().items()}
    batch = {"x": paddle.randn([4, 8]), "y": paddle.zeros([4, 4])}
    result = train_step(ctx, [batch])
    assert isinstance(result, Skipped) and result.counts is counts
    assert result.reason == f"inf/NaN gradient in head.weight at loss scale {scale:g}"
    assert scaler.stepped == [True] and float(scaler._scale) == scale / 2
    for key, value in net.state_dict().items():
        np.testing.assert_array_equal(value.numpy(), before[key])
    again = train_step(ctx, [batch])
    assert isinstance(again, dict), again  # the next forward is finite: a real step
    assert scaler.stepped == [True, False]
