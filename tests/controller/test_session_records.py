"""The room and its SessionRecords port: end_session does not wait for the record, and the
record's ReportWritten becomes report_ready."""

from __future__ import annotations

from pathlib import Path

from controller.event_data import ReportReady
from controller.events import ReportWritten
from tests.controller.harness import Harness

SID = "s-001"
READY = {
    "path": "/data/reports/s-001/report.html",
    "summary": {
        **ReportReady.example["summary"],
        "session_id": SID,
    },
}


class FakeRecords:
    """Remembers what it was asked to write; writes nothing (the test answers for it)."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def write(self, session_id: str) -> None:
        """Note the session."""
        self.asked.append(session_id)


def room_with_records(tmp_path: Path) -> tuple[Harness, FakeRecords]:
    """A harness whose room has a fake SessionRecords."""
    h = Harness(tmp_path)
    records = FakeRecords()
    h.room.session.records = records
    return h, records


def test_end_session_asks_for_the_record_and_replies_without_it(tmp_path: Path) -> None:
    h, records = room_with_records(tmp_path)
    h.to_infusion_running()
    h.run(30)
    assert records.asked == []
    assert h.ok("end_session", reason="test") == {"phase": "ended"}
    assert records.asked == [SID]
    assert h.types()[-2:] == ["session_ended", "lighting_changed"]
    assert "report_ready" not in h.types()
    h.close()


def test_report_written_becomes_report_ready_of_that_session(tmp_path: Path) -> None:
    h, records = room_with_records(tmp_path)
    h.to_infusion_running()
    h.ok("end_session", reason="test")
    assert records.asked == [SID]
    # The next session has started by the time the record is written.
    h.plan(session_id="s-002")
    h.ok("start_session")
    h.deliver(ReportWritten(SID, READY))
    (ready,) = [e for e in h.journal.events_since(1, 10**6) if e.type == "report_ready"]
    assert ready.session_id == SID and ready.data == READY
    assert h.room.session.state.session_id == "s-002"
    assert h.link.events[-1].type == "report_ready" and h.link.events[-1].session_id == SID
    h.close()


def test_a_record_that_failed_makes_no_report_ready(tmp_path: Path) -> None:
    h, _ = room_with_records(tmp_path)
    h.to_infusion_running()
    h.ok("end_session", reason="test")
    before = h.types()
    h.deliver(ReportWritten(SID, None))
    assert h.types() == before
    h.close()
