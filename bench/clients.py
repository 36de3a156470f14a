"""The bench's MQTT side: paho clients that timestamp arrivals, matchers, session driving.

Nothing here imports the tests: the bench must run from a checkout with only the runtime
dependencies (plus Mosquitto) installed.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from bench.infra import BenchError, Matcher, Room


class Watch:
    """One expected message: set by the client's network thread when ``match`` says so."""

    def __init__(self, match: Matcher) -> None:
        self.match = match
        self.done = threading.Event()
        self.t = 0.0
        self.value: Any = None

    def wait(self, timeout: float, what: str = "a message") -> tuple[float, Any]:
        """(arrival perf_counter time, the matcher's value); BenchError after ``timeout``."""
        if not self.done.wait(timeout):
            raise BenchError(f"timed out after {timeout} s waiting for {what}")
        return self.t, self.value


class Client:
    """A bare paho-mqtt 2.x client (MQTT 5) that stamps each message on arrival.

    ``expect(match)`` registers a Watch before the publish that should cause it, so the
    arrival time is taken on the network thread the moment the message is read.
    """

    def __init__(
        self,
        port: int,
        name: str,
        subscribe: Iterable[str] = (),
        *,
        qos: int = 1,
        on_message: Callable[[float, float, str, bytes], None] | None = None,
    ) -> None:
        self._lock = threading.Lock()
        self._watches: list[Watch] = []
        self._hook = on_message
        self._topics = list(subscribe)
        self._subscribed = threading.Event()
        c = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"bench-{name}-{uuid.uuid4().hex[:6]}",
            protocol=mqtt.MQTTv5,
        )
        c.on_connect = self._on_connect
        c.on_subscribe = lambda *a: self._subscribed.set()
        c.on_message = self._on_message
        c.max_queued_messages_set(0)
        self.client = c
        c.connect("127.0.0.1", port, keepalive=30)
        c.loop_start()
        if self._topics:
            if not self._subscribed.wait(10):
                raise BenchError(f"{name} could not subscribe")
        else:
            deadline = time.monotonic() + 10
            while not c.is_connected():
                if time.monotonic() > deadline:
                    raise BenchError(f"{name} could not connect")
                time.sleep(0.005)

    def _on_connect(self, client: mqtt.Client, ud: Any, flags: Any, rc: Any, props: Any) -> None:
        if self._topics:
            client.subscribe([(t, self._qos_for(t)) for t in self._topics])

    @staticmethod
    def _qos_for(topic: str) -> int:
        return 0 if topic.endswith("/vitals") else 1

    def _on_message(self, client: mqtt.Client, ud: Any, msg: mqtt.MQTTMessage) -> None:
        t = time.perf_counter()
        wall = time.time()
        payload = bytes(msg.payload)
        topic = msg.topic
        with self._lock:
            for w in list(self._watches):
                try:
                    value = w.match(topic, payload)
                except (ValueError, KeyError, TypeError):
                    value = None
                if value:
                    w.t, w.value = t, value
                    self._watches.remove(w)
                    w.done.set()
        if self._hook is not None:
            self._hook(t, wall, topic, payload)

    def expect(self, match: Matcher) -> Watch:
        """Start watching for a message (register *before* causing it)."""
        w = Watch(match)
        with self._lock:
            self._watches.append(w)
        return w

    def forget(self, watch: Watch) -> None:
        """Stop watching (after a timeout)."""
        with self._lock, contextlib.suppress(ValueError):
            self._watches.remove(watch)

    def publish(self, topic: str, payload: bytes, qos: int = 1) -> None:
        """Publish without waiting for the broker's ack (the caller times the effect)."""
        info = self.client.publish(topic, payload, qos=qos)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            raise BenchError(f"publish to {topic} failed: {mqtt.error_string(info.rc)}")

    def close(self) -> None:
        """Disconnect and stop the network thread."""
        with contextlib.suppress(Exception):
            self.client.disconnect()
        self.client.loop_stop()


def event_match(
    root: str, type_: str, pred: Callable[[dict[str, Any]], bool] | None = None
) -> Matcher:
    """A matcher for the room's event of ``type_`` (and ``pred``); its value is the event."""
    topic = f"{root}/events"

    def match(t: str, payload: bytes) -> Any:
        if t != topic:
            return None
        e = json.loads(payload)
        if e.get("type") == type_ and (pred is None or pred(e)):
            return e
        return None

    return match


def reply_match(root: str, request_id: str) -> Matcher:
    """A matcher for the reply to ``request_id``."""
    topic = f"{root}/replies"
    needle = request_id.encode()

    def match(t: str, payload: bytes) -> Any:
        if t != topic or needle not in payload:
            return None
        r = json.loads(payload)
        return r if r.get("request_id") == request_id else None

    return match


def new_request_id() -> str:
    """A request id never used before."""
    return f"bench-{uuid.uuid4().hex[:16]}"


def command(
    client: Client, root: str, verb: str, timeout: float = 15.0, **args: Any
) -> dict[str, Any]:
    """Send a command and wait for its reply (the client must subscribe to ``root/replies``)."""
    rid = new_request_id()
    watch = client.expect(reply_match(root, rid))
    client.publish(
        f"{root}/cmd/{verb}", json.dumps({"request_id": rid, "by": "bench", **args}).encode()
    )
    try:
        _, reply = watch.wait(timeout, f"the reply to {verb}")
    finally:
        client.forget(watch)
    return dict(reply)


def ok(client: Client, root: str, verb: str, **args: Any) -> dict[str, Any]:
    """A command that must succeed; its result."""
    reply = command(client, root, verb, **args)
    if not reply.get("ok"):
        raise BenchError(f"{verb} failed: {reply.get('error')}")
    return reply.get("result") or {}


def expect_online(client: Client, room: Room) -> Watch:
    """Watch for the room's ``online`` (register before starting it: it may come at once)."""
    topic = f"{room.root}/status"
    return client.expect(lambda t, p: t == topic and p == b"online")


def wait_online(
    client: Client, room: Room, timeout: float = 60.0, watch: Watch | None = None
) -> None:
    """Wait until the room says ``online`` (the client subscribes to ``root/status``)."""
    if watch is None:
        watch = expect_online(client, room)
    deadline = time.monotonic() + timeout
    while not watch.done.wait(0.2):
        if not room.alive():
            raise BenchError(f"{room.room_id} exited: {room.tail()}")
        if time.monotonic() > deadline:
            client.forget(watch)
            raise BenchError(f"{room.room_id} not online within {timeout} s: {room.tail()}")


def plan(session_id: str) -> dict[str, Any]:
    """A music-mode session plan (the stand-in player accepts any track)."""
    return {
        "session_id": session_id,
        "patient_ref": "P-BENCH",
        "session_number": 1,
        "music_mode": "music",
        "playlist": ["infusion/01-arrival.ogg", "infusion/02-drift.ogg"],
    }


def start_session(client: Client, root: str, session_id: str, timeout: float = 20.0) -> None:
    """Start a session (phase check_in: alarms count from here); on a loaded machine a room
    just online may not have its simulated oximeter's first sample yet: asked again until
    ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        reply = command(client, root, "start_session", plan=plan(session_id))
        if reply.get("ok"):
            return
        error = reply.get("error") or {}
        if "no oximeter" not in str(error.get("message")) or time.monotonic() > deadline:
            raise BenchError(f"start_session failed: {error}")
        time.sleep(0.2)


def into_infusion(client: Client, root: str, session_id: str) -> None:
    """Start a session and run the infusion (the gates passed by a recorded override)."""
    start_session(client, root, session_id)
    for _ in range(3):
        ok(client, root, "advance")
    ok(client, root, "advance", override={"reason": "bench"})
    ok(client, root, "start_infusion", override={"reason": "bench"})


def fetch_journal(client: Client, root: str, since: int) -> tuple[list[dict[str, Any]], int]:
    """Every journal event with seq >= since, through the ``events`` command; and last_seq."""
    events: list[dict[str, Any]] = []
    last_seq = -1
    seq = since
    while True:
        result = ok(client, root, "events", since_seq=seq, limit=1000)
        batch = result["events"]
        last_seq = int(result["last_seq"])
        events.extend(batch)
        if not batch or batch[-1]["seq"] >= last_seq:
            return events, last_seq
        seq = batch[-1]["seq"] + 1


# --- the oximeter's serial line -----------------------------------------------------------
