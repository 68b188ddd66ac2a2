"""The project logger: setup replaces its own handlers only, and closes them."""

import logging

from paddlevideo.utils.logger import get_logger, setup_logger


def test_setup_keeps_foreign_handlers_and_closes_its_own(tmp_path, capsys):
    logger = get_logger()
    records = []
    foreign = logging.Handler()
    foreign.emit = records.append
    logger.addHandler(foreign)
    try:
        setup_logger(tmp_path / "a")
        first_file = next(h for h in logger.handlers if isinstance(h, logging.FileHandler))
        setup_logger(tmp_path / "b")  # a second run in one process (a test after a training)
        assert first_file.stream is None  # closed, not leaked
        assert foreign in logger.handlers and not logger.propagate
        files = [h for h in logger.handlers if isinstance(h, logging.FileHandler)]
        assert len(files) == 1 and files[0].baseFilename == str(tmp_path / "b" / "train.log")
        logger.info("hello")
        assert [r.getMessage() for r in records] == ["hello"]
        assert "hello" in capsys.readouterr().out  # exactly one stdout handler
        assert (tmp_path / "b" / "train.log").read_text().count("hello") == 1
        assert "hello" not in (tmp_path / "a" / "train.log").read_text()
    finally:
        logger.removeHandler(foreign)
        setup_logger()
