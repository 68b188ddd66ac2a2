"""The 3D ResNet port against the reference fixture (kenshohara's models/resnet.py, random weights)."""

import numpy as np
import paddle
import pytest

from paddlevideo.modeling.extractors.resnet3d import (
    KINETICS_MEAN,
    KINETICS_STD,
    ResNet3D,
    load_resnet3d,
    preprocess_frames,
    resnet3d_config,
)
from paddlevideo.utils.errors import WeightsError
from tools import convert_resnet3d

ATOL = 1e-4  # the fixture README's check


@pytest.fixture(scope="module")
def fixture(golden_dir):
    d = golden_dir / "extractors" / "resnet3d"
    return d, np.load(d / "inputs.npz")["clip"], dict(np.load(d / "outputs.npz"))


@pytest.fixture(scope="module")
def converted(fixture, tmp_path_factory):
    d, _, _ = fixture
    out = tmp_path_factory.mktemp("r3d") / "r3d50_w0125.pdparams"
    assert convert_resnet3d.main([str(d / "weights.npz"), str(out), "--widen_factor", "0.125"]) == 0
    return out


def test_every_fixture_array_through_the_converter(fixture, converted):
    _, clip, ref = fixture
    model = load_resnet3d(converted)  # depth, widths and classes read from the file
    assert (model.depth, model.feature_dim, model.n_classes) == (50, 256, 700)
    with paddle.no_grad():
        stages = model.stages(paddle.to_tensor(clip))
        pooled, logits = model(paddle.to_tensor(clip))
    for i, out in enumerate(stages, start=1):
        np.testing.assert_allclose(out[0].numpy(), ref[f"layer{i}_sample0"], atol=ATOL, rtol=0)
    np.testing.assert_allclose(pooled.numpy(), ref["pooled"], atol=ATOL, rtol=0)
    np.testing.assert_allclose(logits.numpy(), ref["logits"], atol=ATOL, rtol=0)
    assert (logits.numpy().argmax(1) == ref["logits"].argmax(1)).all()


def test_preprocessing_reproduces_the_fixture_input(fixture):
    """RGB order, /255 then Kinetics mean/std: the uint8 frames behind ``clip`` give ``clip`` back."""
    _, clip, _ = fixture
    mean, std = np.array(KINETICS_MEAN, np.float32), np.array(KINETICS_STD, np.float32)
    frames = np.rint((clip[0].transpose(1, 2, 3, 0) * std + mean) * 255).astype(np.uint8)  # [T, H, W, 3]
    np.testing.assert_allclose(preprocess_frames(frames), clip[0], atol=1e-5)


def test_preprocessing_resizes_the_short_side_and_centre_crops():
    frames = np.zeros((2, 240, 320, 3), np.uint8)
    frames[:, :, 150:170] = 255  # a white column band around the centre (x in [150, 170))
    out = preprocess_frames(frames)
    assert out.shape == (3, 2, 112, 112)
    # short side 240 -> 112, long 320 -> int(112 * 320 / 240) = 149 (scale 149/320), crop left =
    # round(37 / 2) = 18: the band's middle (pixel index 159.5) lands on (159.5 + 0.5) * 149 / 320 - 0.5 - 18 = 56
    row = out[0, 0, 56] - out[0, 0, 56].min()
    centre = (row * np.arange(112)).sum() / row.sum()
    assert abs(centre - 56.0) < 0.1, centre
    assert np.count_nonzero(row > 1e-3) in (9, 10, 11)
    assert np.allclose(out[:, 0], out[:, 1]) and np.allclose(out[0, 0, 0], out[0, 0, 111])


@pytest.mark.parametrize("depth, shortcut", [(10, "A"), (18, "B"), (34, "A"), (50, "A")])
def test_other_depths_and_shortcuts_build_and_read_back_their_config(depth, shortcut):
    model = ResNet3D(depth=depth, n_classes=7, shortcut_type=shortcut, widen_factor=0.0625, conv1_t_size=3,
                     no_max_pool=depth == 10)
    model.eval()
    pooled, logits = model(paddle.rand([1, 3, 4, 32, 32]))
    assert pooled.shape == [1, model.feature_dim] and logits.shape == [1, 7]
    config = resnet3d_config({k: v.shape for k, v in model.state_dict().items()})
    assert config["depth"] == depth and config["shortcut_type"] == shortcut and config["conv1_t_size"] == 3
    assert config["widen_factor"] == 0.0625 and config["n_classes"] == 7


def test_converter_refuses_another_depth_naming_a_key_and_both_shapes(fixture, tmp_path, capsys):
    d, _, _ = fixture
    status = convert_resnet3d.main([str(d / "weights.npz"), str(tmp_path / "x.pdparams"), "--depth", "18",
                                    "--widen_factor", "0.125"])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(err) == 1
    assert "'layer1.0.conv1.weight' file [8, 8, 1, 1, 1] vs model [8, 8, 3, 3, 3]" in err[0]
    assert "looks like depth 50, widen 0.125" in err[0]
    assert not (tmp_path / "x.pdparams").exists()


def test_converter_refuses_the_detector_and_a_missing_file(golden_dir, tmp_path, capsys):
    frcnn = golden_dir / "extractors" / "frcnn_vg" / "weights.npz"
    assert convert_resnet3d.main([str(frcnn), str(tmp_path / "x.pdparams"), "--widen_factor", "0.125"]) == 2
    err = capsys.readouterr().err
    assert "missing key(s): 'conv1.weight'" in err and "not a 3D ResNet checkpoint" in err
    assert convert_resnet3d.main([str(tmp_path / "r3d50_K_200ep.pth"), str(tmp_path / "x.pdparams")]) == 2
    assert capsys.readouterr().err.strip() == f"error: checkpoint not found: {tmp_path / 'r3d50_K_200ep.pth'}"


def test_loader_refuses_a_deeper_file_for_a_shallower_model(converted):
    shapes = r"'layer1.0.conv1.weight' file \[8, 8, 1, 1, 1\] vs model \[8, 8, 3, 3, 3\]"
    with pytest.raises(WeightsError, match=shapes):
        load_resnet3d(converted, depth=18, widen_factor=0.125)
    with pytest.raises(WeightsError, match="weights file not found"):
        load_resnet3d(str(converted) + ".gone")


def test_torch_names_are_renamed_and_fc_transposed():
    state = {"module.fc.weight": np.arange(6, dtype=np.float32).reshape(2, 3), "bn1.running_var": np.ones(2),
             "bn1.num_batches_tracked": np.zeros((), np.int64), "bn1.running_mean": np.zeros(2)}
    out = convert_resnet3d.to_paddle(state)
    assert sorted(out) == ["bn1._mean", "bn1._variance", "fc.weight"]
    assert out["fc.weight"].shape == (3, 2) and out["fc.weight"][2, 1] == 5
