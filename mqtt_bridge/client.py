"""The MQTT client of ``roomctl`` and its ``watch`` screen: connect, subscribe, ask and wait.

It knows the broker options of the command line (``--host``, ``--user``, ``--tls-ca`` …) and
the room's topics, nothing of the verbs.
"""

from __future__ import annotations

import argparse
import json
import queue
import ssl
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from mqtt_bridge.link import no_delay
from mqtt_bridge.topics import Topics

COMMAND_EXPIRY_S = 30
"""Commands expire at the broker after this long: a stale command is never run late."""


class Client:
    """A connected MQTT client that collects messages on a queue."""

    def __init__(self, ns: argparse.Namespace) -> None:
        self.topics = Topics(ns.prefix, ns.room)
        # Logged in, commands go on cmd/<verb>/by/<user>: the clinic ACL lets a clinician
        # write only there, and the room records that user as `by`, proven by the broker.
        declared = getattr(ns, "declared", False)
        self.attributed_as: str | None = None if declared else (ns.user or None)
        self.messages: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
        self.connected: queue.Queue[bool] = queue.Queue()
        c = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"roomctl-{uuid.uuid4().hex[:8]}",
            protocol=mqtt.MQTTv5,
        )
        if ns.user:
            password = None
            if ns.password_file:
                with open(ns.password_file, encoding="utf-8") as fh:
                    password = fh.read().strip()
            c.username_pw_set(ns.user, password)
        if ns.tls_ca:
            c.tls_set(ca_certs=ns.tls_ca, tls_version=ssl.PROTOCOL_TLS_CLIENT)
        c.on_connect = lambda cl, ud, fl, rc, pr: self.connected.put(not rc.is_failure)
        c.on_message = lambda cl, ud, msg: self.messages.put(msg)
        c.on_socket_open = no_delay
        self.client = c
        self.host, self.port = ns.host, ns.port

    @contextmanager
    def session(self, subscriptions: list[str], timeout: float) -> Iterator[bool]:
        """Connect and subscribe; yields whether that worked within ``timeout``."""
        self.client.connect_async(self.host, self.port, keepalive=30)
        self.client.loop_start()
        try:
            ok = False
            with suppress(queue.Empty):
                ok = self.connected.get(timeout=timeout)
            if ok:
                for topic in subscriptions:
                    self.client.subscribe(topic, qos=1)
            yield ok
        finally:
            self.client.disconnect()
            self.client.loop_stop()

    def request(self, verb: str, payload: dict[str, Any], timeout: float) -> dict[str, Any] | None:
        """Send one command and wait for its reply (None on timeout)."""
        props = Properties(PacketTypes.PUBLISH)
        props.MessageExpiryInterval = COMMAND_EXPIRY_S
        time.sleep(0.05)  # let the SUBACK land so the reply cannot be missed
        self.client.publish(
            self.topics.cmd(verb, self.attributed_as),
            json.dumps(payload).encode(),
            qos=1,
            properties=props,
        )
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                msg = self.messages.get(timeout=left)
            except queue.Empty:
                break
            try:
                reply = json.loads(msg.payload)
            except ValueError:
                continue
            if isinstance(reply, dict) and reply.get("request_id") == payload["request_id"]:
                return reply
        return None
