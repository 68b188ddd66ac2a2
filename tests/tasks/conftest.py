"""The demo model pretrained once per test session, and its zero-shot evaluation, shared by the
demo end-to-end tests. Both run in the background from the start of the session (``demo_runs``
in tests/conftest.py); these fixtures wait for them."""

import json

import pytest


@pytest.fixture(scope="session")
def demo_pretrained(demo_runs):
    """(demo data dir, pretraining output dir, checkpoint, training log): the demo corpus and the
    demo model pretrained on it (the slowest part of the suite)."""
    log = demo_runs.wait("pretrain")
    return demo_runs.data, demo_runs.out, demo_runs.checkpoint, log


@pytest.fixture(scope="session")
def demo_zero_shot(demo_pretrained, demo_runs):
    """(output dir, text->video metrics): ``main.py --test`` of the pretrained demo model on the
    held-out demo test set, run once as a user would (the demo's step 4)."""
    demo_runs.wait("zero_shot")
    return demo_runs.test_out, json.loads((demo_runs.test_out / "msrvtt_metrics.json").read_text())["t2v"]
