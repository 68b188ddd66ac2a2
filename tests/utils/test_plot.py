import pytest

from paddlevideo.utils.errors import DataError
from paddlevideo.utils.plot import parse_log, plot_losses

LOG = """[2026/11/27 01:00:00] epoch:[  1/2  ] train step:0    loss: 9.5 loss_text: 4.5 loss_region: 2.0 lr: 0.0002
[2026/11/27 01:00:01] epoch:[  1/2  ] train step:10   loss: 8.0 loss_text: 4.0 loss_region: 1.5 lr: 0.0002
[2026/11/27 01:00:02] something else
[2026/11/27 01:00:03] epoch:[  2/2  ] train step:0    loss: 7.0 loss_text: 3.5 loss_region: 1.0 lr: 0.0002
[2026/11/27 01:00:04] END epoch:2   val loss_avg: 7.5 loss_text_avg: 3.7 time: 0.5 sec
[2026/11/27 01:00:05] END epoch:2   train loss_avg: 7.9 avg_ips: 3.0 instance/sec.
"""


def test_parse_log_collects_each_part_in_order(tmp_path):
    log = tmp_path / "train.log"
    log.write_text(LOG)
    series = parse_log(log)
    assert series["train"]["loss"] == ([1, 2, 3], [9.5, 8.0, 7.0])
    assert series["train"]["loss_region"][1] == [2.0, 1.5, 1.0]
    assert series["val"]["loss_text"] == ([1], [3.7])


def test_plot_writes_png_and_rejects_empty_logs(tmp_path):
    log = tmp_path / "train.log"
    log.write_text(LOG)
    png = plot_losses(log, tmp_path / "curve.png")
    assert open(png, "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    empty = tmp_path / "empty.log"
    empty.write_text("nothing\n")
    with pytest.raises(DataError, match="no training log lines"):
        plot_losses(empty, tmp_path / "x.png")
