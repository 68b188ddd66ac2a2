import pytest

from paddlevideo.utils.config import apply_override, get_config, load_yaml, parse_value
from paddlevideo.utils.errors import ConfigError
from paddlevideo.utils.registry import Registry, build_from_cfg


def write(tmp_path, text, name="c.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_numbers_in_yaml_and_overrides_are_numbers(tmp_path):
    cfg = load_yaml(write(tmp_path, "OPTIMIZER:\n  weight_decay:\n    value: 1e-4\nepochs: 10\n"))
    assert cfg.OPTIMIZER.weight_decay.value == pytest.approx(1e-4)
    assert parse_value("2e-5") == pytest.approx(2e-5)
    assert parse_value("[4200, 8400]") == [4200, 8400]
    assert parse_value("a/b.npy") == "a/b.npy"


def test_override_splits_on_first_equals_and_indexes_lists(tmp_path):
    cfg = load_yaml(write(tmp_path, "PIPELINE:\n  train:\n    transform:\n    - FeaturePadding:\n"
                                    "    - RandomCap:\n        caption_path: a.json\n"))
    apply_override(cfg, "PIPELINE.train.transform.1.caption_path=x=y.json")
    apply_override(cfg, "PIPELINE.train.transform.1.RandomCap.caption_path=z.json")
    assert cfg.PIPELINE.train.transform[1].RandomCap.caption_path == "z.json"
    apply_override(cfg, "PIPELINE.train.transform.0.max_region_num=36")
    assert cfg.PIPELINE.train.transform[0].FeaturePadding.max_region_num == 36


def test_override_of_missing_section_suggests(tmp_path):
    cfg = load_yaml(write(tmp_path, "DATASET:\n  batch_size: 8\n"))
    with pytest.raises(ConfigError, match="did you mean 'DATASET'"):
        apply_override(cfg, "DATASE.batch_size=16")
    with pytest.raises(ConfigError, match="KEY.PATH=value"):
        apply_override(cfg, "DATASET.batch_size")


def test_unknown_key_is_rejected_with_suggestion(tmp_path):
    path = write(tmp_path, "DATASET:\n  batch_size: 8\nepochs: 1\n")
    assert get_config(path, ["DATASET.batch_size=16"]).DATASET.batch_size == 16
    with pytest.raises(ConfigError, match="did you mean 'batch_size'"):
        get_config(path, ["DATASET.batch_sise=16"])
    with pytest.raises(ConfigError, match="did you mean 'epochs'"):
        get_config(write(tmp_path, "epoch: 3\n", "d.yaml"))


def test_yaml_syntax_error_names_file_and_line(tmp_path):
    path = write(tmp_path, "MODEL:\n  framework: ActBert\n  backbone: [oops\n")
    with pytest.raises(ConfigError, match=r"c\.yaml:\d+"):
        load_yaml(path)
    with pytest.raises(ConfigError, match="not found"):
        load_yaml(tmp_path / "missing.yaml")


def test_builder_lists_registered_names_and_checks_keys():
    reg = Registry("THINGS")

    @reg.register()
    class Box:
        def __init__(self, size=1):
            self.size = size

    assert build_from_cfg({"name": "Box", "size": 3}, reg).size == 3
    with pytest.raises(ConfigError, match="registered: Box"):
        build_from_cfg({"name": "Bx"}, reg)
    with pytest.raises(ConfigError, match="did you mean 'size'"):
        build_from_cfg({"name": "Box", "sise": 3}, reg, where="MODEL.box")


def test_utils_imports_nothing_of_the_layers_above_it():
    import ast
    from pathlib import Path

    utils = Path(__file__).resolve().parents[2] / "paddlevideo" / "utils"
    upward = []
    for path in sorted(utils.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.level > 1 or (node.module or "").startswith("paddlevideo")):
                upward.append(f"{path.name}: from {'.' * node.level}{node.module or ''}")
    assert not upward, upward


def test_component_keys_are_still_checked_through_get_config(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("MODEL:\n  framework: ActBert\n  backbone:\n    name: BertForMultiModalPreTraining\n"
                    "    hiden_size: 64\n")
    with pytest.raises(ConfigError, match="hiden_size.*did you mean 'hidden_size'"):
        get_config(path)
