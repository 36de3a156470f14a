"""The record of what clinicians documented: session.json and the report's tables and chart."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from controller.clock import FakeClock
from controller.models import parse_utc
from controller.record.files import rebuild_from_journal
from controller.record.reader import JournalReader
from controller.record.sections import local_clock, zone_label
from tests.controller.harness import Harness

SID = "s-001"
NOTE = "Wants to reconnect with her sister <Ana> & to sleep"
START = datetime.fromisoformat("2026-01-05T14:00:00+00:00")  # 09:00 in Montreal (UTC-5)


def documented_session(h: Harness) -> None:
    """Choice, notes, dose, hand-entered vitals, an adverse event, side effects, an alarm
    left open, and an end without discharge."""
    h.library.tracks = {"a.ogg": 600.0, "b.ogg": 900.0}
    h.to_pre_infusion()
    h.ok("choose", playlist=["a.ogg", "b.ogg"], guidance="clinician")
    h.ok("note", kind="intentions", text=NOTE)
    h.ok("confirm", item="mindfulness_done")
    h.ok("record_dose", weight_kg=80, dose_mg_per_kg=0.5, total_mg=50)
    h.ok("advance")
    h.ok("confirm", item="iv_line")
    h.ok("start_infusion")
    h.ok("record_vitals", sys=141, dia=88)
    h.ok("record_vitals", spo2=95, hr=66)
    h.ok("adverse_event", kind="vomiting", severity="mild", action="bowl given", text="once")
    h.run(40 * 60, step=10)
    if h.nibp.measuring:
        h.nibp.finish(120, 80, 70)
        h.drain()
    h.audio.finish()
    h.drain()
    h.ok("advance")
    h.ok("side_effects", items=["nausea", "dizziness"], note="resolved")
    h.run(30, spo2=85)  # a desaturation nobody acknowledges
    h.ok("end_session", reason="patient left against advice")


@pytest.fixture(scope="module")
def record(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("documented")
    h = Harness(tmp, clock=FakeClock(start=START))
    documented_session(h)
    h.journal.close()
    with JournalReader(tmp / "journal.sqlite") as reader:
        ready = rebuild_from_journal(reader, SID, tmp, timezone="America/Montreal")
    out = Path(ready["path"]).parent
    return {
        "rec": json.loads((out / "session.json").read_text()),
        "html": Path(ready["path"]).read_text(),
        "events": (out / "events.jsonl").read_text(),
    }


def test_session_json_holds_the_choice_as_planned_and_as_chosen(record: dict[str, Any]) -> None:
    rec = record["rec"]
    assert rec["report_version"] == 2
    assert rec["planned"] == {
        "music_mode": "music",
        "guidance": "none",
        "tracks": ["a.ogg", "b.ogg", "c.ogg"],
    }
    assert (rec["music_mode"], rec["guidance"], rec["tracks"]) == (
        "music",
        "clinician",
        ["a.ogg", "b.ogg"],
    )
    [choice] = rec["choices"]
    assert choice["by"] == "dr-lee" and choice["playlist_duration_s"] == 1500.0
    assert choice["warnings"] and choice["at"].endswith("Z")


def test_session_json_holds_notes_dose_side_effects_and_adverse_events(
    record: dict[str, Any],
) -> None:
    rec = record["rec"]
    texts = {n["kind"]: n["text"] for n in rec["notes"]}
    assert texts == {"intentions": NOTE, "observation": "once", "debrief": "resolved"}
    assert all(n["by"] == "dr-lee" and n["at"].endswith("Z") for n in rec["notes"])
    [dose] = rec["doses"]
    assert (dose["weight_kg"], dose["total_mg"], dose["by"]) == (80.0, 50.0, "dr-lee")
    assert len(dose["warnings"]) == 1  # 50 mg is not 80 kg × 0.5 mg/kg
    [effects] = rec["side_effects"]
    assert effects["items"] == ["nausea", "dizziness"] and effects["note_id"]
    [adverse] = rec["adverse_events"]
    assert (adverse["kind"], adverse["severity"], adverse["action"]) == (
        "vomiting",
        "mild",
        "bowl given",
    )
    items = [c["item"] for c in rec["confirmations"]]
    assert "mindfulness_done" in items and "iv_line" in items
    # The text is in the record, never in the events beside it.
    assert "Ana" not in record["events"] and "resolved" not in record["events"]


def test_session_json_says_how_the_session_ended(record: dict[str, Any]) -> None:
    rec = record["rec"]
    assert rec["discharged"] is False
    assert rec["ended_from_phase"] == "debrief"
    assert [a["code"] for a in rec["open_alarms"]] == ["spo2_critical"]
    assert rec["limits_in_force"]["alarms"]["spo2_low"]["source"] == "config"


def test_the_report_shows_local_times_and_every_documented_item(record: dict[str, Any]) -> None:
    html, rec = record["html"], record["rec"]
    assert "America/Montreal, UTC−05:00" in html
    started_local = local_clock("America/Montreal")(rec["started_at"])
    assert started_local.startswith("09:") and started_local in html
    assert "14:00:00" not in html  # no UTC time where people read
    assert "Wants to reconnect with her sister &lt;Ana&gt; &amp; to sleep" in html
    for text in ("bowl given", "dizziness", "mindfulness_done", "clinician", "resolved"):
        assert text in html, text
    assert "without discharge" in html and "Alarms unacknowledged at the end" in html
    assert "<h2>Alarm limits in force</h2>" in html and "spo2_critical 88" in html
    assert "drug infusion" in html and "<h2>Drug infusion</h2>" in html
    assert "hand-entered" in html and "<h2>Hand-entered SpO2 and heart rate</h2>" in html


def test_zone_labels_follow_daylight_saving() -> None:
    summer = parse_utc("2026-07-01T12:00:00Z")
    assert zone_label("America/Montreal", summer) == "America/Montreal, UTC−04:00"
    assert zone_label("UTC", summer) == "UTC, UTC+00:00"
    assert local_clock("America/Montreal")("2026-07-01T12:00:00.000Z") == "08:00:00"
    assert local_clock("UTC")(None) == "–"
