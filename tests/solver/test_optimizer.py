"""Optimisers from YAML: PaddleVideo's L2 penalty, AdamW's decoupled decay exclusions, clipping."""

import numpy as np
import paddle
import pytest

import paddlevideo  # noqa: F401
from paddlevideo.solver import build_lr, build_optimizer
from paddlevideo.solver.optimizer import no_decay_names
from paddlevideo.utils.config import AttrDict, validate_config
from paddlevideo.utils.errors import ConfigError


class Net(paddle.nn.Layer):
    def __init__(self):
        super().__init__()
        self.fc = paddle.nn.Linear(3, 4)
        self.LayerNorm = paddle.nn.LayerNorm(4)
        self.decoder_bias = self.create_parameter([4], is_bias=True)

    def forward(self, x):
        return self.LayerNorm(self.fc(x)) + self.decoder_bias


def snapshot(net):
    return {k: v.numpy().copy() for k, v in net.state_dict().items()}


def test_adamw_decays_only_weights_not_biases_or_layernorm():
    paddle.seed(0)
    net = Net()
    for p in net.parameters():  # non-trivial values so a decay would show
        p.set_value(paddle.full(p.shape, 2.0))
    opt = build_optimizer({"name": "AdamW", "weight_decay": 0.1}, net, learning_rate=0.5)
    skipped = no_decay_names(net)
    assert skipped == {net.fc.bias.name, net.LayerNorm.weight.name, net.LayerNorm.bias.name, net.decoder_bias.name}
    before = snapshot(net)
    (net(paddle.ones([2, 3])) * 0.0).sum().backward()  # zero gradients: only the decay moves weights
    opt.step()
    after = snapshot(net)
    np.testing.assert_allclose(after["fc.weight"], before["fc.weight"] * (1 - 0.5 * 0.1), rtol=1e-6)
    for key in ("fc.bias", "LayerNorm.weight", "LayerNorm.bias", "decoder_bias"):
        np.testing.assert_array_equal(after[key], before[key])


def test_paddlevideo_adam_config_builds_l2_penalty_and_schedule():
    cfg = AttrDict(OPTIMIZER={"name": "Adam", "learning_rate": {"iter_step": True, "name": "CustomPiecewiseDecay",
                                                                "boundaries": [4200], "values": [0.0002, 0.00002]},
                              "weight_decay": {"name": "L2", "value": 1e-4}})
    validate_config(cfg)
    net = Net()
    opt = build_optimizer(cfg.OPTIMIZER, net, build_lr(cfg.OPTIMIZER["learning_rate"], 10, 1))
    assert isinstance(opt, paddle.optimizer.Adam)
    assert isinstance(opt.regularization, paddle.regularizer.L2Decay)
    assert opt.get_lr() == pytest.approx(2e-4)


def test_momentum_with_grad_clip_clips_the_global_norm():
    net = Net()
    opt = build_optimizer({"name": "Momentum", "momentum": 0.0, "grad_clip": {"name": "ClipGradByGlobalNorm",
                                                                              "value": 1e-3}}, net, 1.0)
    before = snapshot(net)
    (net(paddle.ones([2, 3])) * 1000).sum().backward()
    opt.step()
    delta = np.sqrt(sum(((snapshot(net)[k] - before[k]) ** 2).sum() for k in before))
    assert delta == pytest.approx(1e-3, rel=1e-3)  # plain SGD step of a gradient clipped to norm 1e-3


def test_unknown_optimizer_key_is_named():
    with pytest.raises(ConfigError, match="OPTIMIZER.beta3"):
        validate_config(AttrDict(OPTIMIZER={"name": "Adam", "learning_rate": 0.1, "beta3": 0.9}))
    with pytest.raises(ConfigError, match="did you mean 'Adam'"):
        build_optimizer({"name": "AdamV"}, Net(), 0.1)
