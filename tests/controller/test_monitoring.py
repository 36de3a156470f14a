"""Monitoring's storage of readings: vitals are a session's telemetry, not an idle room's."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tests.controller.harness import Harness


def stored(path: Path) -> list[tuple[str | None, str]]:
    db = sqlite3.connect(path)
    try:
        return list(db.execute("SELECT session_id, kind FROM vitals ORDER BY id"))
    finally:
        db.close()


def test_no_vitals_are_stored_outside_a_session(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    h.run(120, step=1)  # an idle room with its oximeter on
    h.journal.flush()
    assert stored(h.journal.path) == []
    assert h.room.monitoring.latest_sample is not None  # kept in memory, for the gates
    h.to_pre_infusion()
    h.run(60, step=1)
    h.ok("end_session", reason="test")
    h.run(120, step=1)
    h.journal.flush()
    rows = stored(h.journal.path)
    assert {sid for sid, _ in rows} == {"s-001"}
    assert [kind for _, kind in rows].count("nibp") == 1
    assert [kind for _, kind in rows].count("sample") == 61  # the baseline one and 60 more
    h.close()
