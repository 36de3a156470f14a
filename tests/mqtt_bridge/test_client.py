"""The roomctl MQTT client against a real broker: sessions, request/reply, log-in."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
from argparse import Namespace
from pathlib import Path
from typing import Any

import pytest

from mqtt_bridge.client import COMMAND_EXPIRY_S, Client
from tests.support.broker import Broker, free_port
from tests.support.probe import Probe

ROOT = "clinic/rooms/room-c"


def options(port: int, **overrides: Any) -> Namespace:
    """The broker options of roomctl's command line, as parse_args gives them."""
    base = {
        "host": "127.0.0.1",
        "port": port,
        "user": "",
        "password_file": "",
        "tls_ca": "",
        "prefix": "clinic",
        "room": "room-c",
        "declared": False,
    }
    return Namespace(**{**base, **overrides})


def test_session_connects_subscribes_and_stops_its_thread(broker: Broker) -> None:
    probe = Probe(broker.port, ROOT, subscribe="state")
    try:
        probe.publish("state", b'{"phase": "idle"}', retain=True)  # there before we subscribe
        before = threading.active_count()
        client = Client(options(broker.port))
        with client.session([f"{ROOT}/state"], timeout=10) as ok:
            assert ok
            msg = client.messages.get(timeout=10)
            assert (msg.topic, bytes(msg.payload)) == (f"{ROOT}/state", b'{"phase": "idle"}')
        assert threading.active_count() <= before  # the paho loop thread is gone
    finally:
        probe.close()


def test_session_without_broker_yields_false_within_the_timeout() -> None:
    client = Client(options(free_port()))
    started = time.monotonic()
    with client.session(["anything"], timeout=1) as ok:
        assert ok is False
    assert time.monotonic() - started < 5


def test_request_returns_the_reply_with_its_request_id(broker: Broker) -> None:
    probe = Probe(broker.port, ROOT, subscribe="cmd/#")
    client = Client(options(broker.port))

    def answer() -> None:
        probe.wait_for(lambda: probe.payloads("cmd/status"), 10, "the command")
        for body in (b"not json", b"[1]", b'{"request_id": "other", "ok": true}'):
            probe.publish("replies", body)
        probe.publish("replies", b'{"request_id": "r-1", "ok": true, "result": {"x": 1}}')

    responder = threading.Thread(target=answer)
    try:
        with client.session([client.topics.replies], timeout=10) as ok:
            assert ok
            responder.start()
            reply = client.request("status", {"request_id": "r-1", "by": "dr"}, timeout=10)
        assert reply == {"request_id": "r-1", "ok": True, "result": {"x": 1}}
        topic, payload, retained, props = probe.messages[0]
        assert topic == f"{ROOT}/cmd/status" and not retained
        assert json.loads(payload) == {"request_id": "r-1", "by": "dr"}
        # never run late: the broker drops the command after COMMAND_EXPIRY_S
        assert 0 < props.MessageExpiryInterval <= COMMAND_EXPIRY_S
    finally:
        responder.join(timeout=15)
        probe.close()


def test_request_without_a_reply_gives_none_after_the_timeout(broker: Broker) -> None:
    client = Client(options(broker.port))
    with client.session([client.topics.replies], timeout=10) as ok:
        assert ok
        started = time.monotonic()
        assert client.request("status", {"request_id": "r-2", "by": "dr"}, timeout=1) is None
        assert 0.9 <= time.monotonic() - started < 5


@pytest.mark.skipif(shutil.which("mosquitto_passwd") is None, reason="mosquitto_passwd absent")
@pytest.mark.parametrize(("password", "connects"), [("s3cret", True), ("wrong", False)])
def test_user_and_password_file(tmp_path: Path, password: str, connects: bool) -> None:
    users = tmp_path / "passwords"
    subprocess.run(
        ["mosquitto_passwd", "-b", "-c", str(users), "dr-c", "s3cret"],
        check=True,
        capture_output=True,
        timeout=10,
    )
    secret = tmp_path / "secret"
    secret.write_text(password + "\n")  # the trailing newline of `echo` is not part of it
    broker = Broker(tmp_path, extra_conf=f"password_file {users}\n")
    conf = broker.conf.read_text().replace("allow_anonymous true", "allow_anonymous false")
    broker.conf.write_text(conf)
    broker.start()
    try:
        client = Client(options(broker.port, user="dr-c", password_file=str(secret)))
        with client.session([], timeout=5) as ok:
            assert ok is connects
        anonymous = Client(options(broker.port))
        with anonymous.session([], timeout=5) as ok:
            assert ok is False
    finally:
        broker.stop()


@pytest.mark.parametrize(
    ("user", "declared", "topic"),
    [
        ("dr-kim", False, "cmd/status/by/dr-kim"),
        ("dr-kim", True, "cmd/status"),
        ("", False, "cmd/status"),
    ],
)
def test_a_logged_in_client_sends_on_its_attributed_path(
    broker: Broker, user: str, declared: bool, topic: str
) -> None:
    probe = Probe(broker.port, ROOT, subscribe="cmd/#")
    client = Client(options(broker.port, user=user, declared=declared))
    try:
        with client.session([client.topics.replies], timeout=10) as ok:
            assert ok
            client.request("status", {"request_id": "r-3", "by": "dr"}, timeout=0.2)
        probe.wait_for(lambda: probe.messages, 10, "the command")
        assert probe.messages[0][0] == f"{ROOT}/{topic}"
    finally:
        probe.close()
