import pytest

from paddlevideo.utils.errors import DataError
from paddlevideo.utils.plot import _panels, parse_log, plot_losses

LOG = """[2026/11/27 01:00:00] training Tiny: 1 process(es), seed 1, cpu, output in out
[2026/11/27 01:00:00] epoch:[  1/2  ] train step:10   loss: 9.5 loss_text: 4.5 loss_region: 2.0 lr: 0.0002 eta: 0:00:01
[2026/11/27 01:00:01] epoch:[  1/2  ] train step:20   loss: 8.0 loss_text: 4.0 loss_region: 1.5 lr: 0.0002
[2026/11/27 01:00:02] something else
[2026/11/27 01:00:02] END epoch:1   val loss_avg: 7.9 loss_text_avg: 3.9 time: 0.5 sec, step: 25
[2026/11/27 01:00:03] epoch:[  2/2  ] train step:30   loss: 7.0 loss_text: 3.5 loss_region: 1.0 lr: 0.0002
[2026/11/27 01:00:04] END epoch:2   val loss_avg: 7.5 loss_text_avg: 3.7 time: 0.5 sec
[2026/11/27 01:00:05] END epoch:2   train loss_avg: 7.9 avg_ips: 3.0 instance/sec.
"""

FINETUNE = """[2026/11/27 02:00:00] training Ft: 1 process(es), seed 1, cpu, output in out
[2026/11/27 02:00:00] baseline validation of the starting weights, before the first step:
[2026/11/27 02:00:01] END epoch:0   val t2v_R1_avg: 52.000000 t2v_R5_avg: 92.0 t2v_MedR_avg: 1.0 \
t2v_MeanR_avg: 2.63 time: 1.00 sec, step: 0
[2026/11/27 02:00:02] epoch:[  1/1  ] train step:10   loss: 2.0 lr: 0.0002
[2026/11/27 02:00:03] END epoch:1   val t2v_R1_avg: 76.000000 t2v_R5_avg: 100.0 t2v_MedR_avg: 1.0 \
t2v_MeanR_avg: 1.38 time: 1.00 sec, step: 31
"""


def test_parse_log_puts_every_value_on_its_optimiser_step(tmp_path):
    log = tmp_path / "train.log"
    log.write_text(LOG)
    series = parse_log(log)
    assert series["train"]["loss"] == ([10, 20, 30], [9.5, 8.0, 7.0])
    assert series["train"]["loss_region"][1] == [2.0, 1.5, 1.0]
    assert set(series["train"]) == {"loss", "loss_text", "loss_region"}  # not lr, batch_cost, eta
    # the step the line names; an older line without it: the last training step before it
    assert series["val"]["loss_text"] == ([25, 30], [3.9, 3.7])
    assert set(series["val"]) == {"loss", "loss_text"}  # not time or step


def test_a_resumed_run_overrides_repeated_steps_and_a_fresh_run_starts_afresh(tmp_path):
    log = tmp_path / "train.log"
    resumed = ("[2026/11/27 01:10:00] resumed from out/Tiny_resume.pdckpt: epoch 2, batch 0, step 20\n"
               "[2026/11/27 01:10:00] training Tiny: 1 process(es), seed 1, cpu, output in out\n"
               "[2026/11/27 01:10:01] epoch:[  2/2  ] train step:30   loss: 6.0 lr: 0.0002\n")
    log.write_text(LOG + resumed)
    assert parse_log(log)["train"]["loss"] == ([10, 20, 30], [9.5, 8.0, 6.0])
    fresh = "[2026/11/27 01:20:00] training Tiny: 1 process(es), seed 2, cpu, output in out\n" \
            "[2026/11/27 01:20:01] epoch:[  1/2  ] train step:10   loss: 5.0 lr: 0.0002\n"
    log.write_text(LOG + fresh)
    series = parse_log(log)
    assert series["train"]["loss"] == ([10], [5.0]) and series["val"] == {}


def test_finetuning_plots_the_baseline_and_the_metrics_by_kind(tmp_path):
    log = tmp_path / "train.log"
    log.write_text(FINETUNE)
    series = parse_log(log)
    assert series["val"]["t2v_R1"] == ([0, 31], [52.0, 76.0])
    assert [(title, sorted(curves)) for title, curves in _panels(series)] == [
        ("train loss", ["loss"]), ("validation recall (%)", ["t2v_R1", "t2v_R5"]),
        ("validation rank", ["t2v_MeanR", "t2v_MedR"])]
    png = plot_losses(log, tmp_path / "curve.png")
    assert open(png, "rb").read(8) == b"\x89PNG\r\n\x1a\n"


def test_plot_writes_png_and_rejects_empty_logs(tmp_path):
    log = tmp_path / "train.log"
    log.write_text(LOG)
    png = plot_losses(log, tmp_path / "curve.png")
    assert open(png, "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    empty = tmp_path / "empty.log"
    empty.write_text("nothing\n")
    with pytest.raises(DataError, match="no training log lines"):
        plot_losses(empty, tmp_path / "x.png")
