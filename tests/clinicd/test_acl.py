"""The shipped roles on a real broker with password file and ACL: the archive reads the
rooms and fetches from them; clinicians use the archive; observers see neither its replies
nor a room's response topics; the archive cannot command a room."""

from __future__ import annotations

import json
import queue
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from mqtt_bridge.broker import provision
from mqtt_bridge.clinicd.config import parse_config
from mqtt_bridge.clinicd.service import ClinicArchive
from mqtt_bridge.clinicd.store import Store
from tests.support.broker import Broker
from tests.support.daemon import RoomProcess, wait_until

NOT_AUTHORIZED = 0x87
"""PUBACK reason codes below 0x80 are successes (0x10: accepted, nobody subscribed)."""


class User:
    """A paho client logged in as a provisioned user; records what it receives."""

    def __init__(self, port: int, broker_dir: Path, name: str) -> None:
        self.messages: list[tuple[str, bytes]] = []
        self.acks: queue.Queue[int] = queue.Queue()
        c = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"{name}-{uuid.uuid4().hex[:6]}",
            protocol=mqtt.MQTTv5,
        )
        password = (broker_dir / "credentials" / f"{name}.pass").read_text().strip()
        c.username_pw_set(name, password)
        c.on_message = lambda cl, u, m: self.messages.append((m.topic, bytes(m.payload)))
        c.on_publish = lambda cl, u, mid, rc, p: self.acks.put(rc.value)
        c.connect("127.0.0.1", port)
        c.loop_start()
        self.client = c

    def subscribe(self, *topics: str) -> None:
        for t in topics:
            self.client.subscribe(t, qos=1)

    def publish(self, topic: str, payload: dict[str, Any]) -> int:
        """Publish QoS 1; the PUBACK's reason code."""
        self.client.publish(topic, json.dumps(payload).encode(), 1)
        return self.acks.get(timeout=10)

    def seen(self, topic_part: str) -> list[tuple[str, bytes]]:
        return [(t, p) for t, p in list(self.messages) if topic_part in t]


@pytest.fixture
def secured(tmp_path: Path, broker: Broker) -> Iterator[tuple[Broker, Path]]:
    """The test broker restarted with authentication and the generated ACL."""
    d = tmp_path / "broker"
    for role, name in (("room", "room-a"), ("archive", "clinicd"), ("clinician", "dr-a"),
                       ("observer", "board")):  # fmt: skip
        provision.provision(d, role, name)
    broker.stop()
    broker.conf.write_text(
        f"per_listener_settings false\nlistener {broker.port} 127.0.0.1\n"
        f"allow_anonymous false\npassword_file {d / 'passwd'}\nacl_file {d / 'roomd.acl'}\n"
        "persistence false\nlog_dest stderr\nlog_type error\nuser root\n"
    )
    broker.start()
    yield broker, d


def test_roles_around_the_archive(tmp_path: Path, secured: tuple[Broker, Path]) -> None:
    broker, d = secured
    room = RoomProcess(
        tmp_path,
        broker.port,
        room_id="room-a",
        time_scale=60,
        extra_toml=f'username = "room-a"\npassword_file = "{d / "credentials/room-a.pass"}"\n',
    )
    room.start()
    config = parse_config(
        {
            "mqtt": {
                "port": broker.port,
                "username": "clinicd",
                "password_file": str(d / "credentials/clinicd.pass"),
            },
            "archive": {"resync_s": 2, "request_timeout_s": 2},
        }
    )
    archive = ClinicArchive(config, tmp_path / "archive.sqlite")
    archive.start()
    doctor = User(broker.port, d, "dr-a")
    board = User(broker.port, d, "board")
    arch = User(broker.port, d, "clinicd")
    try:
        doctor.subscribe("clinic/archive/#", "clinic/rooms/+/events")
        board.subscribe("clinic/archive/#", "clinic/rooms/+/replies/#", "clinic/rooms/+/events")
        wait_until(lambda: doctor.seen("clinic/archive/status"), 20, "archive status")
        plan = {"session_id": "acl-1", "patient_ref": "P-ACL", "session_number": 1,
                "music_mode": "no_music"}  # fmt: skip
        assert doctor.publish("clinic/rooms/room-a/plan", plan) < NOT_AUTHORIZED
        wait_until(lambda: doctor.seen("/events"), 20, "the room's first event")
        assert board.seen("/events")  # observers read the rooms' events

        def rooms() -> list[Any]:
            rid = uuid.uuid4().hex[:8]
            doctor.publish("clinic/archive/cmd/rooms", {"request_id": rid, "by": "dr-a"})
            wait_until(lambda: rid.encode() in b"".join(p for _, p in doctor.messages), 10, rid)
            reply = next(json.loads(p) for _, p in doctor.messages if rid.encode() in p)
            return reply["result"]["rooms"]  # type: ignore[no-any-return]

        wait_until(lambda: [r["room_id"] for r in rooms()] == ["room-a"], 20, "room-a listed")
        # The archive asked the room for its journal (events verb, reply on replies/clinicd).
        store = Store(tmp_path / "archive.sqlite")
        wait_until(
            lambda: (r := store.room("room-a")) is not None and r.complete_through == r.last_seq,
            20,
            "the journal fetched",
        )
        assert store.events_of("room-a")[0].seq == 1
        # An observer saw the archive's status, but not its replies nor the response topic.
        assert board.seen("clinic/archive/status")
        assert not board.seen("clinic/archive/replies")
        assert not board.seen("/replies/")
        assert board.publish("clinic/archive/cmd/rooms", {"request_id": "o1", "by": "b"}) == (
            NOT_AUTHORIZED
        )
        # The archive's account sends only events and notes to a room.
        ask = {"request_id": "a1", "by": "clinicd"}
        assert arch.publish("clinic/rooms/room-a/cmd/advance", ask) == NOT_AUTHORIZED
        assert arch.publish("clinic/rooms/room-a/plan", plan) == NOT_AUTHORIZED
        assert (
            arch.publish("clinic/rooms/room-a/cmd/events", ask | {"since_seq": 1}) < NOT_AUTHORIZED
        )
        assert arch.publish("clinic/rooms/room-a/events", {"seq": 1}) == NOT_AUTHORIZED
    finally:
        for user in (doctor, board, arch):
            user.client.disconnect()
            user.client.loop_stop()
        archive.stop()
        room.stop()
