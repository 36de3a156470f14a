"""The broker lets the right people in and no one else: the SHIPPED mosquitto.conf and ACL,
users made by the shipped provisioning tool, a real Mosquitto 2.0 and a real ``roomd``.

What Mosquitto 2.0.11 actually answers (asserted below):
- a refused login (anonymous, wrong password, unknown or revoked user): CONNACK 0x87
  "Not authorized" (not 0x86), then the connection is closed;
- a publish the ACL does not allow: MQTT 5 PUBACK 0x87 "Not authorized"; the message is
  dropped and the publisher stays connected;
- a subscription the ACL does not allow: SUBACK *grants* it (0x01) and the broker then never
  delivers a message the subscriber may not read. So "cannot read" is proven by a message that
  is not delivered, with a canary the subscriber may read published after it (Mosquitto
  delivers to one connection in the order it processed the messages).
"""

from __future__ import annotations

import json
import queue
import socket
import ssl
import time
import urllib.request
import uuid
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from mqtt_bridge.broker import provision
from mqtt_bridge.link import room_client_id
from tests.faults.conftest import (
    CLINICIAN,
    OBSERVER,
    ROOM_A,
    ROOM_B,
    Peer,
    Pki,
    SecureBroker,
    log_matches,
)
from tests.support.daemon import RoomProcess

NOT_AUTHORIZED = 0x87
SUCCESS = 0x00
NO_MATCHING_SUBSCRIBERS = 0x10
ROOT_A = f"clinic/rooms/{ROOM_A}"
ROOT_B = f"clinic/rooms/{ROOM_B}"

Peers = Callable[..., Peer]


def by_me(root: str, verb: str, user: str = CLINICIAN) -> str:
    """The attributed command topic: the only one the shipped ACL lets a clinician write."""
    return f"{root}/cmd/{verb}/by/{user}"


def command(verb: str, by: str = CLINICIAN, **args: Any) -> tuple[str, bytes]:
    """A command payload and its request id."""
    rid = uuid.uuid4().hex[:12]
    return rid, json.dumps({"request_id": rid, "by": by, **args}).encode()


def reply_to(peer: Peer, rid: str, timeout: float = 15.0) -> dict[str, Any]:
    """The reply with request id ``rid`` that ``peer`` received."""

    def match(m: mqtt.MQTTMessage) -> bool:
        try:
            return bool(json.loads(m.payload).get("request_id") == rid)
        except (ValueError, AttributeError):
            return False

    msg = peer.wait_message(match, timeout, f"reply {rid}")
    reply: dict[str, Any] = json.loads(msg.payload)
    return reply


@pytest.fixture(scope="module")
def room_b(
    secure_broker: SecureBroker, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RoomProcess]:
    """The real ``roomd --simulate`` for room-b, logged in as room-b over verified TLS."""
    room = RoomProcess(
        tmp_path_factory.mktemp("room-b"),
        secure_broker.tls_port,
        room_id=ROOM_B,
        extra_toml=(
            f'username = "{ROOM_B}"\n'
            f'password_file = "{secure_broker.password_file(ROOM_B)}"\n'
            f'tls_ca = "{secure_broker.pki.ca}"\n'
        ),
    )
    room.start()
    watcher = Peer(
        secure_broker.tls_port, OBSERVER, secure_broker.password(OBSERVER), ca=secure_broker.pki.ca
    )
    try:
        assert watcher.connect() == SUCCESS
        watcher.subscribe(f"{ROOT_B}/status")
        watcher.wait_message(
            lambda m: m.payload == b"online", 30, f"room-b online; roomd log:\n{room.logtext()}"
        )
    except BaseException:
        room.stop()
        raise
    finally:
        watcher.close()
    yield room
    room.stop()


@pytest.fixture
def clinician(peers: Peers, room_b: RoomProcess) -> Peer:
    """A clinician reading room-b's replies and events."""
    c = peers(CLINICIAN)
    assert c.connect() == SUCCESS
    c.subscribe(f"{ROOT_B}/replies")
    c.subscribe(f"{ROOT_B}/events")
    return c


def room_b_events(clinician: Peer) -> list[dict[str, Any]]:
    """room-b's whole journal, fetched with the ``events`` command."""
    rid, payload = command("events", since_seq=1, limit=1000)
    assert clinician.publish(by_me(ROOT_B, "events"), payload) == SUCCESS
    reply = reply_to(clinician, rid)
    assert reply["ok"], reply
    events: list[dict[str, Any]] = reply["result"]["events"]
    return events


# --- who gets in --------------------------------------------------------------------------


def test_anonymous_is_refused_on_both_listeners(secure_broker: SecureBroker, peers: Peers) -> None:
    """allow_anonymous false: no username → CONNACK 0x87, on the MQTT and websockets ports."""
    assert peers(None).connect() == NOT_AUTHORIZED
    ws = peers(None, port=secure_broker.ws_port, transport="websockets")
    assert ws.connect() == NOT_AUTHORIZED
    assert log_matches(secure_broker, r"disconnected, not authorised")


def test_wrong_password_and_unknown_user_are_refused(
    secure_broker: SecureBroker, peers: Peers
) -> None:
    """The password file decides: a wrong password or an unknown user gets 0x87 too."""
    assert peers(CLINICIAN, password="not-the-password").connect() == NOT_AUTHORIZED
    assert peers("dr-nobody", password="whatever").connect() == NOT_AUTHORIZED
    # a room's password does not open another room's account
    assert peers(ROOM_A, password=secure_broker.password(ROOM_B)).connect() == NOT_AUTHORIZED


def test_revoked_user_is_disconnected_on_reload_and_refused(
    secure_broker: SecureBroker, peers: Peers
) -> None:
    """provision + reload admits a new user; revoke + reload (SIGHUP) drops its open connection
    and refuses the next login."""
    secure_broker.add("clinician", "dr-leaving")
    secure_broker.reload()
    password = secure_broker.password("dr-leaving")
    for _ in range(50):  # the reload is asynchronous: poll (bounded) until it took effect
        peer = peers("dr-leaving", password=password)
        if peer.connect() == SUCCESS:
            break
        time.sleep(0.1)
    else:
        raise AssertionError("a newly provisioned user was not admitted after reload")
    assert provision.revoke(secure_broker.broker_dir, "dr-leaving")
    secure_broker.reload()
    reason = peer.disconnected.get(timeout=10)
    assert reason.is_failure, reason
    assert peers("dr-leaving", password=password).connect() == NOT_AUTHORIZED


# --- TLS ----------------------------------------------------------------------------------


def _handshake(port: int, ctx: ssl.SSLContext) -> str:
    """TLS handshake with 127.0.0.1:port; the negotiated protocol version."""
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        return str(tls.version())


@pytest.mark.parametrize("listener", ["tls_port", "ws_port"])
def test_tls_server_verified_only_with_the_clinic_ca(
    secure_broker: SecureBroker, listener: str
) -> None:
    """With the clinic CA the broker's certificate and host name verify; with another CA
    the handshake fails, so a client never talks to a broker it cannot authenticate."""
    port = getattr(secure_broker, listener)
    good = ssl.create_default_context(cafile=str(secure_broker.pki.ca))
    assert _handshake(port, good) in {"TLSv1.2", "TLSv1.3"}
    wrong = ssl.create_default_context(cafile=str(secure_broker.pki.wrong_ca))
    with pytest.raises(ssl.SSLCertVerificationError):
        _handshake(port, wrong)
    # the right CA but a name the certificate does not carry
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        pytest.raises(ssl.SSLCertVerificationError),
    ):
        good.wrap_socket(raw, server_hostname="broker.elsewhere.example")


def test_paho_client_with_the_wrong_ca_cannot_connect(
    secure_broker: SecureBroker, peers: Peers
) -> None:
    """The same through paho, as roomd and roomctl connect: the connect itself fails."""
    peer = peers(CLINICIAN, ca=secure_broker.pki.wrong_ca)
    with pytest.raises(ssl.SSLCertVerificationError):
        peer.connect()


def _tls11_client(ca: Path) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(ca))
    # OpenSSL 3 only offers TLS 1.1 at security level 0: lower it, or this client would
    # refuse by itself and the test would prove nothing about the broker
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    with warnings.catch_warnings():  # deprecated in Python: exactly why it must be refused
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_1
        ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    return ctx


@pytest.mark.parametrize("listener", ["tls_port", "ws_port"])
def test_tls_below_1_2_is_refused(secure_broker: SecureBroker, listener: str) -> None:
    """A client that offers at most TLS 1.1 is refused by both listeners; TLS 1.2 works."""
    port = getattr(secure_broker, listener)
    with pytest.raises(ssl.SSLError):
        _handshake(port, _tls11_client(secure_broker.pki.ca))
    tls12 = ssl.create_default_context(cafile=str(secure_broker.pki.ca))
    tls12.maximum_version = ssl.TLSVersion.TLSv1_2
    assert _handshake(port, tls12) == "TLSv1.2"


def test_tls_version_line_is_what_refuses_tls_1_1(tmp_path: Path, pki: Pki) -> None:
    """OpenSSL 3's default security level alone refuses TLS 1.1, so to show the shipped
    ``tls_version tlsv1.2`` does its job, both brokers here allow TLS 1.1 ciphers
    (@SECLEVEL=0); only the one whose tls_version line says tlsv1.1 accepts the client."""
    results = {}
    for version in ("tlsv1.2", "tlsv1.1"):
        workdir = tmp_path / version
        workdir.mkdir()
        b = SecureBroker(
            workdir,
            pki,
            line_edits={
                "tls_version tlsv1.2": f"tls_version {version}\nciphers DEFAULT:@SECLEVEL=0"
            },
        )
        b.add("observer", OBSERVER)  # Mosquitto does not start without its password file
        b.start()
        try:
            try:
                results[version] = _handshake(b.tls_port, _tls11_client(pki.ca))
            except ssl.SSLError as exc:
                results[version] = f"refused: {exc.reason}"
        finally:
            b.stop()
    assert results["tlsv1.2"].startswith("refused"), results
    assert results["tlsv1.1"] == "TLSv1.1", results


def test_plain_mqtt_on_the_tls_port_gets_nothing(secure_broker: SecureBroker) -> None:
    """There is no clear-text listener: plain MQTT to the TLS port never gets a CONNACK."""
    c = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5, reconnect_on_failure=False
    )
    results: list[Any] = []
    c.on_connect = lambda cl, ud, fl, rc, pr: results.append(rc)
    c.username_pw_set(CLINICIAN, secure_broker.password(CLINICIAN))
    c.connect("127.0.0.1", secure_broker.tls_port, keepalive=5)
    for _ in range(20):  # bounded: the broker closes the socket on the garbage handshake
        if c.loop(timeout=0.1) != mqtt.MQTT_ERR_SUCCESS:
            break
    c.disconnect()
    assert results == []


# --- the real room ------------------------------------------------------------------------


def test_roomd_connects_with_user_password_file_and_verified_tls(
    room_b: RoomProcess, peers: Peers
) -> None:
    """roomd with `username`, a 0600 `password_file` from provision and `tls_ca` (certificate
    and host name verified) logs in, and its retained `status` is `online`."""
    obs = peers(OBSERVER)
    assert obs.connect() == SUCCESS
    obs.subscribe(f"{ROOT_B}/status")
    status = obs.wait_message(lambda m: m.topic == f"{ROOT_B}/status", 10)
    assert status.payload == b"online" and status.retain
    assert room_b.alive()


def test_clinician_can_command_and_read(clinician: Peer) -> None:
    """A clinician's command reaches the room (PUBACK 0x00, a subscriber exists) and the
    reply, the events and the retained state come back to it."""
    rid, payload = command("status")
    assert clinician.publish(by_me(ROOT_B, "status"), payload) == SUCCESS
    reply = reply_to(clinician, rid)
    assert reply["ok"] and reply["result"]["room_id"] == ROOM_B
    clinician.subscribe("clinic/rooms/+/state")
    state = clinician.wait_message(lambda m: m.topic == f"{ROOT_B}/state", 10)
    assert json.loads(state.payload)["room_id"] == ROOM_B
    # a bad command is an event every reader sees (here: nothing to check in while idle)
    rid, payload = command("checkin")
    clinician.publish(by_me(ROOT_B, "checkin"), payload)
    assert not reply_to(clinician, rid)["ok"]
    clinician.wait_message(
        lambda m: (
            m.topic == f"{ROOT_B}/events" and json.loads(m.payload)["type"] == "command_rejected"
        ),
        10,
    )
    # plans too (to a room nobody runs here, so room-b stays as it is); then cleared
    plan = "clinic/rooms/room-z/plan"
    assert clinician.publish(plan, b'{"session_id": "s"}', retain=True) == NO_MATCHING_SUBSCRIBERS
    assert clinician.publish(plan, b"", retain=True) == NO_MATCHING_SUBSCRIBERS


def test_room_cannot_command_another_room(
    secure_broker: SecureBroker, clinician: Peer, peers: Peers
) -> None:
    """room-a's credentials publishing to room-b's cmd/ and plan: PUBACK 0x87, nothing reaches
    room-b (a second room-b login subscribed to its own cmd/# sees only the canary), and the
    real room's journal has no trace of it."""
    victim = peers(ROOM_B)
    assert victim.connect() == SUCCESS
    victim.subscribe(f"{ROOT_B}/cmd/#")
    victim.subscribe(f"{ROOT_B}/plan")
    attacker = peers(ROOM_A)
    assert attacker.connect() == SUCCESS
    _, bad = command("emergency", by=ROOM_A, reason="forged by room-a")
    assert attacker.publish(f"{ROOT_B}/cmd/emergency", bad) == NOT_AUTHORIZED
    assert attacker.publish(f"{ROOT_B}/plan", b'{"session_id": "x"}', retain=True) == NOT_AUTHORIZED
    canary_rid, canary = command("status")
    assert clinician.publish(by_me(ROOT_B, "status"), canary) == SUCCESS
    victim.wait_message(lambda m: canary_rid.encode() in m.payload, 10, "the canary")
    assert [m.topic for m in victim.messages] == [by_me(ROOT_B, "status")]
    events = room_b_events(clinician)
    assert not [e for e in events if e["type"] == "emergency" or "room-a" in json.dumps(e)]
    assert reply_to(clinician, canary_rid)["result"]["phase"] == "idle"
    assert attacker.client.is_connected()  # a denied publish is answered, not punished


def test_observer_can_read_but_not_command(
    secure_broker: SecureBroker, clinician: Peer, peers: Peers
) -> None:
    """An observer gets the retained state and the events; its commands and plans get
    PUBACK 0x87 and never reach the room."""
    obs = peers(OBSERVER)
    assert obs.connect() == SUCCESS
    obs.subscribe("clinic/rooms/+/state")
    obs.subscribe("clinic/rooms/+/events")
    obs.subscribe("clinic/rooms/+/replies")
    state = obs.wait_message(lambda m: m.topic == f"{ROOT_B}/state", 10)
    assert json.loads(state.payload)["room_id"] == ROOM_B
    rid, bad = command("emergency", by=OBSERVER, reason="forged by an observer")
    assert obs.publish(f"{ROOT_B}/cmd/emergency", bad) == NOT_AUTHORIZED
    assert obs.publish(f"{ROOT_B}/plan", b"{}", retain=True) == NOT_AUTHORIZED
    canary_rid, canary = command("status")
    clinician.publish(by_me(ROOT_B, "status"), canary)
    obs.wait_message(lambda m: canary_rid.encode() in m.payload, 10, "the canary's reply")
    assert not [m for m in obs.messages if rid.encode() in m.payload]
    assert not [e for e in room_b_events(clinician) if e["type"] == "emergency"]


def test_room_cannot_read_another_room(
    secure_broker: SecureBroker, clinician: Peer, peers: Peers
) -> None:
    """room-a subscribed to room-b's outputs (granted by SUBACK) receives none of them;
    a plan for room-a published afterwards (the canary) does arrive."""
    spy = peers(ROOM_A)
    assert spy.connect() == SUCCESS
    for topic in (f"{ROOT_B}/events", f"{ROOT_B}/state", f"{ROOT_B}/replies", "clinic/#", "#"):
        assert spy.subscribe(topic) == [1]  # Mosquitto 2.0 grants; delivery is what is checked
    spy.subscribe(f"{ROOT_A}/plan")
    seen = len(clinician.on(f"{ROOT_B}/events"))
    rid, bad = command("checkin")  # rejected while idle: room-b publishes a reply and an event
    clinician.publish(by_me(ROOT_B, "checkin"), bad)
    reply_to(clinician, rid)
    clinician._wait(
        lambda: len(clinician.on(f"{ROOT_B}/events")) > seen or None, 10, "room-b's event"
    )
    assert clinician.publish(f"{ROOT_A}/plan", b'{"canary": true}') == SUCCESS
    spy.wait_message(lambda m: m.topic == f"{ROOT_A}/plan", 10, "the canary plan")
    assert {m.topic for m in spy.messages} == {f"{ROOT_A}/plan"}


def test_room_writes_only_its_outputs(secure_broker: SecureBroker, peers: Peers) -> None:
    """A room may publish its outputs, not its own cmd/ or plan, nor sim/ (simulation topics
    are dead on the production broker: nobody may write them)."""
    room = peers(ROOM_A)
    assert room.connect() == SUCCESS
    for leaf in ("status", "state", "events", "vitals", "vitals/nibp", "alarms", "replies"):
        assert room.publish(f"{ROOT_A}/{leaf}", b"{}") in (SUCCESS, NO_MATCHING_SUBSCRIBERS)
    room.publish(f"{ROOT_A}/status", b"", retain=True)  # clear the retained test values
    for leaf in ("cmd/advance", "plan", "sim/press_call", "elsewhere"):
        assert room.publish(f"{ROOT_A}/{leaf}", b"{}") == NOT_AUTHORIZED, leaf
    doc = peers(CLINICIAN)
    assert doc.connect() == SUCCESS
    assert doc.publish(f"{ROOT_A}/sim/press_call", b"{}") == NOT_AUTHORIZED
    assert doc.publish(f"{ROOT_A}/status", b"offline") == NOT_AUTHORIZED  # no forged status


def test_response_topic_cannot_turn_a_room_against_another(clinician: Peer, peers: Peers) -> None:
    """A command whose MQTT 5 response topic is another room's cmd/ would make room-b
    publish there: the broker refuses room-b that write, room-a never sees it. A response
    topic under room-b's own replies/ works, with the correlation data."""
    victim = peers(ROOM_A)
    assert victim.connect() == SUCCESS
    victim.subscribe(f"{ROOT_A}/cmd/#")
    mine = f"{ROOT_B}/replies/{CLINICIAN}"
    clinician.subscribe(mine)
    for target, corr in ((f"{ROOT_A}/cmd/emergency", b"evil"), (mine, b"fine")):
        props = Properties(PacketTypes.PUBLISH)
        props.ResponseTopic = target
        props.CorrelationData = corr
        rid, payload = command("status")
        clinician.publish(by_me(ROOT_B, "status"), payload, props=props)
        reply_to(clinician, rid)
    answer = clinician.wait_message(lambda m: m.topic == mine, 10, "the reply on replies/…")
    assert getattr(answer.properties, "CorrelationData", None) == b"fine"
    canary_rid, canary = command("status")
    clinician.publish(by_me(ROOT_A, "status"), canary)
    victim.wait_message(lambda m: canary_rid.encode() in m.payload, 10, "the canary")
    assert [m.topic for m in victim.messages] == [by_me(ROOT_A, "status")]


def test_the_notes_reply_reaches_the_clinician_and_no_observer(
    clinician: Peer, peers: Peers
) -> None:
    """`notes` answers only on the requester's response topic under replies/ (the tablet's
    `<root>/replies/tab-…`): the shipped ACL delivers it to the clinician, and not to an
    observer subscribed to every replies/… and to `#`; the shared `replies` still reaches
    the observer (the canary)."""
    obs = peers(OBSERVER)
    assert obs.connect() == SUCCESS
    for topic in (f"{ROOT_B}/replies/#", "clinic/rooms/+/replies/#", "#"):
        obs.subscribe(topic)
    rid, payload = command("notes")
    mine = f"{ROOT_B}/replies/tab-{rid}"
    assert clinician.subscribe(mine) == [1]
    props = Properties(PacketTypes.PUBLISH)
    props.ResponseTopic = mine
    props.CorrelationData = rid.encode()
    clinician.publish(by_me(ROOT_B, "notes"), payload, props=props)
    answer = clinician.wait_message(lambda m: m.topic == mine, 10, "the notes on replies/…")
    assert json.loads(answer.payload)["ok"] and json.loads(answer.payload)["request_id"] == rid
    assert getattr(answer.properties, "CorrelationData", None) == rid.encode()
    canary_rid, canary = command("status")
    clinician.publish(by_me(ROOT_B, "status"), canary)
    obs.wait_message(lambda m: canary_rid.encode() in m.payload, 10, "the canary's reply")
    assert not [m.topic for m in obs.messages if rid.encode() in m.payload]


def test_payload_over_64_kib_is_not_relayed(secure_broker: SecureBroker, peers: Peers) -> None:
    """message_size_limit enforces the contract's 64 KiB at the broker: a 60 KB plan reaches
    the room, a 70 KB one is dropped and the publisher's connection closed (Mosquitto 2.0.11
    logs "Dropped too large PUBLISH" at debug level only)."""
    room = peers(ROOM_A)
    assert room.connect() == SUCCESS
    room.subscribe(f"{ROOT_A}/plan")
    doc = peers(CLINICIAN)
    assert doc.connect() == SUCCESS
    doc.client.publish(f"{ROOT_A}/plan", b"x" * 70_000, qos=1)
    doc.disconnected.get(timeout=10)
    ok = peers(CLINICIAN)
    assert ok.connect() == SUCCESS
    assert ok.publish(f"{ROOT_A}/plan", b"y" * 60_000) == SUCCESS
    room.wait_message(lambda m: m.topic == f"{ROOT_A}/plan", 10)
    assert [len(m.payload) for m in room.messages] == [60_000]


# --- the tablets' listener ----------------------------------------------------------------


def test_websockets_listener_needs_login_and_serves_the_tablet_page(
    secure_broker: SecureBroker, peers: Peers, room_b: RoomProcess
) -> None:
    """wss:// with a clinician's login reads the rooms like the MQTT port; the same port
    serves the tablet page over verified HTTPS."""
    tablet = peers(CLINICIAN, port=secure_broker.ws_port, transport="websockets")
    assert tablet.connect() == SUCCESS
    tablet.subscribe(f"{ROOT_B}/status")
    assert tablet.wait_message(lambda m: m.topic == f"{ROOT_B}/status", 10).payload == b"online"
    ctx = ssl.create_default_context(cafile=str(secure_broker.pki.ca))
    url = f"https://127.0.0.1:{secure_broker.ws_port}/index.html"
    with urllib.request.urlopen(url, context=ctx, timeout=5) as page:
        assert b"roomd tablet" in page.read()


# --- persistence --------------------------------------------------------------------------


def test_room_session_and_queued_command_survive_a_broker_restart(tmp_path: Path, pki: Pki) -> None:
    """With the shipped persistence settings, a room's MQTT 5 session (subscription and a
    QoS 1 command queued while it was offline) is still there after the broker restarts."""
    b = SecureBroker(tmp_path, pki)
    b.add("room", ROOM_A)
    b.add("clinician", CLINICIAN)
    b.start()
    made: list[Peer] = []

    def peer(user: str, **kw: Any) -> Peer:
        made.append(Peer(b.tls_port, user, b.password(user), ca=pki.ca, **kw))
        return made[-1]

    try:
        durable = {"client_id": "roomd-room-a", "clean_start": False, "session_expiry_s": 300}
        room = peer(ROOM_A, **durable)
        assert room.connect() == SUCCESS
        room.subscribe(f"{ROOT_A}/cmd/#")
        room.close()
        doc = peer(CLINICIAN)
        assert doc.connect() == SUCCESS
        rid, payload = command("status")
        assert doc.publish(by_me(ROOT_A, "status"), payload) == SUCCESS  # queued for the room
        doc.close()
        b.stop()  # SIGTERM: Mosquitto writes its persistence file
        b.start()
        again = peer(ROOM_A, **durable)
        assert again.connect() == SUCCESS
        got = again.wait_message(lambda m: m.topic == by_me(ROOT_A, "status"), 10)
        assert json.loads(got.payload)["request_id"] == rid
    finally:
        for p in made:
            p.close()
        b.stop()


# --- what Mosquitto's password/ACL files cannot express -----------------------------------


def test_another_user_cannot_take_over_a_rooms_client_id(peers: Peers) -> None:
    """An observer guessing room-a's client id does not disconnect room-a.

    Mosquitto's files cannot tie a client id to a user, so roomd's id carries a secret
    suffix kept in its journal (``room_client_id``); the guessable ``roomd-<room>`` is
    just another client.
    """
    room = peers(ROOM_A, client_id=room_client_id(ROOM_A, "5e1f0c2a9b7d"))
    assert room.connect() == SUCCESS
    intruder = peers(OBSERVER, client_id=f"roomd-{ROOM_A}")
    assert intruder.connect() == SUCCESS
    with pytest.raises(queue.Empty):  # room-a stayed connected for a second
        room.disconnected.get(timeout=1.0)
