"""The session record's summary, checked against the events that made it (a whole session,
fake clock)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from controller.models import parse_utc
from controller.record.summary import summarize
from tests.controller.harness import Harness
from tests.controller.record.sessions import SCHEDULED, SID, times_of


def test_phases_durations_are_the_differences_of_phase_changes(session: dict[str, Any]) -> None:
    rec, events = session["rec"], session["events"]
    changes = [e for e in events if e.type == "phase_changed"]
    phases = rec["phases"]
    assert [p["phase"] for p in phases] == [e.data["to"] for e in changes[:-1]]
    for p, here, after in zip(phases, changes[:-1], changes[1:], strict=True):
        assert p["duration_s"] == (after.ts - here.ts).total_seconds()
        assert parse_utc(p["start"]) == here.ts and parse_utc(p["end"]) == after.ts
    durations = {p["phase"]: p["duration_s"] for p in phases}
    assert durations["check_in"] == 120
    assert durations["integration"] == 300
    assert durations["intentions"] == 180
    assert durations["debrief"] == 900
    assert durations["preparation"] == 300
    started = times_of(session, "session_started")[0]
    ended = times_of(session, "session_ended")[0]
    assert rec["total_monitored_s"] == (ended - started).total_seconds()
    assert rec["complete"] and rec["end_reason"] == "discharged"
    assert parse_utc(rec["discharged_at"]) == times_of(session, "discharged")[0]


def test_infusion_and_blood_pressures_relative_to_infusion_start(session: dict[str, Any]) -> None:
    rec = session["rec"]
    inf = rec["infusion"]
    start = times_of(session, "infusion_started")[0]
    assert parse_utc(inf["started_at"]) == start
    assert parse_utc(inf["completed_at"]) == times_of(session, "infusion_completed")[0]
    assert inf["elapsed_s"] == inf["target_s"] == 2400
    nibp = rec["nibp"]
    results = times_of(session, "nibp_result")
    assert [parse_utc(n["at"]) for n in nibp] == results
    assert [n["since_infusion_s"] for n in nibp] == [(t - start).total_seconds() for t in results]
    assert nibp[0]["since_infusion_s"] == -90 and nibp[0]["flags"] == ["baseline"]
    assert [n["since_infusion_s"] for n in nibp[1:5]] == [m * 60 for m, *_ in SCHEDULED]
    assert [(n["sys"], n["dia"], n["hr"]) for n in nibp[1:5]] == [tuple(s[1:]) for s in SCHEDULED]
    assert nibp[4]["flags"] == ["infusion_target"]
    assert nibp[5]["flags"] == [] and nibp[5]["since_infusion_s"] == 50 * 60
    assert nibp[6]["flags"] == ["discharge"] and nibp[6]["sys"] == 120
    assert nibp[2]["map"] == round((126 + 2 * 80) / 3)


def test_oximetry_extremes_are_what_was_fed(session: dict[str, Any]) -> None:
    ox = session["rec"]["oximetry"]
    assert (ox["spo2"]["min"], ox["spo2"]["max"]) == (86, 99)
    assert (ox["hr"]["min"], ox["hr"]["max"]) == (58, 112)
    samples = [v for v in session["vitals"] if v[1] == "sample"]
    assert ox["samples"] == ox["valid_samples"] == len(samples)
    first = json.loads(samples[0][2])
    low_at = next(json.loads(p)["ts"] for _, k, p in samples if json.loads(p)["spo2"] == 86)
    assert ox["spo2"]["min_at"] == low_at and first["ts"] <= low_at


def test_alarm_time_to_acknowledge(session: dict[str, Any]) -> None:
    alarms = session["rec"]["alarms"]
    # No sample yet when the session starts: the room says so until the first one arrives.
    assert [(a["code"], a["t_s"], a["duration_s"]) for a in alarms if a["kind"] == "technical"] == [
        ("vitals_stale", 0, 5)
    ]
    (a,) = [a for a in alarms if a["kind"] == "physiological"]
    assert a["code"] == "spo2_critical"
    raised = parse_utc(a["at"])
    acked = next(
        e.ts
        for e in session["events"]
        if e.type == "alarm_acknowledged" and e.data["alarm"]["id"] == a["id"]
    )
    assert a["time_to_ack_s"] == (acked - raised).total_seconds() == 15
    assert a["acknowledged_by"] == "dr-lee" and a["priority"] == "high"
    assert a["cleared_at"] is not None


def test_call_time_to_acknowledge_and_clear(session: dict[str, Any]) -> None:
    (call,) = session["rec"]["calls"]
    assert parse_utc(call["at"]) == times_of(session, "call_placed")[0]
    assert call["time_to_ack_s"] == 23 and call["time_to_clear_s"] == 63
    assert call["where"] == "tablet" and call["escalations"] == 0


def test_override_music_and_confirmations(session: dict[str, Any]) -> None:
    rec = session["rec"]
    (override,) = rec["overrides"]
    assert override["gate"] == "infusion_start"
    assert override["reason"] == "line checked by anaesthetist" and override["by"] == "dr-lee"
    assert "iv_line" in override["unmet"]
    gates = {g["gate"]: g["met"] for g in rec["gates"]}
    assert gates == {"safety": True, "infusion_start": False, "discharge": True}
    assert [c["item"] for c in rec["confirmations"]] == [
        "readiness",
        "consent",
        "psych_ready",
        "reminders_given",
    ]
    music = rec["music"]
    assert [t["track"] for t in music["tracks"]] == ["a.ogg", "b.ogg", "c.ogg"]
    assert [t["played_s"] for t in music["tracks"]] == [300.0] * 3
    assert music["stopped"] == ["playlist_ended"]
    assert music["timeline"][0]["type"] == "music_started"
    assert rec["patient_ref"] == "P-7F3A" and rec["emergencies"] == []


def test_a_running_session_reports_what_is_known(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    h.to_infusion_running()
    h.run(120)
    rec = summarize(h.journal.session_events(SID), h.journal.vitals(SID))
    assert not rec["complete"] and rec["ended_at"] is None
    assert rec["phases"][-1]["phase"] == "infusion" and rec["phases"][-1]["duration_s"] is None
    assert rec["infusion"]["elapsed_s"] is None
    h.close()


def test_no_events_is_nothing_to_report() -> None:
    with pytest.raises(ValueError):
        summarize([], [])


def test_a_session_seen_before_any_phase_change_has_no_phases(tmp_path: Path) -> None:
    # The clinic archive may summarise a session whose first events it has not fetched yet.
    h = Harness(tmp_path)
    h.plan()
    h.ok("start_session")
    started = [e for e in h.journal.events_since(1, 100) if e.session_id == "s-001"]
    before_phases = [e for e in started if e.type != "phase_changed"][:2]
    assert summarize(before_phases, [])["phases"] == []
    h.close()
