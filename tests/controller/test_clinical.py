"""Notes, the dose, side effects, adverse events and the debrief's timer."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from controller.models import PrivateReply, Reply
from tests.controller.harness import Harness, make_config

TOPIC = "rooms/room-1/replies/tab7"


def notes(h: Harness, **args: Any) -> Reply:
    """``notes`` from an MQTT 5 client with its own response topic."""
    body = {"request_id": f"notes-{len(h.link.replies)}", "by": "dr-lee", **args}
    return h.send("notes", json.dumps(body).encode(), response_topic=TOPIC)


def published(h: Harness) -> str:
    """Everything the room put on events (and state) so far, as one text."""
    texts = [e.model_dump_json() for e in h.link.events]
    return "\n".join(texts + [s.model_dump_json() for s in h.link.states])


# === notes ===================================================================================


def test_a_note_is_kept_and_returned_but_never_published(room: Harness) -> None:
    secret = "Patient wishes to forgive her brother Marc"
    room.plan()
    room.ok("start_session")
    result = room.ok("note", kind="intentions", text=secret)
    assert result == {"note_id": result["note_id"], "chars": len(secret)}
    assert room.events("note_recorded") == [
        {"note_id": result["note_id"], "kind": "intentions", "by": "dr-lee", "chars": len(secret)}
    ]
    assert secret not in published(room)
    assert "Marc" not in json.dumps([e.data for e in room.journal.events_since(1, 10**6)])
    reply = notes(room)
    assert reply.ok and isinstance(reply, PrivateReply)
    assert reply.result is not None and reply.result["session_id"] == "s-001"
    [note] = reply.result["notes"]
    assert note["text"] == secret and note["kind"] == "intentions" and note["by"] == "dr-lee"
    assert note["note_id"] == result["note_id"] and note["ts"].endswith("Z")
    assert room.link.replies[-1][1] == TOPIC


def test_a_note_over_4000_characters_is_refused_not_cut(room: Harness) -> None:
    room.plan()
    room.ok("start_session")
    reply = room.cmd("note", kind="debrief", text="x" * 4001)
    assert reply.error is not None and reply.error.code == "invalid_payload"
    assert "field 'text'" in reply.error.message and "4000" in reply.error.message
    assert room.ok("note", kind="debrief", text="y" * 4000)["chars"] == 4000
    assert [len(n["text"]) for n in room.journal.notes("s-001")] == [4000]


def test_blank_notes_and_unknown_kinds_name_the_field(room: Harness) -> None:
    room.plan()
    room.ok("start_session")
    blank = room.cmd("note", kind="debrief", text=" \u200b ")
    assert blank.error is not None and "field 'text'" in blank.error.message
    kind = room.cmd("note", kind="gossip", text="hello")
    assert kind.error is not None and "field 'kind'" in kind.error.message
    assert room.journal.notes("s-001") == []


def test_notes_need_a_session_and_an_own_response_topic(room: Harness) -> None:
    refused = room.cmd("note", kind="debrief", text="before any session")
    assert refused.error is not None and refused.error.code == "invalid_state"
    room.plan()
    room.ok("start_session")
    room.ok("note", kind="checkin", text="arrived with her partner")
    shared = room.cmd("notes")  # no response topic: the text would have nowhere private to go
    assert shared.error is not None and shared.error.code == "invalid_payload"
    assert "response topic" in shared.error.message
    assert isinstance(shared, PrivateReply)


def test_notes_default_to_the_last_session_and_take_a_session_id(room: Harness) -> None:
    room.plan()
    room.ok("start_session")
    room.ok("note", kind="integration", text="first session")
    room.ok("end_session", reason="test: next session")
    room.plan(session_id="s-002")
    room.ok("start_session")
    room.ok("note", kind="integration", text="second session")
    room.ok("end_session", reason="test: done")
    last = notes(room).result or {}
    assert last["session_id"] == "s-002"
    assert [n["text"] for n in last["notes"]] == ["second session"]
    first = notes(room, session_id="s-001").result or {}
    assert [n["text"] for n in first["notes"]] == ["first session"]


def test_notes_in_an_empty_room(room: Harness) -> None:
    assert (notes(room).result or {}) == {"session_id": None, "notes": []}


# === the dose ================================================================================


def test_a_dose_that_adds_up_has_no_warning(room: Harness) -> None:
    room.to_pre_infusion()
    result = room.ok("record_dose", weight_kg=72, dose_mg_per_kg=0.5, total_mg=36)
    assert result == {"expected_total_mg": 36.0, "warnings": []}
    [dose] = room.events("dose_recorded")
    assert dose == {
        "weight_kg": 72.0,
        "dose_mg_per_kg": 0.5,
        "total_mg": 36.0,
        "by": "dr-lee",
        "warnings": [],
    }


def test_wrong_arithmetic_and_another_dose_are_warnings(room: Harness) -> None:
    room.to_pre_infusion()
    warnings = room.ok("record_dose", weight_kg=80, dose_mg_per_kg=0.75, total_mg=80)["warnings"]
    assert len(warnings) == 2
    assert "80 kg × 0.75 mg/kg = 60.0 mg" in warnings[0]
    assert "protocol's 0.5 mg/kg" in warnings[1]
    # within 5 %: no arithmetic warning
    assert room.ok("record_dose", weight_kg=70, dose_mg_per_kg=0.5, total_mg=36.5)["warnings"] == []


def test_the_protocols_dose_comes_from_the_config(tmp_path: Path) -> None:
    h = Harness(tmp_path, make_config(protocol={"dose_mg_per_kg": 0.75}))
    h.to_pre_infusion()
    assert h.ok("record_dose", weight_kg=80, dose_mg_per_kg=0.75, total_mg=60)["warnings"] == []
    h.close()


def test_a_bad_dose_names_the_field_and_records_nothing(room: Harness) -> None:
    room.to_pre_infusion()
    for args, field in [
        ({"weight_kg": 0, "dose_mg_per_kg": 0.5, "total_mg": 1}, "weight_kg"),
        ({"weight_kg": 70, "dose_mg_per_kg": "half", "total_mg": 35}, "dose_mg_per_kg"),
        ({"weight_kg": 70, "dose_mg_per_kg": 0.5}, "total_mg"),
    ]:
        reply = room.cmd("record_dose", **args)
        assert reply.error is not None and f"field '{field}'" in reply.error.message
    assert room.events("dose_recorded") == []


def test_the_dose_is_recorded_only_around_the_infusion(room: Harness) -> None:
    room.plan()
    room.ok("start_session")
    reply = room.cmd("record_dose", weight_kg=70, dose_mg_per_kg=0.5, total_mg=35)
    assert reply.error is not None and reply.error.code == "invalid_state"


# === side effects, adverse events ============================================================


def to_debrief(h: Harness) -> None:
    h.to_infusion_running()
    for _ in range(4):
        h.run(10 * 60)
        if h.nibp.measuring:
            h.nibp.finish(128, 82, 78)
            h.drain()
    h.audio.finish()
    h.drain()
    h.ok("advance")
    assert h.room.phase == "debrief"


def test_side_effects_from_the_clinics_list_with_a_private_note(room: Harness) -> None:
    to_debrief(room)
    result = room.ok("side_effects", items=["Nausea", "blurred vision"], note="eased by 15 min")
    assert result["items"] == ["nausea", "blurred vision"]
    [event] = room.events("side_effects_recorded")
    assert event == {
        "items": ["nausea", "blurred vision"],
        "by": "dr-lee",
        "note_id": result["note_id"],
    }
    assert "eased" not in published(room)
    kept = (notes(room).result or {})["notes"]
    assert [(n["kind"], n["text"]) for n in kept] == [("debrief", "eased by 15 min")]
    assert room.ok("side_effects", items=[]) == {"items": [], "note_id": None}


def test_an_unknown_or_repeated_side_effect_is_refused_by_position(room: Harness) -> None:
    to_debrief(room)
    unknown = room.cmd("side_effects", items=["nausea", "levitation"])
    assert unknown.error is not None and "field 'items.1'" in unknown.error.message
    assert "levitation" in unknown.error.message and "dizziness" in unknown.error.message
    twice = room.cmd("side_effects", items=["nausea", "NAUSEA"])
    assert twice.error is not None and "field 'items.1'" in twice.error.message
    assert room.events("side_effects_recorded") == []


def test_the_clinics_own_side_effect_list(tmp_path: Path) -> None:
    h = Harness(tmp_path, make_config(protocol={"side_effects": ["tingling"]}))
    to_debrief(h)
    assert h.ok("side_effects", items=["tingling"])["items"] == ["tingling"]
    assert not h.cmd("side_effects", items=["nausea"]).ok
    h.close()


def test_an_adverse_event_keeps_its_text_off_the_events(room: Harness) -> None:
    room.to_infusion_running()
    result = room.ok(
        "adverse_event", kind="vomiting", severity="moderate", action="ondansetron 4 mg IV",
        text="vomited twice, no aspiration",
    )  # fmt: skip
    [event] = room.events("adverse_event_recorded")
    assert event["severity"] == "moderate" and event["note_id"] == result["note_id"]
    assert "aspiration" not in published(room)
    bad = room.cmd("adverse_event", kind="fall", severity="awful", action="none")
    assert bad.error is not None and "field 'severity'" in bad.error.message
    blank = room.cmd("adverse_event", kind="fall", severity="mild", action="  ")
    assert blank.error is not None and "field 'action'" in blank.error.message


# === the debrief's timer =====================================================================


def test_the_debrief_is_timed_against_its_least_and_most_minutes(room: Harness) -> None:
    to_debrief(room)
    room.run(19 * 60 + 55)
    assert room.events("debrief_due") == []
    room.run(10)
    assert room.events("debrief_due") == [{"bound": "least", "minutes": 20.0}]
    room.run(10 * 60)
    assert room.events("debrief_due")[-1] == {"bound": "most", "minutes": 30.0}
    room.run(30 * 60)
    assert len(room.events("debrief_due")) == 2


def test_leaving_the_debrief_early_cancels_its_timer(room: Harness) -> None:
    to_debrief(room)
    room.run(5 * 60)
    room.ok("advance")
    room.run(40 * 60)
    assert room.events("debrief_due") == []


def test_a_repeated_notes_request_is_answered_privately_too(room: Harness) -> None:
    room.plan()
    room.ok("start_session")
    room.ok("note", kind="checkin", text="calm on arrival")
    body = json.dumps({"request_id": "notes-x", "by": "dr-lee"}).encode()
    first = room.send("notes", body, response_topic=TOPIC)
    again = room.send("notes", body, response_topic=TOPIC)
    assert first.ok and isinstance(first, PrivateReply)
    assert again.error is not None and again.error.code == "duplicate"
    assert isinstance(again, PrivateReply), "the first reply, with its text, rides in details"
