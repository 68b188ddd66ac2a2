"""The region extractor (VG Faster R-CNN port) against the public PyTorch port's fixture, through
tools/convert_frcnn_vg.py; the converter's errors; the fewer-than-36-boxes case."""

import json
import sys

import numpy as np
import pytest
import yaml

from paddlevideo.loader.pipelines.multimodal import normalised_locations
from paddlevideo.modeling.extractors import FRCNNVG, load_frcnn_vg, to_actbert_regions
from paddlevideo.modeling.extractors.frcnn_vg import FRCNNVGConfig, nms, random_init, save_frcnn_vg
from paddlevideo.modeling.extractors.recorded import SETTINGS_KEY
from paddlevideo.utils.errors import ConfigError, DataError, WeightsError
from tools import convert_frcnn_vg

# The fixture README's suggested checks.
ATOL_IMAGE, ATOL_FEATURE, ATOL_PROB, ATOL_BOX = 1e-4, 1e-4, 1e-6, 1e-3


@pytest.fixture(scope="module")
def fixture_dir(golden_dir):
    return golden_dir / "extractors" / "frcnn_vg"


@pytest.fixture(scope="module")
def public_yaml(fixture_dir):
    """The exact config.yaml the fixture's PyTorch model was built from."""
    return json.loads((fixture_dir / "config.json").read_text())["config_yaml"]


@pytest.fixture(scope="module")
def public_dir(fixture_dir, public_yaml, tmp_path_factory):
    """The public checkpoint's layout: config.yaml beside the tensors (here an .npz)."""
    folder = tmp_path_factory.mktemp("frcnn_public")
    (folder / "config.yaml").write_text(yaml.safe_dump(public_yaml))
    return folder


@pytest.fixture(scope="module")
def converted(fixture_dir, public_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("frcnn_converted") / "frcnn_vg.pdparams"
    code = convert_frcnn_vg.main([str(fixture_dir / "weights.npz"), str(out),
                                  "--config", str(public_dir / "config.yaml")])
    assert code == 0
    return out


@pytest.fixture(scope="module")
def model(converted):
    return load_frcnn_vg(converted)  # the config comes from the .yaml the converter wrote beside it


@pytest.fixture(scope="module")
def run(model, fixture_dir):
    """One pass of the whole detector over the fixture image, with its intermediates."""
    image = np.load(fixture_dir / "inputs.npz")["image_rgb"]
    trace = {}
    detection = model.extract([image], trace=trace)[0]
    return detection, trace, np.load(fixture_dir / "outputs.npz")


def close(got, want, atol, name):
    np.testing.assert_allclose(np.asarray(got, np.float64), want, atol=atol, rtol=0, err_msg=name)


def test_preprocessing_backbone_and_rpn_match(run):
    _, trace, ref = run
    close(trace["pre_images"], ref["pre_images"], ATOL_IMAGE, "pre_images")  # RGB, Caffe BGR means, FMA resize
    np.testing.assert_array_equal(trace["sizes"], ref["pre_sizes"])
    np.testing.assert_array_equal(trace["scales_yx"], ref["pre_scales_yx"])
    close(trace["res4"], ref["res4"], ATOL_FEATURE, "res4")
    boxes, logits = trace["proposals"][0]
    assert boxes.shape == (300, 4)
    close(logits, ref["rpn_logits"], ATOL_FEATURE, "rpn_logits")  # same proposals in the same order
    close(boxes, ref["rpn_proposals"], ATOL_BOX, "rpn_proposals")


def test_fixed_boxes_pool_head_and_scores_match(model, run, fixture_dir):
    import paddle

    _, _, ref = run
    res4 = paddle.to_tensor(ref["res4"])
    boxes = np.load(fixture_dir / "inputs.npz")["boxes_orig"] / ref["pre_scales_yx"][0][[1, 0, 1, 0]]
    close(boxes, ref["fixed_boxes_resized"], 1e-4, "fixed_boxes_resized")
    boxes = ref["fixed_boxes_resized"]
    # RoIPool rounds box 0's .5 cells away from zero: exact equality is the check.
    np.testing.assert_array_equal(model.roi_heads.pool(res4, [boxes]).numpy(), ref["fixed_roipool"])
    head = model.box_head(res4, [boxes])
    close(head["features"], ref["fixed_roi_features"], ATOL_FEATURE, "features")
    close(head["obj_logits"], ref["fixed_obj_logits"], ATOL_FEATURE, "obj_logits")
    close(head["attr_logits"], ref["fixed_attr_logits"], ATOL_FEATURE, "attr_logits")
    close(head["box_deltas"], ref["fixed_box_deltas"], ATOL_FEATURE, "box_deltas")
    from paddlevideo.modeling.extractors.frcnn_vg import softmax

    close(softmax(head["obj_logits"]), ref["fixed_obj_probs"], ATOL_PROB, "obj_probs")
    attr = softmax(head["attr_logits"][:, :-1])
    close(attr, ref["fixed_attr_probs"], ATOL_PROB, "attr_probs")
    np.testing.assert_array_equal(attr.argmax(1), ref["fixed_attr_max_id"])
    close(attr.max(1), ref["fixed_attr_max_prob"], ATOL_PROB, "attr_max_prob")


def test_detections_match_the_public_pipeline(run):
    det, _, ref = run
    assert det["num_boxes"] == int(ref["pipe_preds_per_image"][0]) == 36 and det["nms_thresh"] == 0.5
    np.testing.assert_array_equal(det["obj_ids"], ref["pipe_obj_ids"][0])  # ids and order exactly
    np.testing.assert_array_equal(det["attr_ids"], ref["pipe_attr_ids"][0])
    close(det["boxes"], ref["pipe_boxes"][0], ATOL_BOX, "boxes")
    close(det["normalized_boxes"], ref["pipe_normalized_boxes"][0], ATOL_PROB, "normalized_boxes")
    close(det["obj_probs"], ref["pipe_obj_probs"][0], ATOL_PROB, "obj_probs")
    close(det["attr_probs"], ref["pipe_attr_probs"][0], ATOL_PROB, "attr_probs")
    close(det["features"], ref["pipe_roi_features"][0], ATOL_FEATURE, "roi_features")
    # The interface the extraction tool relies on.
    assert det["image_hw"] == (480, 640)
    assert det["boxes"].dtype == det["features"].dtype == det["cls_prob"].dtype == np.float32
    assert det["features"].shape == (36, 128) and det["cls_prob"].shape == (36, 1601)
    np.testing.assert_allclose(det["cls_prob"].sum(1), 1, atol=1e-5)
    # background is the last column: obj_ids/obj_probs are the arg-max/max of the first 1600
    np.testing.assert_array_equal(det["cls_prob"][:, :-1].argmax(1), det["obj_ids"])
    close(det["cls_prob"][:, :-1].max(1), ref["pipe_obj_probs"][0], ATOL_PROB, "cls_prob max")


def test_actbert_regions_put_background_first_and_normalise_locations(run):
    det, _, _ = run
    regions = to_actbert_regions(det)
    assert regions["n_boxes"] == 36 and (regions["image_h"], regions["image_w"]) == (480, 640)
    np.testing.assert_array_equal(regions["image_target"][:, 0], det["cls_prob"][:, 1600])
    np.testing.assert_array_equal(regions["image_target"][:, 1:], det["cls_prob"][:, :1600])
    np.testing.assert_array_equal(regions["image_feature"], det["features"])
    loc = regions["image_loc"]
    np.testing.assert_allclose(loc[:, :4], det["normalized_boxes"], atol=1e-6)
    box = det["boxes"][3]
    assert loc[3, 4] == pytest.approx((box[2] - box[0]) * (box[3] - box[1]) / (640 * 480), rel=1e-5)
    np.testing.assert_array_equal(loc, normalised_locations(det["boxes"], 480, 640))


# ---------------------------------------------------------------- fewer than 36 boxes


def test_nms_matches_torchvision_rules():
    boxes = np.array([[0, 0, 10, 10], [0, 0, 10, 7], [0, 0, 10, 10], [20, 20, 30, 30]], np.float32)
    scores = np.array([0.9, 0.8, 0.7, 0.95], np.float32)
    # box 1 overlaps box 0 with IoU exactly 0.7: kept at 0.7 (suppression needs IoU > thr)
    np.testing.assert_array_equal(nms(boxes, scores, 0.7), [3, 0, 1])
    np.testing.assert_array_equal(nms(boxes, scores, 0.69), [3, 0])
    np.testing.assert_array_equal(nms(boxes, scores, 0.7, limit=2), [3, 0])
    empty = np.array([[5, 5, 5, 5], [5, 5, 5, 5]], np.float32)  # IoU 0/0: NaN, never suppresses
    np.testing.assert_array_equal(nms(empty, np.array([0.5, 0.6], np.float32), 0.5), [1, 0])


@pytest.fixture(scope="module")
def tiny():
    cfg = FRCNNVGConfig.tiny(num_classes=6, num_attrs=3)
    return random_init(FRCNNVG.from_config(cfg), seed=0)


def _head(logits, deltas=None):
    logits = np.asarray(logits, np.float32)
    return {"obj_logits": logits, "box_deltas": np.zeros((len(logits), 6 * 4), np.float32) if deltas is None
            else deltas, "features": np.arange(len(logits), dtype=np.float32)[:, None]}


def test_retries_then_returns_fewer_boxes_where_the_public_code_crashes(tiny):
    # 5 proposals: 0/1 overlap with IoU 0.65, 2/3 with IoU 0.55, 4 alone; each its own score.
    proposals = np.array([[0, 0, 100, 100], [0, 0, 100, 65], [200, 0, 300, 100], [200, 0, 300, 55],
                          [0, 200, 50, 250]], np.float32)
    logits = np.full((5, 7), -5.0, np.float32)
    logits[np.arange(5), [0, 1, 2, 3, 4]] = [5.0, 4.0, 3.0, 2.0, 1.0]
    size = np.array([400, 400])
    # min_detections 36: 3 boxes at 0.5, 4 at 0.6, 5 at 0.7 -> every retry fails; 0.7's boxes returned
    keep, boxes, classes, _, threshold = tiny.select(proposals, _head(logits), size, max_boxes=36)
    assert threshold == 0.7 and list(keep) == [0, 1, 2, 3, 4] and list(classes) == [0, 1, 2, 3, 4]
    np.testing.assert_array_equal(boxes, proposals)  # zero deltas: the proposals themselves
    # min_detections capped by max_boxes=4: 0.5 leaves 3, 0.6 leaves 4 -> stops at 0.6
    keep, _, _, _, threshold = tiny.select(proposals, _head(logits), size, max_boxes=4)
    assert threshold == 0.6 and list(keep) == [0, 2, 3, 4]
    keep, _, _, _, threshold = tiny.select(proposals, _head(logits), size, max_boxes=3)
    assert threshold == 0.5 and list(keep) == [0, 2, 4]


def test_background_is_ignored_when_choosing_the_class_and_box(tiny):
    proposals = np.array([[0, 0, 100, 100]], np.float32)
    logits = np.array([[0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 9.0]], np.float32)  # background (last) highest
    deltas = np.zeros((1, 24), np.float32)
    deltas[0, 4:8] = [10.0, 0.0, 0.0, 0.0]  # class 1's box moves right by one width (weights 10,10,5,5)
    _, boxes, classes, scores, _ = tiny.select(proposals, _head(logits, deltas), np.array([400, 400]), 36)
    assert classes[0] == 1 and scores[0] == pytest.approx(np.exp(1) / (np.exp(9) + np.exp(1) + 5), rel=1e-5)
    np.testing.assert_allclose(boxes[0], [100, 0, 200, 100], atol=1e-4)


def test_small_model_end_to_end_on_odd_sizes(tiny):
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (37, 90, 3), dtype=np.uint8), rng.integers(0, 256, (120, 31, 3), dtype=np.uint8)]
    assert tiny.resized_size(37, 90) == (41, 100) and tiny.resized_size(120, 31) == (100, 26)  # capped at 100
    dets = tiny.extract(images, max_boxes=5)
    for det, image in zip(dets, images):
        n = det["num_boxes"]
        assert 1 <= n <= 5 and det["image_hw"] == image.shape[:2]
        assert det["boxes"].shape == (n, 4) and det["features"].shape == (n, 32) and det["cls_prob"].shape == (n, 7)
        h, w = image.shape[:2]
        assert (det["boxes"] >= 0).all() and (det["boxes"][:, 0::2] <= w + 1e-3).all()
        assert (det["boxes"][:, 1::2] <= h + 1e-3).all()
        regions = to_actbert_regions(det)
        assert regions["image_loc"].shape == (n, 5) and regions["image_target"].shape == (n, 7)
    assert tiny.extract([]) == []
    with pytest.raises(DataError, match=r"image 1: expected an HxWx3 RGB array, got shape \(20, 20\)"):
        tiny.extract([images[0], np.zeros((20, 20), np.uint8)])
    with pytest.raises(DataError, match="image 0: expected uint8 pixels"):
        tiny.extract([images[0] / 255.0])
    tiny.roi_chunk = 7  # RoIs through res5 in chunks that straddle the two images: same result
    try:
        chunked = tiny.extract(images, max_boxes=5)
    finally:
        tiny.roi_chunk = 100
    for got, want in zip(chunked, dets):
        np.testing.assert_allclose(got["features"], want["features"], atol=1e-5)
        np.testing.assert_array_equal(got["obj_ids"], want["obj_ids"])


def test_saved_random_weights_load_back(tiny, tmp_path):
    save_frcnn_vg(tiny, tmp_path / "tiny.pdparams")  # what the extraction tests use as a detector
    again = load_frcnn_vg(tmp_path / "tiny.pdparams")
    image = np.random.default_rng(1).integers(0, 256, (50, 60, 3), dtype=np.uint8)
    want, got = tiny.extract([image])[0], again.extract([image])[0]
    assert again.cfg == tiny.cfg and got["num_boxes"] == want["num_boxes"] > 0
    np.testing.assert_array_equal(got["features"], want["features"])


def test_no_proposals_give_zero_boxes(tiny):
    tiny.cfg.post_nms_topk_test = 0
    try:
        det = tiny.extract([np.zeros((40, 40, 3), np.uint8)])[0]
    finally:
        tiny.cfg.post_nms_topk_test = 300
    assert det["num_boxes"] == 0 and det["boxes"].shape == (0, 4) and det["features"].shape == (0, 32)
    regions = to_actbert_regions(det)
    assert regions["image_loc"].shape == (0, 5) and regions["image_target"].shape == (0, 7)


# ---------------------------------------------------------------- converter and loader errors


@pytest.fixture(scope="module")
def torch_state(fixture_dir):
    return convert_frcnn_vg.read_tensors(str(fixture_dir / "weights.npz"))


def _cfg(public_yaml, **resnets):
    data = json.loads(json.dumps(public_yaml))
    data["resnets"].update(resnets)
    return FRCNNVGConfig.from_yaml_dict(data)


def test_converter_output_is_the_state_dict_the_model_expects(converted, torch_state):
    import paddle

    state = paddle.load(str(converted))
    assert state.pop(SETTINGS_KEY) is not None  # the config, recorded in the file
    assert len(state) == len(torch_state) - 104 - 1  # num_batches_tracked and the anchor table dropped
    np.testing.assert_array_equal(state["roi_heads.box_predictor.cls_score.weight"].numpy(),
                                  torch_state["roi_heads.box_predictor.cls_score.weight"].T)
    np.testing.assert_array_equal(state["backbone.res4.22.conv2.norm._variance"].numpy(),
                                  torch_state["backbone.res4.22.conv2.norm.running_var"])
    cfg = yaml.safe_load(converted.with_suffix(".yaml").read_text())
    assert cfg["resnets"]["width_per_group"] == 8 and cfg["input"]["min_size_test"] == 600


def test_converter_refuses_another_depth(torch_state, public_yaml):
    depth50 = {k: v for k, v in torch_state.items()
               if not any(k.startswith(f"backbone.res4.{i}.") for i in range(6, 23))}
    with pytest.raises(WeightsError, match=r"depth 50 \(blocks \[3, 4, 6\]\), the config depth 101: "
                                           r"'backbone.res4.6.conv1.weight' is absent in the checkpoint, "
                                           r"\[32, 64, 1, 1\] in the model"):
        convert_frcnn_vg.convert(depth50, _cfg(public_yaml))


def test_converter_refuses_another_width(torch_state, public_yaml):
    with pytest.raises(WeightsError, match=r"'backbone.stem.conv1.weight' has shape \[8, 3, 7, 7\], the config "
                                           r"expects \[16, 3, 7, 7\]"):
        convert_frcnn_vg.convert(torch_state, _cfg(public_yaml, stem_out_channels=16))


def test_converter_refuses_the_action_model(public_yaml, tmp_path, capsys):
    r3d = {"conv1.weight": np.zeros((64, 3, 7, 7, 7), np.float32), "bn1.weight": np.ones(64, np.float32)}
    np.savez(tmp_path / "r3d50.npz", **r3d)
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(public_yaml))
    assert convert_frcnn_vg.main([str(tmp_path / "r3d50.npz"), str(tmp_path / "out.pdparams")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ")
    assert "no 'backbone.stem.conv1.weight' (expected [8, 3, 7, 7]); its first key is 'conv1.weight' " \
           "[64, 3, 7, 7, 7]" in err


def test_converter_missing_files(tmp_path, capsys, fixture_dir):
    assert convert_frcnn_vg.main([str(tmp_path / "nope" / "pytorch_model.bin"), str(tmp_path / "o.pdparams")]) == 2
    assert capsys.readouterr().err == f"error: checkpoint not found: {tmp_path / 'nope' / 'pytorch_model.bin'}\n"
    assert convert_frcnn_vg.main([str(tmp_path), str(tmp_path / "o.pdparams")]) == 2
    assert capsys.readouterr().err == f"error: {tmp_path} holds no pytorch_model.bin\n"
    assert convert_frcnn_vg.main([str(fixture_dir / "weights.npz"), str(tmp_path / "o.pdparams")]) == 2
    assert "config not found" in capsys.readouterr().err


def test_loader_refuses_weights_of_another_config(converted, public_yaml, tmp_path):
    data = json.loads(json.dumps(public_yaml))
    data["roi_box_head"]["attr"] = False
    (tmp_path / "noattr.yaml").write_text(yaml.safe_dump(data))
    with pytest.raises(WeightsError, match=r"unexpected 'roi_heads.box_predictor.cls_embedding.weight' "
                                           r"\[1601, 16\] and 4 more"):
        load_frcnn_vg(converted, tmp_path / "noattr.yaml")
    with pytest.raises(ConfigError, match="detector config not found"):
        load_frcnn_vg(converted, tmp_path / "missing.yaml")
    data["resnets"]["norm"] = "GN"
    (tmp_path / "gn.yaml").write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match="resnets.norm = 'GN' is not supported"):
        load_frcnn_vg(converted, tmp_path / "gn.yaml")


def test_converter_reads_a_bin_without_torch(monkeypatch, public_yaml, tmp_path, capsys):
    (tmp_path / "pytorch_model.bin").write_bytes(b"not a checkpoint")
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(public_yaml))
    monkeypatch.setitem(sys.modules, "torch", None)  # as in CI: torch not installed (nor needed)
    assert convert_frcnn_vg.main([str(tmp_path), str(tmp_path / "o.pdparams")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pytorch_model.bin: not a PyTorch checkpoint" in err
