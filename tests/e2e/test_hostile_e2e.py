"""Hostile input against a real ``roomd`` behind the SHIPPED broker config (TLS, ACL,
``message_size_limit 65536``), users made by the shipped provisioning tool (issue 15).

- every event and reply a hostile input provokes fits the broker: the room is never cut off;
- a flood of bad commands does not hold an emergency behind it;
- a retained command is not run, also on live delivery;
- ``by`` is the broker user of the attributed path, and nobody can write another's.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import paho.mqtt.client as mqtt
import pytest

from controller.commands import ANSWERED_REFUSALS
from tests.faults.conftest import (
    CLINICIAN,
    OBSERVER,
    ROOM_A,
    ROOM_B,
    Peer,
    SecureBroker,
    peers,
    pki,
    secure_broker,
)
from tests.support.daemon import RoomProcess

SUCCESS, NOT_AUTHORIZED = 0x00, 0x87
ROOT = f"clinic/rooms/{ROOM_A}"
FLOOD = 3000
EMERGENCY_BEHIND_FLOOD_S = 15.0
"""A bound that holds on a loaded test machine (the issue measured ~4 s before the fix on an
idle one, with one fsynced event per refusal); the < 2 s target is measured by
``python -m bench --only flood``, beside the same run's emergency alone."""

Peers = Callable[..., Peer]
FIXTURES = (pki, secure_broker, peers)
"""The shipped-broker fixtures of tests/faults, used here by name."""


def by_me(verb: str, user: str = CLINICIAN) -> str:
    """The attributed command topic of room-a."""
    return f"{ROOT}/cmd/{verb}/by/{user}"


def body(by: str = CLINICIAN, **args: Any) -> tuple[str, bytes]:
    """A command payload and its request id."""
    rid = uuid.uuid4().hex[:12]
    return rid, json.dumps({"request_id": rid, "by": by, **args}).encode()


def reply_to(peer: Peer, rid: str, timeout: float = 15.0) -> dict[str, Any]:
    """The reply with request id ``rid``."""

    def match(m: mqtt.MQTTMessage) -> bool:
        try:
            return m.topic == f"{ROOT}/replies" and json.loads(m.payload)["request_id"] == rid
        except (ValueError, KeyError, TypeError):
            return False

    reply: dict[str, Any] = json.loads(peer.wait_message(match, timeout, f"reply {rid}").payload)
    return reply


def is_event(m: mqtt.MQTTMessage, type_: str) -> bool:
    """Whether ``m`` is a room-a event of ``type_``."""
    return m.topic == f"{ROOT}/events" and json.loads(m.payload)["type"] == type_


def events_of(peer: Peer, type_: str) -> list[dict[str, Any]]:
    """The events of ``type_`` that ``peer`` received so far."""
    out = []
    for m in peer.on(f"{ROOT}/events"):
        event = json.loads(m.payload)
        if event["type"] == type_:
            out.append(event)
    return out


@pytest.fixture(scope="module")
def room(
    secure_broker: SecureBroker, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RoomProcess]:
    """A real ``roomd --simulate`` for room-a, logged in as room-a over verified TLS."""
    secure_broker.add("clinician", "dr-bob")
    secure_broker.reload()
    proc = RoomProcess(
        tmp_path_factory.mktemp("room-a"),
        secure_broker.tls_port,
        room_id=ROOM_A,
        time_scale=1.0,  # refusals coalesce per second of the room's clock: a real second
        extra_toml=(
            f'username = "{ROOM_A}"\n'
            f'password_file = "{secure_broker.password_file(ROOM_A)}"\n'
            f'tls_ca = "{secure_broker.pki.ca}"\n'
        ),
    )
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture
def doc(peers: Peers, room: RoomProcess) -> Peer:
    """A clinician reading room-a's replies, events and status; room-a is online."""
    c: Peer = peers(CLINICIAN)
    assert c.connect() == SUCCESS
    for leaf in ("replies", "events", "status"):
        c.subscribe(f"{ROOT}/{leaf}")
    c.wait_message(
        lambda m: m.topic == f"{ROOT}/status" and m.payload == b"online",
        30,
        f"room-a online; roomd log:\n{room.logtext()}",
    )
    return c


def assert_still_connected(doc: Peer, room: RoomProcess) -> None:
    """The room answers a status, never said offline, and never lost the broker."""
    rid, payload = body()
    assert doc.publish(by_me("status"), payload) == SUCCESS
    assert reply_to(doc, rid)["ok"]
    assert [m.payload for m in doc.on(f"{ROOT}/status")] == [b"online"]
    assert "disconnected from broker" not in room.logtext()


# --- item 9: `by` proven by the broker -----------------------------------------------------


def test_clinicians_write_commands_only_under_their_own_name(
    peers: Peers,
    doc: Peer,
) -> None:
    _, payload = body()
    assert doc.publish(f"{ROOT}/cmd/lights", payload) == NOT_AUTHORIZED, "the v1 path"
    assert doc.publish(by_me("lights", "dr-bob"), payload) == NOT_AUTHORIZED, "another's name"
    for user in (OBSERVER, ROOM_B):
        other = peers(user)
        assert other.connect() == SUCCESS
        for topic in (by_me("lights", user), by_me("lights")):
            assert other.publish(topic, payload) == NOT_AUTHORIZED, (user, topic)


def test_the_room_records_the_broker_user_as_by(doc: Peer, peers: Peers) -> None:
    rid, payload = body(by="dr-bob", level=0.42)  # a payload claiming to be someone else
    assert doc.publish(by_me("lights"), payload) == SUCCESS
    reply = reply_to(doc, rid)
    assert reply["ok"] and reply["by_verified"] is True and reply["by_declared"] == "dr-bob"
    doc.wait_message(
        lambda m: (
            m.topic == f"{ROOT}/events" and json.loads(m.payload)["type"] == "lighting_changed"
        ),
        10,
    )
    (changed,) = [e for e in events_of(doc, "lighting_changed") if e["data"]["level"] == 0.42]
    assert changed["data"]["by"] == CLINICIAN
    bob = peers("dr-bob")
    assert bob.connect() == SUCCESS
    bob.subscribe(f"{ROOT}/replies")
    rid, payload = body(by="dr-bob")
    assert bob.publish(by_me("status", "dr-bob"), payload) == SUCCESS
    assert reply_to(bob, rid)["by_verified"] is True
    assert "by_declared" not in reply_to(bob, rid)


# --- item 4: retained commands are never run ----------------------------------------------


def test_a_retained_command_is_not_run_on_live_delivery(doc: Peer, room: RoomProcess) -> None:
    rid, payload = body(level=0.77)
    assert doc.publish(by_me("lights"), payload, retain=True) == SUCCESS
    canary, canary_payload = body()
    assert doc.publish(by_me("status"), canary_payload) == SUCCESS
    reply_to(doc, canary)  # the room has handled what came before it
    assert doc.publish(by_me("lights"), b"", retain=True) == SUCCESS  # clear it
    assert not [m for m in doc.on(f"{ROOT}/replies") if rid.encode() in m.payload]
    assert not [e for e in events_of(doc, "lighting_changed") if e["data"]["level"] == 0.77]
    assert "ignored a retained command" in room.logtext()


# --- item 1: what hostile input provokes fits the broker ----------------------------------


def test_hostile_inputs_never_cut_the_room_off(doc: Peer, room: RoomProcess) -> None:
    bad_plan = {"session_id": "s-x", "patient_ref": "P-1", "session_number": 1}
    bad_plan["playlist"] = [""] * 1500
    assert doc.publish(f"{ROOT}/plan", json.dumps(bad_plan).encode()) == SUCCESS
    doc.wait_message(
        lambda m: is_event(m, "plan_rejected"),
        15,
        "plan_rejected for 1,500 bad entries",
    )
    big_plan = dict(
        bad_plan, playlist=[f"infusion/{i:04d}-" + "t" * 180 + ".ogg" for i in range(230)]
    )
    raw = json.dumps(big_plan).encode()
    assert 40_000 < len(raw) < 65_536
    assert doc.publish(f"{ROOT}/plan", raw) == SUCCESS
    doc.wait_message(
        lambda m: m.topic == f"{ROOT}/events" and b"shorten the playlist" in m.payload,
        15,
        "a large valid plan refused as too large to record",
    )
    assert doc.publish(f"{ROOT}/plan", b"", retain=True) in (SUCCESS, 0x10)
    rid, payload = body(**{f"x{i:04d}": 1 for i in range(2000)})
    assert doc.publish(by_me("status"), payload) == SUCCESS
    wide = reply_to(doc, rid)
    assert wide["error"]["code"] == "invalid_payload"
    rid, payload = body()
    assert doc.publish(by_me("v" * 65_400), payload) == SUCCESS
    long = reply_to(doc, rid)
    assert long["error"]["code"] == "unknown_verb" and len(long["verb"]) == 64
    for m in doc.messages:
        assert len(m.payload) <= 65_536, m.topic
    assert_still_connected(doc, room)


# --- item 2: a flood does not hold an emergency behind it ---------------------------------


def test_an_emergency_is_not_held_behind_a_flood(
    doc: Peer, peers: Peers, room: RoomProcess
) -> None:
    flooder = peers("dr-bob")
    assert flooder.connect() == SUCCESS
    kinds = [b"not json", b"[]", b'{"request_id": "f", "by": "x", "surprise": 1}']
    for i in range(FLOOD):
        verb = "fly" if i % 4 == 3 else "status"
        flooder.client.publish(by_me(verb, "dr-bob"), kinds[i % 3], qos=0)
    rid, payload = body(reason="patient unresponsive")
    sent = time.monotonic()
    assert doc.publish(by_me("emergency"), payload, timeout=30) == SUCCESS
    reply = reply_to(doc, rid, timeout=30)
    behind = time.monotonic() - sent
    assert "error" not in reply or reply["error"]["code"] != "internal", reply
    assert behind < EMERGENCY_BEHIND_FLOOD_S, f"the emergency was answered {behind:.2f} s late"
    # The room may still be rejecting the flood after answering the emergency (its lane goes
    # first); each interval's held refusals are journaled once it is over (the next command
    # or tick). Send a status every 1.2 s until the refusals stop, then read the count.

    def tally() -> tuple[int, list[dict[str, Any]]]:
        rid, payload = body()
        assert doc.publish(by_me("status"), payload) == SUCCESS
        reply_to(doc, rid, timeout=30)
        rejected = events_of(doc, "command_rejected")
        return sum(e["data"].get("count", 1) for e in rejected), rejected

    counted, rejected = tally()
    for _ in range(20):  # bounded: 24 s
        time.sleep(1.2)
        before, (counted, rejected) = counted, tally()
        if counted == before:
            break
    assert len(rejected) < 50, f"{len(rejected)} command_rejected events for a {FLOOD} flood"
    refusals = [
        m for m in doc.on(f"{ROOT}/replies") if json.loads(m.payload)["request_id"] in ("", "f")
    ]
    seconds = time.monotonic() - sent + 2
    assert len(refusals) <= ANSWERED_REFUSALS * seconds, "a flood is not answered in full"
    unanswered = sum(e["data"].get("unanswered", 0) for e in rejected)
    # (the module's room may also count a refusal of the test before in the same interval)
    assert counted >= FLOOD, (counted, unanswered, len(refusals))
    assert counted - unanswered >= len(refusals), "every refusal answered is counted so"
    assert unanswered >= counted - len(refusals) - 1, "every other refusal counted unanswered"
    assert_still_connected(doc, room)
