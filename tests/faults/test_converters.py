"""Fault injection for the converters (tools/convert_resnet3d.py, convert_frcnn_vg.py,
bert_to_actbert.py, howto100m_to_lmdb.py): PyTorch files read without torch, conversion
settings kept in the output, and hostile inputs (truncated, NaN/inf, crafted pickles,
unwritable or same-as-input outputs) ending in one ``error:`` line with exit status 2."""

import os
import sys
from pathlib import Path

import numpy as np
import paddle
import pytest
import yaml

from paddlevideo.loader.store.npy_source import NpyClips
from paddlevideo.modeling.extractors.frcnn_vg import FRCNNVG, FRCNNVGConfig, load_frcnn_vg, random_init
from paddlevideo.modeling.extractors.recorded import SETTINGS_KEY
from paddlevideo.modeling.extractors.resnet3d import load_resnet3d
from paddlevideo.utils.errors import DataError, WeightsError
from tools import bert_to_actbert, convert_frcnn_vg, convert_resnet3d, howto100m_to_lmdb

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "utils"))
from torch_writer import save_legacy, save_zip  # noqa: E402

TORCH_FILES = Path(__file__).resolve().parents[1] / "fixtures" / "torch_files"
# The fixture's 3D ResNet: its stride and missing max-pool are in no tensor shape.
R3D_ARGS = ["--depth", "10", "--n_classes", "7", "--widen_factor", "0.03125", "--conv1_t_size", "3",
            "--conv1_t_stride", "2", "--no_max_pool"]


@pytest.fixture(autouse=True)
def no_torch(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # as in CI: nothing here may need torch


def run(main, args, capsys):
    """(exit status, the stderr lines) of a converter's ``main``."""
    status = main([str(a) for a in args])
    return status, capsys.readouterr().err.strip().splitlines()


def assert_one_error(status, err, *needles):
    assert status == 2 and len(err) == 1 and err[0].startswith("error: "), err
    for needle in needles:
        assert needle in err[0], err[0]


def paddle_state(path):
    return {k: v.numpy() for k, v in paddle.load(str(path)).items()}


# --------------------------------------------------------------------------- 3D ResNet


@pytest.mark.parametrize("name", ["r3d10_tiny.pth", "r3d10_tiny_legacy.pth"])
def test_resnet3d_pth_converts_without_torch_as_its_npz_does(name, tmp_path, capsys):
    assert run(convert_resnet3d.main, [TORCH_FILES / name, tmp_path / "pth.pdparams", *R3D_ARGS], capsys)[0] == 0
    assert run(convert_resnet3d.main, [TORCH_FILES / "r3d10_tiny.npz", tmp_path / "npz.pdparams", *R3D_ARGS],
               capsys)[0] == 0
    from_pth, from_npz = paddle_state(tmp_path / "pth.pdparams"), paddle_state(tmp_path / "npz.pdparams")
    assert sorted(from_pth) == sorted(from_npz) and len(from_pth) > 40
    for key in from_npz:
        np.testing.assert_array_equal(from_pth[key], from_npz[key], err_msg=key)


def test_resnet3d_settings_no_shape_reveals_are_kept_and_checked(tmp_path, capsys):
    out = tmp_path / "r3d.pdparams"
    assert run(convert_resnet3d.main, [TORCH_FILES / "r3d10_tiny.pth", out, *R3D_ARGS], capsys)[0] == 0
    model = load_resnet3d(out)  # nothing given: the recorded stride and pool, the shapes' depth
    assert list(model.conv1._stride) == [2, 2, 2] and model.no_max_pool and model.depth == 10
    with paddle.no_grad():
        pooled, logits = model(paddle.rand([1, 3, 8, 32, 32]))
    assert pooled.shape == [1, model.feature_dim] and logits.shape == [1, 7]
    assert load_resnet3d(out, conv1_t_stride=2, no_max_pool=True).no_max_pool  # agreeing settings load
    with pytest.raises(WeightsError, match=r"r3d.pdparams was converted with conv1_t_stride=2, but the action "
                                           r"model config says conv1_t_stride=1"):
        load_resnet3d(out, conv1_t_stride=1)
    with pytest.raises(WeightsError, match="converted with no_max_pool=True"):
        load_resnet3d(out, no_max_pool=False)
    # A file converted before settings were recorded loads as it always did (shapes only).
    state = paddle.load(str(out))
    state.pop(SETTINGS_KEY)
    paddle.save(state, str(tmp_path / "old.pdparams"))
    assert list(load_resnet3d(tmp_path / "old.pdparams", conv1_t_stride=1).conv1._stride) == [1, 2, 2]


# --------------------------------------------------------------------------- BERT and the detector


def tiny_bert(hidden=8, vocab=30):
    rng = np.random.default_rng(0)
    state = {"bert.embeddings.word_embeddings.weight": rng.standard_normal((vocab, hidden)),
             "bert.embeddings.position_embeddings.weight": rng.standard_normal((16, hidden)),
             "bert.embeddings.LayerNorm.weight": np.ones(hidden), "bert.embeddings.LayerNorm.bias": np.zeros(hidden),
             "bert.encoder.layer.0.attention.self.query.weight": rng.standard_normal((hidden, hidden)),
             "bert.encoder.layer.0.attention.self.query.bias": rng.standard_normal(hidden),
             "cls.predictions.bias": np.zeros(vocab)}
    return {k: v.astype(np.float32) for k, v in state.items()}


def test_bert_bin_converts_without_torch(tmp_path, capsys):
    state = tiny_bert()
    save_legacy(state, tmp_path / "pytorch_model.bin")  # 2019-era HF checkpoints are the legacy format
    status, _ = run(bert_to_actbert.main, [tmp_path, tmp_path / "bert.pdparams"], capsys)
    assert status == 0
    out = paddle_state(tmp_path / "bert.pdparams")
    np.testing.assert_array_equal(out["bert.encoder.layer.0.attention.self.query.weight"],
                                  state["bert.encoder.layer.0.attention.self.query.weight"].T)
    words = state["bert.embeddings.word_embeddings.weight"]
    np.testing.assert_array_equal(out["cls.predictions.decoder_weight"], words)


@pytest.fixture(scope="module")
def detector_files(tmp_path_factory):
    """A tiny VG detector as the public checkpoint lays it out: pytorch_model.bin + config.yaml."""
    folder = tmp_path_factory.mktemp("frcnn")
    cfg = FRCNNVGConfig.tiny(num_classes=6, num_attrs=3)
    model = random_init(FRCNNVG.from_config(cfg), seed=0)
    torch_state = {}
    for name, value in model.state_dict().items():
        value = value.numpy()
        if name.endswith(".weight") and value.ndim == 2 and name != convert_frcnn_vg.EMBEDDING:
            value = value.T  # Paddle Linear [in, out] -> torch [out, in]
        torch_state[name.replace("._mean", ".running_mean").replace("._variance", ".running_var")] = value
    save_zip(torch_state, folder / "pytorch_model.bin")
    (folder / "config.yaml").write_text(yaml.safe_dump(cfg.to_yaml_dict()))
    return folder, model


def test_detector_bin_converts_without_torch_and_keeps_its_config(detector_files, tmp_path, capsys):
    folder, model = detector_files
    out = tmp_path / "det.pdparams"
    assert run(convert_frcnn_vg.main, [folder, out], capsys)[0] == 0
    converted = paddle_state(out)
    assert SETTINGS_KEY in converted
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(converted[key], value.numpy(), err_msg=key)
    data = yaml.safe_load(out.with_suffix(".yaml").read_text())
    data["input"]["min_size_test"] = 80  # an inference choice: free
    (tmp_path / "bigger.yaml").write_text(yaml.safe_dump(data))
    assert load_frcnn_vg(out, tmp_path / "bigger.yaml").cfg.min_size_test == 80
    data["anchor_generator"]["sizes"] = [[32, 64, 128, 256]]  # what the RPN was trained with: not free
    (tmp_path / "anchors.yaml").write_text(yaml.safe_dump(data))
    with pytest.raises(WeightsError, match=r"det.pdparams was converted with anchor_sizes=\[64, 128, 256, 512\], "
                                           r"but .*anchors.yaml says anchor_sizes=\[32, 64, 128, 256\]"):
        load_frcnn_vg(out, tmp_path / "anchors.yaml")
    out.with_suffix(".yaml").unlink()  # the .yaml lost: the recorded config serves
    assert load_frcnn_vg(out).cfg == FRCNNVGConfig.tiny(num_classes=6, num_attrs=3)


# --------------------------------------------------------------------------- crafted .npy


class RunsCode:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_a_crafted_npy_runs_no_code_in_training_or_the_store_converter(tmp_path, capsys):
    marker = tmp_path / "pwned"
    items = np.empty(2, dtype=object)
    items[0], items[1] = ("a", 1), RunsCode(marker)
    np.save(tmp_path / "evil.npy", items, allow_pickle=True)
    status, err = run(howto100m_to_lmdb.main, [tmp_path / "evil.npy", "--out", tmp_path / "store", "--no_progress"],
                      capsys)
    assert_one_error(status, err, "evil.npy: the pickle names class", "system", "refusing to load it")
    with pytest.raises(DataError, match="evil.npy: the pickle names class '(posix|os|nt).system'"):
        NpyClips(tmp_path / "evil.npy")  # what DATASET.train reads
    assert not marker.exists()


# --------------------------------------------------------------------------- hostile inputs and outputs


def truncated(source, tmp_path, name):
    data = Path(source).read_bytes()
    (tmp_path / name).write_bytes(data[: len(data) // 2])
    return tmp_path / name


@pytest.mark.parametrize("source,needle", [
    ("r3d10_tiny.npz", "is not a readable .npz, or truncated"),
    ("r3d10_tiny.pth", "truncated or corrupt PyTorch checkpoint"),
    ("r3d10_tiny_legacy.pth", "truncated"),
])
def test_truncated_resnet3d_inputs(source, needle, tmp_path, capsys):
    bad = truncated(TORCH_FILES / source, tmp_path, source)
    status, err = run(convert_resnet3d.main, [bad, tmp_path / "o.pdparams", *R3D_ARGS], capsys)
    assert_one_error(status, err, source, needle)
    assert not (tmp_path / "o.pdparams").exists()


def test_truncated_bert_and_detector_inputs(detector_files, tmp_path, capsys):
    save_zip(tiny_bert(), tmp_path / "full.bin")
    bad = truncated(tmp_path / "full.bin", tmp_path, "pytorch_model.bin")
    assert_one_error(*run(bert_to_actbert.main, [bad, tmp_path / "o.pdparams"], capsys), "pytorch_model.bin")
    folder, _ = detector_files
    bad = truncated(folder / "pytorch_model.bin", tmp_path, "det.bin")
    status, err = run(convert_frcnn_vg.main, [bad, tmp_path / "o.pdparams", "--config", folder / "config.yaml"],
                      capsys)
    assert_one_error(status, err, "det.bin", "truncated or corrupt PyTorch checkpoint")
    np.savez(tmp_path / "det.npz", **{k: np.zeros(3, np.float32) for k in "abcdefgh"})
    bad = truncated(tmp_path / "det.npz", tmp_path, "half.npz")
    status, err = run(convert_frcnn_vg.main, [bad, tmp_path / "o.pdparams", "--config", folder / "config.yaml"],
                      capsys)
    assert_one_error(status, err, "half.npz is not a readable .npz, or truncated")
    assert not (tmp_path / "o.pdparams").exists()


def converter_cases(tmp_path, detector_files):
    """(name, main, args before the output) for each converter, its input in ``tmp_path``."""
    folder, _ = detector_files
    save_zip(tiny_bert(), tmp_path / "pytorch_model.bin")
    return [("resnet3d", convert_resnet3d.main, [TORCH_FILES / "r3d10_tiny.pth"], R3D_ARGS),
            ("bert", bert_to_actbert.main, [tmp_path / "pytorch_model.bin"], []),
            ("detector", convert_frcnn_vg.main, [folder / "pytorch_model.bin"], ["--config", folder / "config.yaml"])]


def test_unwritable_outputs(detector_files, tmp_path, capsys, monkeypatch):
    # We run as root, so a read-only mode would not stop us: the outputs lie under a regular
    # file (ENOTDIR), under /proc, or on a disk that is full (paddle.save raising ENOSPC).
    (tmp_path / "file").write_text("x")
    for name, main, source, extra in converter_cases(tmp_path, detector_files):
        for output, needle in ((tmp_path / "file" / "o.pdparams", "Not a directory"),
                               (Path("/proc/actbert_test/o.pdparams"), "cannot write")):
            status, err = run(main, [*source, output, *extra], capsys)
            assert_one_error(status, err, f"cannot write {output}", needle)
        with monkeypatch.context() as patch:
            def full_disk(obj, path, *args, **kwargs):
                Path(path).write_bytes(b"partial")
                raise OSError(28, "No space left on device")

            patch.setattr(paddle, "save", full_disk)
            status, err = run(main, [*source, tmp_path / f"{name}.pdparams", *extra], capsys)
        assert_one_error(status, err, f"cannot write {tmp_path / f'{name}.pdparams'}", "No space left on device")
        assert not list(tmp_path.glob(f"{name}.pdparams*")), name  # neither the output nor a partial one


def test_output_same_as_input_is_refused_and_the_input_kept(detector_files, tmp_path, capsys):
    for name, main, source, extra in converter_cases(tmp_path, detector_files):
        copy = tmp_path / f"{name}_{Path(source[0]).name}"
        copy.write_bytes(Path(source[0]).read_bytes())
        before = copy.read_bytes()
        status, err = run(main, [copy, copy, *extra], capsys)
        assert_one_error(status, err, f"the output {copy} is the input {copy}", "refusing to overwrite")
        assert copy.read_bytes() == before, name
    # The detector's config goes beside its output: OUT.yaml may not be the input config either.
    folder, _ = detector_files
    before = (folder / "config.yaml").read_bytes()
    status, err = run(convert_frcnn_vg.main, [folder, folder / "config.pdparams"], capsys)
    assert_one_error(status, err, f"the output {folder / 'config.yaml'} is the input")
    assert (folder / "config.yaml").read_bytes() == before and not (folder / "config.pdparams").exists()


def test_an_existing_output_is_never_overwritten(detector_files, tmp_path, capsys):
    for name, main, source, extra in converter_cases(tmp_path, detector_files):
        output = tmp_path / f"{name}_taken.pdparams"
        output.write_bytes(b"someone else's weights")
        status, err = run(main, [*source, output, *extra], capsys)
        assert_one_error(status, err, f"the output {output} exists", "refusing to overwrite")
        assert output.read_bytes() == b"someone else's weights", name


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_non_finite_weights_are_refused_naming_the_parameter(value, detector_files, tmp_path, capsys):
    arrays = dict(np.load(TORCH_FILES / "r3d10_tiny.npz"))
    arrays["layer2.0.conv1.weight"].flat[5] = value
    np.savez(tmp_path / "r3d.npz", **arrays)
    status, err = run(convert_resnet3d.main, [tmp_path / "r3d.npz", tmp_path / "o.pdparams", *R3D_ARGS], capsys)
    assert_one_error(status, err, "parameter 'layer2.0.conv1.weight' holds NaN or inf (1 of")
    bert = tiny_bert()
    bert["bert.encoder.layer.0.attention.self.query.bias"][2] = value
    save_zip(bert, tmp_path / "pytorch_model.bin")
    status, err = run(bert_to_actbert.main, [tmp_path / "pytorch_model.bin", tmp_path / "o.pdparams"], capsys)
    assert_one_error(status, err, "parameter 'bert.encoder.layer.0.attention.self.query.bias' holds NaN or inf")
    folder, model = detector_files
    state = {k: v.numpy() for k, v in model.state_dict().items()}
    state["backbone.stem.conv1.weight"].flat[0] = value
    np.savez(tmp_path / "det.npz", **state)
    status, err = run(convert_frcnn_vg.main, [tmp_path / "det.npz", tmp_path / "o.pdparams", "--config",
                                              folder / "config.yaml"], capsys)
    assert_one_error(status, err, "parameter 'backbone.stem.conv1.weight' holds NaN or inf")
    assert not (tmp_path / "o.pdparams").exists()
