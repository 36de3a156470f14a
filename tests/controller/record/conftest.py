"""The whole session and its record that the record's tests read (built once)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from controller.record.files import build_report, report_dir
from tests.controller.harness import Harness
from tests.controller.record.sessions import SID, run_music_session


@pytest.fixture(scope="package")
def session(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One whole session and its report, shared by the tests that only read them."""
    tmp = tmp_path_factory.mktemp("session")
    h = Harness(tmp)
    run_music_session(h)
    events = h.journal.session_events(SID)
    vitals = h.journal.vitals(SID)
    out = report_dir(tmp, SID)
    ready = build_report(events, vitals, out, room_id="room-1")
    h.close()
    record = json.loads((out / "session.json").read_text())
    return {"events": events, "vitals": vitals, "out": out, "ready": ready, "rec": record}
