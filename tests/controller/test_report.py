"""The session record, checked against the events that made it (a whole session, fake clock)."""

from __future__ import annotations

import csv
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from controller.models import parse_utc
from controller.report import (
    CSV_COLUMNS,
    FILES,
    build_report,
    rebuild_from_journal,
    report_dir,
    summarize,
    vitals_rows,
)
from tests.controller.harness import Harness

SID = "s-001"
# (minutes after infusion start, sys, dia, hr) of the scheduled blood pressures
SCHEDULED = [(10, 130, 85, 80), (20, 126, 80, 76), (30, 122, 78, 74), (40, 118, 76, 70)]


def finish_nibp(h: Harness, sys: int, dia: int, hr: int) -> None:
    assert h.nibp.measuring, "a blood pressure was due"
    h.nibp.finish(sys, dia, hr)
    h.drain()


def run_music_session(h: Harness) -> None:
    """A whole music-mode session with a desaturation, a call and an override."""
    h.plan()
    h.ok("start_session")
    h.run(120)  # check_in
    h.ok("advance")
    h.run(300)  # integration
    h.ok("advance")
    h.run(180)  # intentions
    h.ok("advance")
    h.ok("confirm", item="readiness")
    h.ok("confirm", item="consent")
    h.ok("nibp_now")
    finish_nibp(h, 124, 79, 72)
    h.run(60)  # pre_infusion
    h.ok("advance")
    h.run(30)
    h.ok("start_infusion", override={"reason": "line checked by anaesthetist"})
    # 0-10 min: a short stretch of high SpO2 and slow pulse
    h.run(200)
    h.run(10, spo2=99, hr=58)
    h.run(390)
    finish_nibp(h, *SCHEDULED[0][1:])
    # 10-20 min: a desaturation, acknowledged 15 s after the alarm was raised
    h.run(300)
    h.run(10, spo2=86)
    assert h.events("alarm_raised")[-1]["alarm"]["code"] == "spo2_critical"
    h.run(15, spo2=86)
    h.ok("alarm_ack", alarm_id=h.events("alarm_raised")[-1]["alarm"]["id"])
    h.run(275)
    finish_nibp(h, *SCHEDULED[1][1:])
    # 20-30 min: the patient calls; acknowledged after 23 s, cleared 40 s later
    h.run(100)
    h.button.press()
    h.drain()
    h.run(23)
    h.ok("call_ack")
    h.run(40)
    h.ok("call_clear")
    h.run(437)
    finish_nibp(h, *SCHEDULED[2][1:])
    # 30-40 min: a fast pulse for a moment
    h.run(300)
    h.run(10, hr=112)
    h.run(290)
    finish_nibp(h, *SCHEDULED[3][1:])
    assert "infusion_completed" in h.types()
    h.run(120)
    h.audio.finish()
    h.drain()
    h.ok("advance")  # debrief; blood pressure still every 10 minutes
    h.run(480)
    finish_nibp(h, 116, 74, 68)
    h.run(420)
    h.ok("advance")  # preparation
    h.run(300)
    h.ok("advance")  # discharge: a blood pressure is requested on entry
    finish_nibp(h, 120, 78, 70)
    h.run(60)
    h.ok("discharge")


@pytest.fixture(scope="module")
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


def _ts(session: dict[str, Any], type_: str, **match: Any) -> list[datetime]:
    return [
        e.ts
        for e in session["events"]
        if e.type == type_ and all(e.data.get(k) == v for k, v in match.items())
    ]


def test_files_written_and_report_ready(session: dict[str, Any]) -> None:
    out: Path = session["out"]
    assert out == Path(out.parent.parent, "reports", SID)
    assert sorted(p.name for p in out.iterdir()) == sorted(FILES)
    ready = session["ready"]
    assert ready["path"] == str(out / "report.html")
    assert len(json.dumps(ready)) < 1024, "report_ready stays small"
    s = ready["summary"]
    assert s["session_id"] == SID and s["infusion_completed"] is True
    assert (s["spo2_min"], s["hr_min"], s["hr_max"]) == (86, 58, 112)
    assert (s["nibp_readings"], s["calls"], s["overrides"], s["emergency"]) == (7, 1, 1, False)


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
    started = _ts(session, "session_started")[0]
    ended = _ts(session, "session_ended")[0]
    assert rec["total_monitored_s"] == (ended - started).total_seconds()
    assert rec["complete"] and rec["end_reason"] == "discharged"
    assert parse_utc(rec["discharged_at"]) == _ts(session, "discharged")[0]


def test_infusion_and_blood_pressures_relative_to_infusion_start(session: dict[str, Any]) -> None:
    rec = session["rec"]
    inf = rec["infusion"]
    start = _ts(session, "infusion_started")[0]
    assert parse_utc(inf["started_at"]) == start
    assert parse_utc(inf["completed_at"]) == _ts(session, "infusion_completed")[0]
    assert inf["elapsed_s"] == inf["target_s"] == 2400
    nibp = rec["nibp"]
    results = _ts(session, "nibp_result")
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
    assert parse_utc(call["at"]) == _ts(session, "call_placed")[0]
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
    assert [c["item"] for c in rec["confirmations"]] == ["readiness", "consent"]
    music = rec["music"]
    assert [t["track"] for t in music["tracks"]] == ["a.ogg", "b.ogg", "c.ogg"]
    assert [t["played_s"] for t in music["tracks"]] == [300.0] * 3
    assert music["stopped"] == ["playlist_ended"]
    assert music["timeline"][0]["type"] == "music_started"
    assert rec["patient_ref"] == "P-7F3A" and rec["emergencies"] == []


def test_csv_round_trips(session: dict[str, Any]) -> None:
    rows = vitals_rows(session["events"], session["vitals"])
    with (session["out"] / "vitals.csv").open(newline="") as f:
        reader = csv.DictReader(f)
        assert tuple(reader.fieldnames or ()) == CSV_COLUMNS
        read = list(reader)
    assert len(read) == len(rows)
    for got, want in zip(read, rows, strict=True):
        for col in CSV_COLUMNS:
            expected = "" if want[col] is None else str(want[col])
            assert got[col] == expected, (col, got, want)
    samples = [json.loads(p) for _, k, p in session["vitals"] if k == "sample"]
    csv_samples = [r for r in read if r["kind"] == "sample"]
    assert [int(r["spo2"]) for r in csv_samples] == [s["spo2"] for s in samples]
    assert [r["time"] for r in csv_samples] == [s["ts"] for s in samples]
    nibp = [r for r in read if r["kind"] == "nibp"]
    assert [(int(r["sys"]), int(r["dia"])) for r in nibp] == [
        (n["sys"], n["dia"]) for n in session["rec"]["nibp"]
    ]
    start = _ts(session, "session_started")[0]
    for r in read:
        assert float(r["t_s"]) == (parse_utc(r["time"]) - start).total_seconds()


def test_events_jsonl_is_the_journal(session: dict[str, Any]) -> None:
    lines = (session["out"] / "events.jsonl").read_text().splitlines()
    assert [json.loads(line)["seq"] for line in lines] == [e.seq for e in session["events"]]
    assert json.loads(lines[-1])["type"] == "session_ended"


def test_html_is_self_contained(session: dict[str, Any]) -> None:
    html = (session["out"] / "report.html").read_text()
    assert "<svg" in html and "</svg>" in html
    for forbidden in ("http://", "https://", "<script", "@import", "url(", "<link", "<img"):
        assert forbidden not in html, forbidden
    assert "P-7F3A" in html and "spo2_critical" in html and "infusion_target" in html


def test_rebuild_from_journal_gives_the_same_files(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    h.to_infusion_running(music_mode="no_music", playlist=[])
    h.run(5 * 60)
    h.ok("checkin", note="calm | eyes ^closed & <quiet>")
    h.run(10 * 60)  # the next prompt goes unanswered
    h.ok("record_vitals", spo2=95, hr=66)
    h.ok("emergency", reason="laryngospasm")
    h.run(60)
    h.ok("end_session", reason="transferred to ED")
    first = rebuild_from_journal(h.journal, SID, tmp_path)
    out = report_dir(tmp_path, SID)
    before = {name: (out / name).read_bytes() for name in FILES}
    again = rebuild_from_journal(h.journal, SID, tmp_path)
    assert again == first
    assert {name: (out / name).read_bytes() for name in FILES} == before
    rec = json.loads(before["session.json"])
    assert rec["end_reason"] == "transferred to ED" and rec["discharged_at"] is None
    assert rec["infusion"]["stop_reason"] == "emergency" and not rec["infusion"]["completed"]
    assert [e["reason"] for e in rec["emergencies"]] == ["laryngospasm"]
    assert [c["note"] for c in rec["checkins"]["recorded"]] == ["calm | eyes ^closed & <quiet>"]
    assert len(rec["checkins"]["prompts"]) == 3 and rec["checkins"]["missed"] == 1
    assert rec["manual_vitals"][0]["spo2"] == 95
    assert "emergency" in [a["code"] for a in rec["alarms"]]
    assert all("discharge" not in n["flags"] for n in rec["nibp"])
    html = before["report.html"].decode()
    assert "&lt;quiet&gt;" in html and "<quiet>" not in html
    with pytest.raises(LookupError):
        rebuild_from_journal(h.journal, "no-such-session", tmp_path)
    h.close()


def test_a_running_session_reports_what_is_known(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    h.to_infusion_running()
    h.run(120)
    rec = summarize(h.journal.session_events(SID), h.journal.vitals(SID))
    assert not rec["complete"] and rec["ended_at"] is None
    assert rec["phases"][-1]["phase"] == "infusion" and rec["phases"][-1]["duration_s"] is None
    assert rec["infusion"]["elapsed_s"] is None
    h.close()


def test_report_dir_keeps_session_ids_inside_reports(tmp_path: Path) -> None:
    assert report_dir(tmp_path, "../../etc") == tmp_path / "reports" / "_.._etc"
    assert report_dir(tmp_path, "s 1/2") == tmp_path / "reports" / "s_1_2"
    with pytest.raises(ValueError):
        summarize([], [])
