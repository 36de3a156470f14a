"""The generated year of an archive: six-session courses, the cached fixture, its kept
summaries."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.archive_year import room_year, year_fixture
from mqtt_bridge.clinicd.config import CourseSection
from mqtt_bridge.clinicd.course import events_summary
from mqtt_bridge.clinicd.store import Store
from mqtt_bridge.clinicd.verbs import Archive


def test_a_generated_course_is_six_sessions_the_archive_summarises(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    path, patients = year_fixture(1, 14, lambda _m: None)
    assert path.is_relative_to(tmp_path / "cache")
    assert year_fixture(1, 14, lambda _m: None) == (path, patients)  # built once
    store = Store(path)
    try:
        course = Archive(store, CourseSection()).course(patients[0])
        assert [s["session_number"] for s in course["sessions"]] == [1, 2, 3, 4, 5, 6]
        assert all(s["bp"] and s["ended_at"] for s in course["sessions"])
        # Every ended session's summary is kept, as a running archive keeps them, and is the
        # one its events give.
        assert store.unsummarized() == []
        for s in course["sessions"]:
            events = store.session_events(s["session_id"])
            assert store.kept_summary(s["session_id"]) == events_summary(s["room_id"], events)
        # The fixture holds what room_year generates through the API, seq for seq.
        first = next(room_year("room-00", 14))
        assert [e.seq for e in store.session_events(first[0].session_id or "")] == [
            e.seq for e in first
        ]
    finally:
        store.close()
