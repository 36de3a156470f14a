"""The record writer: a real thread, a real journal file, real files (bounded waits only)."""

from __future__ import annotations

import logging
import queue
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from controller.events import InboxMessage, ReportWritten
from controller.record import files, hl7
from controller.record.files import FILES, rebuild_from_journal, report_dir
from controller.record.writer import RecordWriter
from tests.controller.harness import Harness

SID = "s-001"
MADE = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
WAIT_S = 30.0
SENDER = hl7.Sender("room-1")


class FileSpy:
    """Wraps the record's file writing: which threads wrote, and a gate that can hold them."""

    def __init__(self, write: Callable[[Path, str], None]) -> None:
        self._write = write
        self.threads: list[int] = []
        self.open = threading.Event()
        self.open.set()
        self.waiting = threading.Event()

    def __call__(self, path: Path, text: str) -> None:
        self.threads.append(threading.get_ident())
        self.waiting.set()
        assert self.open.wait(WAIT_S), "the test never let the writer go on"
        self._write(path, text)


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch) -> Iterator[FileSpy]:
    """Every record file written in the test goes through the spy."""
    spy = FileSpy(files._write)
    monkeypatch.setattr(files, "_write", spy)
    yield spy
    spy.open.set()  # never leave a worker stuck behind a failed test


def ended_session(tmp_path: Path) -> Harness:
    """A short session, ended; its journal on disk."""
    h = Harness(tmp_path)
    h.to_infusion_running()
    h.run(120, spo2=95)
    h.ok("end_session", reason="test")
    return h


def writer_for(h: Harness, data_dir: Path) -> tuple[RecordWriter, queue.Queue[InboxMessage]]:
    """A writer on ``h``'s journal file whose inbox is a queue the test reads."""
    inbox: queue.Queue[InboxMessage] = queue.Queue()
    writer = RecordWriter(h.journal.path, data_dir, inbox.put, sender=SENDER, now=lambda: MADE)
    return writer, inbox


def test_writes_on_its_own_thread_what_the_synchronous_build_writes(
    tmp_path: Path, spy: FileSpy
) -> None:
    h = ended_session(tmp_path)
    writer, inbox = writer_for(h, tmp_path)
    writer.write(SID)
    msg = inbox.get(timeout=WAIT_S)
    assert writer.close()
    assert isinstance(msg, ReportWritten) and msg.session_id == SID and msg.result is not None
    assert len(spy.threads) == len(FILES)
    assert threading.get_ident() not in spy.threads and len(set(spy.threads)) == 1
    out = report_dir(tmp_path, SID)
    written = {name: (out / name).read_bytes() for name in FILES}
    sync = rebuild_from_journal(h.journal, SID, tmp_path, sender=SENDER, created_at=MADE)
    assert msg.result == sync
    assert {name: (out / name).read_bytes() for name in FILES} == written
    assert msg.result["path"] == str(out / "report.html")
    h.close()


def test_a_record_that_cannot_be_written_is_reported_as_none(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    h = ended_session(tmp_path)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")  # tests run as root: only a file stops mkdir
    writer, inbox = writer_for(h, blocker / "data")
    with caplog.at_level(logging.ERROR, logger="roomd.record"):
        writer.write(SID)
        assert inbox.get(timeout=WAIT_S) == ReportWritten(SID, None)
    assert writer.close()
    assert "could not be written" in caplog.text and SID in caplog.text
    h.close()


def test_the_worker_goes_on_after_a_failure(tmp_path: Path) -> None:
    h = ended_session(tmp_path)
    writer, inbox = writer_for(h, tmp_path)
    writer.write("no-such-session")  # LookupError
    writer.write(SID)
    assert inbox.get(timeout=WAIT_S) == ReportWritten("no-such-session", None)
    second = inbox.get(timeout=WAIT_S)
    assert isinstance(second, ReportWritten) and second.session_id == SID
    assert second.result is not None and Path(second.result["path"]).is_file()
    assert writer.close()
    h.close()


def test_a_missing_journal_is_reported_as_none(tmp_path: Path) -> None:
    inbox: queue.Queue[InboxMessage] = queue.Queue()
    writer = RecordWriter(tmp_path / "nowhere.sqlite", tmp_path, inbox.put)
    writer.write(SID)
    assert inbox.get(timeout=WAIT_S) == ReportWritten(SID, None)
    assert writer.close()
    assert not (tmp_path / "nowhere.sqlite").exists(), "read-only: nothing created"


def test_close_finishes_the_queued_records_then_joins(tmp_path: Path, spy: FileSpy) -> None:
    h = ended_session(tmp_path)
    writer, inbox = writer_for(h, tmp_path)
    spy.open.clear()
    writer.write(SID)
    writer.write(SID)
    assert spy.waiting.wait(WAIT_S)
    assert writer.close(timeout_s=0.2) is False, "still busy: close gives up, bounded"
    assert inbox.empty()
    spy.open.set()
    assert writer.close(timeout_s=WAIT_S) is True
    got = [inbox.get_nowait(), inbox.get_nowait()]
    assert [m.session_id for m in got if isinstance(m, ReportWritten)] == [SID, SID]
    assert inbox.empty()
    assert "roomd-record" not in [t.name for t in threading.enumerate()]
    h.close()


def test_the_room_replies_to_end_session_before_the_record_is_written(
    tmp_path: Path, spy: FileSpy
) -> None:
    h = Harness(tmp_path)
    writer, inbox = writer_for(h, tmp_path)
    h.room.session.records = writer
    h.to_infusion_running()
    h.run(60)
    spy.open.clear()  # the writer will hold at its first file until the test lets it go
    assert h.ok("end_session", reason="test") == {"phase": "ended"}
    assert spy.waiting.wait(WAIT_S), "the writer started"
    assert "report_ready" not in h.types()
    spy.open.set()
    msg = inbox.get(timeout=WAIT_S)
    h.deliver(msg)
    (event,) = [e for e in h.journal.events_since(1, 10**6) if e.type == "report_ready"]
    assert event.session_id == SID
    assert isinstance(msg, ReportWritten) and event.data == msg.result
    assert Path(event.data["path"]).is_file() and event.data["summary"]["session_id"] == SID
    assert threading.get_ident() not in spy.threads
    assert writer.close()
    h.close()


def test_the_room_carries_the_records_code_only_once_a_record_is_written() -> None:
    # A fresh interpreter: the daemon and the writer, as at the room's start.
    probe = (
        "import sys, controller.daemon, controller.record.writer\n"
        "print(sorted(m for m in sys.modules if m.startswith('controller.record')))\n"
    )
    root = Path(__file__).resolve().parents[3]
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=root, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[0] == str(
        ["controller.record", "controller.record.hl7", "controller.record.writer"]
    )
