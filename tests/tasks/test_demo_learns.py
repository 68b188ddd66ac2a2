"""The newcomer demo, shortened: pretraining on the demo corpus lifts zero-shot
retrieval on its held-out test videos far above chance.

Runs ``main.py`` as a user would (train, then ``--test``) on freshly generated demo
data. The matching loss sits at ln 2 for roughly 800 steps before it falls, so the
pretraining (the ``demo_pretrained`` fixture, shared with the fine-tuning test) cannot be
much shorter than ~1100 steps (about 4 minutes on 2 CPU cores); it is the slowest part
of the suite on purpose.
"""

import json

from demo_helpers import CONFIGS, demo_test_overrides, run_python

CHANCE_R1 = 1.0  # %, 100 test videos


def test_demo_pretraining_lifts_retrieval_far_above_chance(demo_pretrained, tmp_path):
    data, out, checkpoint, log = demo_pretrained
    assert "loss_match:" in log
    run_python(["main.py", "--test", "-c", str(CONFIGS / "actbert_msrvtt_demo.yaml"), "-w", str(checkpoint),
                *demo_test_overrides(data, tmp_path)])
    metrics = json.loads((tmp_path / "msrvtt_metrics.json").read_text())
    assert metrics["t2v"]["R@1"] >= 10 * CHANCE_R1, metrics
    assert metrics["t2v"]["R@5"] >= 20 * CHANCE_R1, metrics
    assert (out / "loss_curve.png").stat().st_size > 0 and (tmp_path / "msrvtt_ranks.png").stat().st_size > 0
