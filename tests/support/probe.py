"""A plain paho client for tests: the outside world's view of a room (not the project's link)."""

from __future__ import annotations

import json
import queue
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties


class Probe:
    """Subscribes to a room's root and records everything; sends commands and waits for replies."""

    def __init__(self, port: int, root: str, *, subscribe: str = "#") -> None:
        self.root = root
        self.lock = threading.Lock()
        self.messages: list[tuple[str, bytes, bool, Any]] = []
        self.retained: dict[str, bytes] = {}
        self._arrived = threading.Condition(self.lock)
        self._connected: queue.Queue[bool] = queue.Queue()
        c = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"probe-{uuid.uuid4().hex[:6]}",
            protocol=mqtt.MQTTv5,
        )
        c.on_connect = lambda cl, ud, fl, rc, pr: self._on_connect(cl, rc, subscribe)
        c.on_message = self._on_message
        c.on_subscribe = lambda *a: self._connected.put(True)
        c.connect("127.0.0.1", port, keepalive=30)
        c.loop_start()
        self.client = c
        if not self._connected.get(timeout=10):
            raise RuntimeError("probe could not subscribe")

    def _on_connect(self, client: mqtt.Client, rc: Any, subscribe: str) -> None:
        client.subscribe(f"{self.root}/{subscribe}", qos=1)

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        with self._arrived:
            self.messages.append((msg.topic, bytes(msg.payload), bool(msg.retain), msg.properties))
            self.retained[msg.topic] = bytes(msg.payload)
            self._arrived.notify_all()

    # --- looking ----------------------------------------------------------------------

    def leaf(self, topic: str) -> str:
        """A topic relative to the room's root."""
        return topic[len(self.root) + 1 :]

    def payloads(self, leaf: str) -> list[Any]:
        """Every JSON payload seen on ``leaf``, in order."""
        with self.lock:
            items = [p for t, p, _, _ in self.messages if self.leaf(t) == leaf]
        return [json.loads(p) for p in items]

    def events(self) -> list[dict[str, Any]]:
        """Every event seen, in arrival order."""
        return self.payloads("events")

    def wait_for(
        self, predicate: Callable[[], Any], timeout: float = 15.0, what: str = "condition"
    ) -> Any:
        """Wait (bounded) until ``predicate()`` is truthy; return its value."""
        deadline = time.monotonic() + timeout
        with self._arrived:
            while True:
                self.lock.release()
                try:
                    value = predicate()
                finally:
                    self.lock.acquire()
                if value:
                    return value
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"timed out after {timeout}s waiting for {what}")
                self._arrived.wait(timeout=min(left, 0.2))

    def wait_event(self, type_: str, timeout: float = 15.0, **match: Any) -> dict[str, Any]:
        """Wait for an event of ``type_`` whose data has ``match``; return it."""

        def find() -> dict[str, Any] | None:
            for e in self.events():
                if e["type"] == type_ and all(e["data"].get(k) == v for k, v in match.items()):
                    return e
            return None

        return self.wait_for(find, timeout, f"event {type_} {match}")  # type: ignore[no-any-return]

    # --- acting -----------------------------------------------------------------------

    def publish(
        self, leaf: str, payload: bytes, *, retain: bool = False, props: Any = None
    ) -> None:
        """Publish raw bytes under the room's root and wait for the broker's ack."""
        info = self.client.publish(
            f"{self.root}/{leaf}", payload, qos=1, retain=retain, properties=props
        )
        info.wait_for_publish(5)

    def command(
        self, verb: str, timeout: float = 10.0, by: str = "dr-test", **args: Any
    ) -> dict[str, Any]:
        """Send a command; return its reply (bounded wait)."""
        rid = uuid.uuid4().hex[:12]
        self.publish(f"cmd/{verb}", json.dumps({"request_id": rid, "by": by, **args}).encode())
        return self.reply(rid, timeout)

    def reply(self, request_id: str, timeout: float = 10.0) -> dict[str, Any]:
        """Wait for the reply to ``request_id``."""

        def find() -> dict[str, Any] | None:
            for r in self.payloads("replies"):
                if r.get("request_id") == request_id:
                    return r  # type: ignore[no-any-return]
            return None

        return self.wait_for(find, timeout, f"reply to {request_id}")  # type: ignore[no-any-return]

    def ok(self, verb: str, **args: Any) -> dict[str, Any]:
        """A command that must succeed; its result."""
        reply = self.command(verb, **args)
        assert reply["ok"], f"{verb}: {reply}"
        return reply["result"]  # type: ignore[no-any-return]

    def close(self) -> None:
        """Disconnect."""
        self.client.disconnect()
        self.client.loop_stop()


def response_props(topic: str, correlation: bytes) -> Properties:
    """MQTT 5 request/response properties."""
    props = Properties(PacketTypes.PUBLISH)
    props.ResponseTopic = topic
    props.CorrelationData = correlation
    return props
