"""Small demo corpora of the step tasks (tools/demo_steps.py), written once per test session
and shared by the reader, dataset and demo-corpus tests."""

import pytest

from tools.demo_steps import make_coin_demo, make_crosstask_demo


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
