"""roomd's start on a journal it cannot use: a typed cause, the buzzer's failure pattern,
exit 1, the file left where it is (issue 14, faults 2, 5 and 7)."""

from __future__ import annotations

from pathlib import Path

import pytest

from controller import daemon
from controller.daemon import main
from hw.buzzer import Buzzer


@pytest.fixture
def sounded(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The patterns the real buzzer (on gpiozero's mock pins) was told to sound."""
    patterns: list[str] = []
    real = Buzzer.annunciate

    def record(self: Buzzer, pattern: str) -> None:
        patterns.append(pattern)
        real(self, pattern)  # type: ignore[arg-type]

    monkeypatch.setattr(Buzzer, "annunciate", record)
    monkeypatch.setattr(daemon, "FAILURE_SIGNAL_S", 0.05)
    return patterns


def test_a_journal_that_cannot_be_opened_sounds_the_failure_pattern_and_exits_1(
    tmp_path: Path, sounded: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "roomd.toml"
    config.write_text('[room]\nid = "room-1"\n')
    data = tmp_path / "data"
    (data / "journal.sqlite").mkdir(parents=True)  # where the file should be: a folder
    code = main(["--config", str(config), "--data-dir", str(data), "--simulate"])
    assert code == 1
    err = capsys.readouterr().err
    assert f"roomd: cannot start: journal {data / 'journal.sqlite'}:" in err
    assert "left where it is" in err
    assert "Traceback" not in err
    assert sounded == ["failure"]
    assert (data / "journal.sqlite").is_dir()  # nothing moved, nothing set aside
    assert [p.name for p in data.iterdir()] == ["journal.sqlite"]
