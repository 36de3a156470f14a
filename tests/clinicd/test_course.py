"""One session's summary from its events, including the contract v2 events (which the real
room cannot make yet: they are written here as the v2 contract defines them)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mqtt_bridge.clinicd.config import CourseSection
from mqtt_bridge.clinicd.course import (
    chosen,
    keep_summaries,
    session_summary,
    spo2_min,
    summarize_session,
)
from mqtt_bridge.clinicd.store import Store
from mqtt_bridge.clinicd.verbs import Archive
from tests.clinicd.support import event, session_events

V2: list[tuple[str, dict[str, Any]]] = [
    ("plan_amended", {"changes": {"playlist": "Gentle", "guidance": "body_scan"}, "by": "dr-a"}),
    (
        "dose_recorded",
        {"weight_kg": 70, "dose_mg_per_kg": 0.5, "total_mg": 35, "by": "dr-a", "warnings": []},
    ),
    ("side_effects_recorded", {"items": ["nausea"], "note": "mild", "by": "dr-a"}),
    (
        "adverse_event_recorded",
        {"kind": "hypertension", "severity": "mild", "action": "observed", "by": "dr-a"},
    ),
    ("vitals_recorded", {"by": "dr-a", "source": "manual", "spo2": 88}),
]
NOTE = {"note_id": "n1", "kind": "intentions", "by": "dr-a", "ts": "2026-01-05T09:01:00.000Z",
        "text": "to rest"}  # fmt: skip


def test_the_contracts_fields_from_a_rooms_events() -> None:
    notes = [{"note_id": "n1", "kind": "intentions", "by": "dr-a", "ts": "t", "text": "rest"}]
    s = summarize_session("room-3", session_events("s1", 1, extra=V2), notes, "fetched")
    assert s["session_id"] == "s1" and s["room_id"] == "room-3" and s["session_number"] == 1
    assert s["started_at"] == "2026-01-05T09:00:00.000Z"
    assert s["end_reason"] == "discharged" and s["ended_at"] is not None
    # the plan, as amended by `choose`
    assert (s["music_mode"], s["playlist"], s["guidance"]) == ("music", "Gentle", "body_scan")
    assert s["dose"]["total_mg"] == 35 and s["dose"]["by"] == "dr-a" and s["dose"]["at"]
    assert s["side_effects"][0]["items"] == ["nausea"]
    assert s["adverse_events"][0]["severity"] == "mild"
    assert s["notes"] == [{"kind": "intentions", "by": "dr-a", "ts": "t", "text": "rest"}]
    assert s["notes_status"] == "fetched"
    assert (s["bp_baseline"]["sys"], s["bp_peak"]["sys"]) == (120, 150)
    assert [b["sys"] for b in s["bp"]] == [120, 150]
    assert s["spo2_min"] == 88  # the hand-entered value is below the alarm's 90
    assert s["alarms"] == [{"code": "spo2_low", "priority": "medium"}]
    assert s["calls"] == 1
    assert s["music_played"] == [{"track": "a.ogg", "played_s": 540}]
    assert s["infusion"]["completed"] is True


def test_a_session_without_v2_events_or_notes() -> None:
    s = summarize_session("room-5", session_events("s2", 2), [])
    assert s["dose"] is None and s["side_effects"] == [] and s["adverse_events"] == []
    assert s["notes"] == [] and s["notes_status"] == "pending"
    assert s["playlist"] == ["a.ogg", "b.ogg"] and s["spo2_min"] == 90


def test_chosen_follows_every_amendment_and_spo2_min_prefers_the_lowest() -> None:
    events = [
        *session_events("s1", 1)[:1],
        event(2, "plan_amended", changes={"music_mode": "no_music"}),
        event(3, "plan_amended", changes={"music_mode": "music", "playlist": ["c.ogg"]}),
    ]
    assert chosen(events) == {"music_mode": "music", "playlist": ["c.ogg"], "guidance": "none"}
    assert spo2_min(events) is None
    report = event(4, "report_ready", path="/x", summary={"spo2_min": 91})
    assert spo2_min([*events, report]) == 91


def test_the_kept_summary_is_the_summary_recomputed_from_the_events(tmp_path: Path) -> None:
    """The course's fast path (summaries kept in the store) answers exactly what decoding
    every event answers, field for field and in the same order, as events keep coming."""
    store = Store(tmp_path / "x.sqlite")
    store.add_events("room-3", session_events("s1", 1, extra=V2))
    store.add_events("room-5", session_events("s2", 2, first_seq=1, days=4))
    store.put_notes("s1", [NOTE])
    store.mark_notes("s2", "unsupported")

    def recomputed(session_id: str) -> dict[str, Any]:
        room = store.session_room(session_id) or ""
        events = store.session_events(session_id)
        notes = store.notes_of(session_id)
        return summarize_session(room, events, notes, store.notes_state(session_id))

    def same(session_id: str) -> None:
        fast = session_summary(store, session_id)
        assert fast == recomputed(session_id)
        assert json.dumps(fast) == json.dumps(recomputed(session_id))  # the same order too

    assert keep_summaries(store, ["s2", "nope"]) == 1 and store.unsummarized() == ["s1"]
    assert keep_summaries(store) == 1 and store.unsummarized() == []
    for session_id in ("s1", "s2"):
        assert store.kept_summary(session_id) is not None
        same(session_id)
    # A late event (the room's report) and new notes: the answer follows both.
    late = event(99, "report_ready", "s1", minutes=200, path="/x", summary={"spo2_min": 85})
    store.add_events("room-3", [late])
    store.put_notes("s1", [NOTE | {"note_id": "n2", "text": "slept after"}])
    same("s1")
    assert session_summary(store, "s1")["spo2_min"] == 85  # type: ignore[index]
    assert store.kept_summary("s1") is not None  # computed on the query, and kept
    same("s1")
    assert session_summary(store, "nope") is None
    # The whole course, through the verb: identical with and without kept summaries.
    archive = Archive(store, CourseSection())
    course = archive.course("P-1")
    store._db.execute("DELETE FROM summaries")
    assert json.dumps(archive.course("P-1")) == json.dumps(course)
