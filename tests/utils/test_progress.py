"""Progress bars are drawn on a terminal only, and never after ``--no_progress``."""

import io

import pytest

from paddlevideo.utils import progress


class Terminal(io.StringIO):
    def isatty(self):
        return True


@pytest.fixture
def allowed(monkeypatch):
    monkeypatch.setattr(progress, "_ALLOWED", True)


def draw(monkeypatch, stream):
    monkeypatch.setattr("sys.stderr", stream)
    with progress.progress_bar(total=3, desc="work", mininterval=0) as bar:
        for _ in range(3):
            bar.update(1)
    return stream.getvalue()


def test_a_bar_is_drawn_on_a_terminal_only(monkeypatch, allowed):
    assert "\r" in draw(monkeypatch, Terminal()) and "work" in draw(monkeypatch, Terminal())
    assert draw(monkeypatch, io.StringIO()) == ""  # a file or a pipe: nothing at all
    assert not progress.progress_enabled(stream=object())  # a stream without isatty


def test_no_progress_turns_every_later_bar_off(monkeypatch, allowed):
    progress.disable_progress()
    assert draw(monkeypatch, Terminal()) == ""
    assert not progress.progress_enabled(stream=Terminal())
