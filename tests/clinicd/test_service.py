"""The archive process's MQTT side against a real broker, in-process: a room played by a
plain paho client that publishes v2 events the real room cannot make yet and answers the
``events`` and ``notes`` verbs on the MQTT 5 response topic."""

from __future__ import annotations

import json
import re
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from controller.models import Event
from mqtt_bridge.clinicd.config import parse_config
from mqtt_bridge.clinicd.service import ArchiveTopics, ClinicArchive
from mqtt_bridge.clinicd.store import Store
from tests.clinicd.support import ArchiveClient, ArchiveProcess, session_events
from tests.support.broker import Broker
from tests.support.daemon import wait_until
from tests.support.probe import Probe

NOTE = {"note_id": "n1", "kind": "debrief", "by": "dr-a", "ts": "2026-01-05T10:00:00.000Z",
        "text": "the second track carried her"}  # fmt: skip


class FakeRoom:
    """A room's journal behind a paho client: publishes events, answers events and notes."""

    def __init__(self, port: int, room_id: str, journal: list[Event], *, notes: bool) -> None:
        self.root = f"clinic/rooms/{room_id}"
        self.journal = journal
        self.notes = notes
        self.asked: list[tuple[str, dict[str, Any], str | None]] = []
        self._subscribed = threading.Event()
        c = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"fake-{uuid.uuid4().hex[:6]}",
            protocol=mqtt.MQTTv5,
        )  # fmt: skip
        c.on_connect = lambda cl, *a: cl.subscribe(f"{self.root}/cmd/+", qos=1)
        c.on_subscribe = lambda *a: self._subscribed.set()
        c.on_message = self._on_message
        c.connect("127.0.0.1", port)
        c.loop_start()
        assert self._subscribed.wait(10)
        self.client = c

    def publish(self, *seqs: int) -> None:
        """Publish these events live (the others stay in the journal only)."""
        for e in self.journal:
            if e.seq in seqs:
                self.client.publish(f"{self.root}/events", e.to_json(), 1).wait_for_publish(5)

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        verb = msg.topic.rsplit("/", 1)[1]
        cmd = json.loads(msg.payload)
        response = getattr(msg.properties, "ResponseTopic", None)
        self.asked.append((verb, cmd, response))
        reply: dict[str, Any] = {"request_id": cmd["request_id"], "verb": verb}
        if verb == "events":
            page = [e for e in self.journal if e.seq >= cmd["since_seq"]][: cmd["limit"]]
            events = [e.model_dump(mode="json") for e in page]
            reply |= {"ok": True, "result": {"events": events, "last_seq": self.journal[-1].seq}}
        elif verb == "notes" and self.notes:
            reply |= {"ok": True, "result": {"notes": [NOTE]}}
        else:
            reply |= {"ok": False, "error": {"code": "unknown_verb", "message": verb}}
        props = Properties(PacketTypes.PUBLISH)
        props.CorrelationData = msg.properties.CorrelationData
        # The reply goes to the requester's response topic only (as `notes` must).
        client.publish(response, json.dumps(reply).encode(), 1, properties=props)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


V2 = [
    ("plan_amended", {"changes": {"playlist": "Gentle"}, "by": "dr-a"}),
    (
        "dose_recorded",
        {"weight_kg": 80, "dose_mg_per_kg": 0.5, "total_mg": 40, "by": "dr-a", "warnings": []},
    ),
    ("note_recorded", {"note_id": "n1", "kind": "debrief", "by": "dr-a", "chars": 28}),
    ("side_effects_recorded", {"items": ["dizziness"], "by": "dr-a"}),
]


@pytest.fixture
def running(tmp_path: Path, broker: Broker) -> Iterator[tuple[ClinicArchive, ArchiveClient]]:
    config = parse_config(
        {
            "mqtt": {"port": broker.port, "keepalive_s": 5},
            "archive": {"request_timeout_s": 2, "resync_s": 3, "page_limit": 3},
        }
    )
    archive = ClinicArchive(config, tmp_path / "archive.sqlite")
    archive.start()
    client = ArchiveClient(broker.port)
    client.wait_for(client.online, 15, "archive online")
    yield archive, client
    client.close()
    archive.stop()


def test_a_new_room_is_listed_and_its_gaps_and_notes_fetched(
    running: tuple[ClinicArchive, ArchiveClient], broker: Broker
) -> None:
    archive, client = running
    journal = session_events("v2-s1", 3, extra=V2)
    room = FakeRoom(broker.port, "room-9", journal, notes=True)
    everything = Probe(broker.port, "clinic")
    try:
        assert client.ok("rooms") == {"rooms": []}
        room.publish(journal[-1].seq)  # the first event the archive ever sees is the last
        wait_until(lambda: client.ok("rooms")["rooms"], 10, "room-9 listed")
        store = Store(archive.db_path)
        wait_until(lambda: len(store.events_of("room-9")) == len(journal), 15, "the gap fetched")
        assert store.events_of("room-9") == journal
        # The ended session's summary is kept by the idle worker, before anyone asks.
        wait_until(lambda: store.kept_summary("v2-s1") is not None, 10, "summary kept")
        session = client.ok("session", session_id="v2-s1")
        wait_until(lambda: store.notes_state("v2-s1") == "fetched", 15, "notes fetched")
        session = client.ok("session", session_id="v2-s1")
        assert session["notes"] == [{k: NOTE[k] for k in ("kind", "by", "ts", "text")}]
        assert session["playlist"] == "Gentle" and session["dose"]["total_mg"] == 40
        assert session["side_effects"][0]["items"] == ["dizziness"]
        asked = [(v, c.get("since_seq"), r) for v, c, r in room.asked]
        topic = "clinic/rooms/room-9/replies/clinicd"
        assert ("events", 1, topic) in asked and ("notes", None, topic) in asked
        assert all(c["by"] == "clinicd" for _, c, _ in room.asked)
        # The note's text went only to the archive's response topic and the archive's replies
        # (observers may read neither), never retained.
        with everything.lock:
            seen = [(t, r) for t, p, r, _ in everything.messages if b"carried her" in p]
        assert {t for t, _ in seen} == {topic, "clinic/archive/replies"}
        assert not [t for t, retained in seen if retained]
    finally:
        everything.close()
        room.close()


def test_a_room_without_notes_and_events_missed_while_away(
    tmp_path: Path, running: tuple[ClinicArchive, ArchiveClient], broker: Broker
) -> None:
    archive, client = running
    journal = session_events("s1", 1)
    room = FakeRoom(broker.port, "room-4", journal, notes=False)
    try:
        room.publish(1, 2)
        store = Store(archive.db_path)
        wait_until(lambda: len(store.events_of("room-4")) == 2, 10, "two live events")
        archive.stop()
        client.wait_for(lambda: not client.online(), 10, "archive offline")
        room.publish(*range(3, len(journal) + 1))  # while the archive is away
        # A new process on the same file, with a session the broker no longer has.
        config = archive.config.model_copy(update={"mqtt": archive.config.mqtt.model_copy(
            update={"session_expiry_s": 0, "client_id": "clinicd-2"})})  # fmt: skip
        again = ClinicArchive(config, archive.db_path)
        again.start()
        try:
            wait_until(
                lambda: len(store.events_of("room-4")) == len(journal), 15, "caught up by fetch"
            )
            wait_until(lambda: store.notes_state("s1") == "unsupported", 15, "no notes verb")
            client.wait_for(client.online, 10, "online again")
            assert client.ok("course", patient_ref="P-1")["sessions"][0]["notes_status"] == (
                "unsupported"
            )
        finally:
            again.stop()
    finally:
        room.close()


def test_topics() -> None:
    t = ArchiveTopics("mtl/clinic", "clinicd")
    assert t.status == "mtl/clinic/archive/status" and t.replies == "mtl/clinic/archive/replies"
    assert t.classify("mtl/clinic/archive/cmd/course") == ("command", "course")
    assert t.classify("mtl/clinic/rooms/room-3/events") == ("event", "room-3")
    assert t.classify("mtl/clinic/rooms/room-3/replies/clinicd") == ("reply", "room-3")
    # the general replies too: across a site bridge no response topic survives
    assert t.classify("mtl/clinic/rooms/room-3/replies") == ("reply", "room-3")
    assert t.classify("mtl/clinic/rooms/room-3/replies/tablet-7") is None
    assert "mtl/clinic/rooms/+/replies" in t.subscriptions
    assert t.classify("mtl/clinic/rooms/room-3/status") == ("status", "room-3")
    assert t.classify("mtl/clinic/rooms/Room 3/events") is None
    assert t.classify("mtl/clinic/rooms/room-3/state") is None
    assert t.room_cmd("room-3", "events") == "mtl/clinic/rooms/room-3/cmd/events"


def test_an_event_is_acknowledged_only_once_committed(
    archive: Callable[..., ArchiveProcess], clinician: ArchiveClient, broker: Broker
) -> None:
    """Killed with -9 between receiving events and committing them, the archive gets them
    again from its persistent session: they were not acknowledged. No room answers the
    ``events`` verb here, so the broker's redelivery is the only way back."""
    arch = archive()
    clinician.wait_for(clinician.online, 20, "archive online")
    # A command answered: the worker has handled what came before it (its connection).
    assert clinician.ok("rooms") == {"rooms": []}
    journal = session_events("s1", 1)
    # The archive's writer waits behind this lock: what it takes in cannot be committed.
    lock = sqlite3.connect(arch.db, isolation_level=None)
    lock.execute("BEGIN IMMEDIATE")
    room = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    room.connect("127.0.0.1", broker.port)
    room.loop_start()
    try:
        for e in journal:
            room.publish("clinic/rooms/room-7/events", e.to_json(), 1).wait_for_publish(5)
        taken = re.compile(r"[1-9][0-9]* event\(s\), in one transaction")
        wait_until(lambda: taken.search(arch.logtext()), 15, "events taken in")
        arch.kill9()
        lock.execute("ROLLBACK")
        arch.start()
        clinician.wait_for(clinician.online, 20, "archive back online")
        store = Store(arch.db)
        wait_until(lambda: len(store.events_of("room-7")) == len(journal), 15, "redelivered")
        assert store.events_of("room-7") == journal
    finally:
        room.disconnect()
        room.loop_stop()
        lock.close()
