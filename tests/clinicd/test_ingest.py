"""Ingest without a broker: gaps found and fetched page by page, notes asked for, requests
that get no reply asked again. The rooms are played by the test through ``send``."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from controller.models import Event
from mqtt_bridge.clinicd.ingest import Ingest
from mqtt_bridge.clinicd.store import Store
from tests.clinicd.support import T0, event


class Rooms:
    """What the archive sent; the test answers it."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, dict[str, Any]]] = []

    def send(self, room_id: str, verb: str, payload: dict[str, Any]) -> None:
        self.sent.append((room_id, verb, payload))

    def last(self, verb: str) -> tuple[str, dict[str, Any]]:
        room, _, payload = [s for s in self.sent if s[1] == verb][-1]
        return room, payload


def wire(e: Event) -> dict[str, Any]:
    return e.model_dump(mode="json")


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Ingest, Store, Rooms]:
    store = Store(tmp_path / "a.sqlite")
    rooms = Rooms()
    return Ingest(store, rooms.send, page_limit=2, request_timeout_s=5, resync_s=60), store, rooms


def answer_events(ingest: Ingest, rooms: Rooms, journal: list[Event], now: Any = T0) -> None:
    """Answer the last events request the way a room does (since_seq, limit)."""
    room, payload = rooms.last("events")
    page = [e for e in journal if e.seq >= payload["since_seq"]][: payload["limit"]]
    result = {"events": [wire(e) for e in page], "last_seq": journal[-1].seq}
    ingest.on_reply(room, {"request_id": payload["request_id"], "ok": True, "result": result}, now)


def test_a_gap_is_fetched_page_by_page(setup: tuple[Ingest, Store, Rooms]) -> None:
    ingest, store, rooms = setup
    journal = [event(n, f"t{n}") for n in range(1, 8)]
    assert ingest.on_event("room-3", wire(journal[0]), T0)
    assert rooms.sent == []  # contiguous: nothing to ask
    assert not ingest.on_event("room-3", wire(journal[0]), T0)  # a duplicate
    ingest.on_event("room-3", wire(journal[5]), T0)  # seq 6: 2..5 are missing
    assert rooms.last("events") == ("room-3", rooms.sent[-1][2])
    assert rooms.sent[-1][2] | {"request_id": ""} == {
        "request_id": "",
        "by": "clinicd",
        "since_seq": 2,
        "limit": 2,
    }
    ingest.on_event("room-3", wire(journal[6]), T0)
    assert len(rooms.sent) == 1  # one request at a time per room
    for _ in range(2):
        answer_events(ingest, rooms, journal)
    assert [e.seq for e in store.events_of("room-3")] == list(range(1, 8))
    assert store.room("room-3").complete_through == 7  # type: ignore[union-attr]
    assert [p["since_seq"] for _, v, p in rooms.sent if v == "events"] == [2, 4]  # 6, 7 were here


def test_what_the_room_does_not_return_it_does_not_have(setup: tuple[Ingest, Store, Rooms]) -> None:
    ingest, store, rooms = setup
    journal = [event(1, "a"), event(2, "b"), event(50, "journal_recovered"), event(51, "c")]
    ingest.on_event("room-3", wire(journal[3]), T0)  # first seen at 51
    while (r := store.room("room-3")) is not None and r.complete_through < 51:
        answer_events(ingest, rooms, journal)
    assert [e.seq for e in store.events_of("room-3")] == [1, 2, 50, 51]


def test_connect_and_resync_ask_every_room_for_newer_events(
    setup: tuple[Ingest, Store, Rooms],
) -> None:
    ingest, store, rooms = setup
    store.add_events("room-3", [event(1, "a")])
    store.add_events("room-5", [event(1, "a"), event(2, "b")])
    ingest.on_connected(T0)
    assert sorted((r, p["since_seq"]) for r, _, p in rooms.sent) == [("room-3", 2), ("room-5", 3)]
    # Unanswered: after the timeout the requests are dropped and asked again at the resync.
    ingest.tick(T0 + timedelta(seconds=6))
    ingest.tick(T0 + timedelta(seconds=30))
    assert len(rooms.sent) == 2
    ingest.tick(T0 + timedelta(seconds=61))
    assert len(rooms.sent) == 4


def test_replies_of_others_and_malformed_events_are_ignored(
    setup: tuple[Ingest, Store, Rooms],
) -> None:
    ingest, store, rooms = setup
    assert not ingest.on_event("room-3", {"seq": "x", "type": 3}, T0)
    ingest.on_reply("room-3", {"request_id": "not-ours", "ok": True, "result": {}}, T0)
    ingest.on_event("room-3", wire(event(3, "c")), T0)
    room, payload = rooms.last("events")
    ingest.on_reply("room-5", {"request_id": payload["request_id"], "ok": True}, T0)  # wrong room
    ingest.on_reply(
        room, {"request_id": payload["request_id"], "ok": True, "result": {"events": 5}}, T0
    )
    assert [e.seq for e in store.events_of("room-3")] == [3]


def test_notes_are_fetched_and_a_room_without_the_verb_is_asked_again_when_back(
    setup: tuple[Ingest, Store, Rooms],
) -> None:
    ingest, store, rooms = setup
    for e in (event(1, "session_started", plan={"patient_ref": "P-1"}), event(2, "session_ended")):
        ingest.on_event("room-3", wire(e), T0)
    ingest.tick(T0)
    room, payload = rooms.last("notes")
    assert (room, payload["session_id"]) == ("room-3", "s1")
    error = {"code": "unknown_verb", "message": "unknown verb 'notes'"}
    ingest.on_reply(room, {"request_id": payload["request_id"], "ok": False, "error": error}, T0)
    assert store.notes_state("s1") == "unsupported"
    ingest.tick(T0 + timedelta(minutes=5))
    assert len([s for s in rooms.sent if s[1] == "notes"]) == 1
    ingest.on_room_online("room-3", T0 + timedelta(minutes=6))
    ingest.tick(T0 + timedelta(minutes=6))
    room, payload = rooms.last("notes")
    note = {"note_id": "n1", "kind": "debrief", "by": "dr-a", "ts": "2026-01-05T10:00:00.000Z"}
    result = {"notes": [note | {"text": "felt held by the music"}]}
    ingest.on_reply(room, {"request_id": payload["request_id"], "ok": True, "result": result}, T0)
    assert store.notes_state("s1") == "fetched"
    assert store.notes_of("s1")[0]["text"] == "felt held by the music"
