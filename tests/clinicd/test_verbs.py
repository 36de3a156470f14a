"""The archive's verbs and their envelope: answers, and clear errors for bad requests."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from mqtt_bridge.clinicd.config import CourseSection
from mqtt_bridge.clinicd.store import Store
from mqtt_bridge.clinicd.verbs import Archive
from tests.clinicd.support import T0, session_events


@pytest.fixture
def archive(tmp_path: Path) -> Archive:
    store = Store(tmp_path / "a.sqlite")
    store.add_events("room-5", session_events("s2", 2, days=3.5))
    store.add_events("room-3", session_events("s1", 1))
    return Archive(store, CourseSection())


def ask(archive: Archive, verb: str, **args: object) -> dict:
    body = json.dumps({"request_id": "r1", "by": "dr-a", **args}).encode()
    return json.loads(archive.handle(verb, body).to_json())


def test_course_lists_the_sessions_in_time_order_across_rooms(archive: Archive) -> None:
    reply = ask(archive, "course", patient_ref="P-1")
    assert reply["ok"] and reply["request_id"] == "r1" and reply["verb"] == "course"
    course = reply["result"]
    assert [(s["session_id"], s["room_id"]) for s in course["sessions"]] == [
        ("s1", "room-3"),
        ("s2", "room-5"),
    ]
    assert course["flags"] == []
    assert ask(archive, "session", session_id="s2")["result"] == course["sessions"][1]


def test_rooms(archive: Archive) -> None:
    rooms = ask(archive, "rooms")["result"]["rooms"]
    assert [(r["room_id"], r["last_seq"]) for r in rooms] == [("room-3", 14), ("room-5", 14)]
    assert rooms[0]["last_event_at"] == "2026-01-05T10:05:00.000Z"


def test_a_refused_hl7_message_is_flagged(archive: Archive) -> None:
    archive.store.enqueue_message("s1", "room-3", "MSH|", T0)
    archive.store.message_result(
        "s1", state="refused", ack_code="AR", error="unknown facility",
        next_try_at=T0 + timedelta(minutes=1), now=T0,
    )  # fmt: skip
    flags = ask(archive, "course", patient_ref="P-1")["result"]["flags"]
    assert flags == [
        {
            "session_id": "s1",
            "code": "hl7_refused",
            "message": "the EHR answered AR: unknown facility",
        }
    ]


@pytest.mark.parametrize(
    ("verb", "body", "code", "words"),
    [
        ("course", {"patient_ref": "P-NOBODY"}, "invalid_payload", "patient_ref 'P-NOBODY'"),
        ("session", {"session_id": "nope"}, "invalid_payload", "session_id 'nope'"),
        ("course", {}, "invalid_payload", "field 'patient_ref'"),
        ("course", {"patient_ref": 7}, "invalid_payload", "field 'patient_ref'"),
        ("course", {"patient_ref": "P-1", "extra": 1}, "invalid_payload", "field 'extra'"),
        ("launch", {}, "unknown_verb", "course, session, rooms"),
    ],
)
def test_bad_requests_get_clear_errors(
    archive: Archive, verb: str, body: dict, code: str, words: str
) -> None:
    reply = ask(archive, verb, **body)
    assert reply["ok"] is False and reply["error"]["code"] == code
    assert words in reply["error"]["message"]
    assert reply["request_id"] == "r1"


@pytest.mark.parametrize("payload", [b"not json", b"[1]", b"\xff", b"{" + b" " * 70000 + b"}"])
def test_malformed_payloads(archive: Archive, payload: bytes) -> None:
    reply = json.loads(archive.handle("course", payload).to_json())
    assert reply["ok"] is False and reply["error"]["code"] == "invalid_payload"
    assert reply["request_id"] == ""


def test_missing_request_id_is_named(archive: Archive) -> None:
    reply = json.loads(archive.handle("rooms", b'{"by": "dr-a"}').to_json())
    assert reply["error"]["message"].startswith("field 'request_id'")
