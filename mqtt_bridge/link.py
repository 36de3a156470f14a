"""The room's MQTT link (paho-mqtt 2.x, MQTT 5): publishes the room, receives plans and commands.

paho's callbacks run on its network thread: they only put messages on the core's inbox and
return. Delivery of events is reported back as ``EventDelivered(seq)`` when the broker's PUBACK
arrives; the journal, not paho's in-memory queue, is what survives a crash.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import socket
import ssl
import stat
import threading
import time
from collections.abc import Sequence
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from controller.config import MqttSection
from controller.errors import ConfigError
from controller.events import (
    CommandReceived,
    EventDelivered,
    EventUndeliverable,
    LinkDown,
    LinkUp,
    PlanReceived,
    SimAction,
)
from controller.models import (
    MAX_PAYLOAD_BYTES,
    Alarm,
    AlarmList,
    ErrorBody,
    Event,
    NibpReading,
    PrivateReply,
    Reply,
    RoomState,
    VitalsSample,
)
from controller.ports import Emit
from mqtt_bridge.topics import Topics

log = logging.getLogger("roomd.link")

EARLY_ACK_S = 5.0
"""How long a PUBACK may wait for its publish() to return and claim it."""
PACKET_OVERHEAD = 1024
"""Room for a PUBLISH packet's header, topic and properties around its payload."""
REFUSED_FOR_GOOD = {"Packet too large", "Payload format invalid", "Topic Name invalid"}
"""PUBACK reasons that a re-send of the same message would get again."""


def no_delay(client: mqtt.Client, userdata: Any, sock: Any) -> None:
    """paho's on_socket_open: switch off Nagle's algorithm on the broker connection.

    Without it a reply sent just after a PUBACK waits for the broker's delayed ACK (~40 ms)
    on every command: measured by make bench, 87 ms round trips instead of under 1 ms.
    """
    with contextlib.suppress(OSError, AttributeError):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def room_client_id(room_id: str, secret: str) -> str:
    """The room's MQTT client id: stable per installation, not guessable from the room id.

    Mosquitto's password and ACL files cannot tie a client id to a user, so anyone who can log
    in could knock a room off with a guessable id; the secret suffix (kept in the journal)
    closes that for everyone who has not seen it.
    """
    return f"roomd-{room_id}-{secret}"


def read_password(path: str) -> str:
    """The broker password from its file; refuse a file others can read."""
    try:
        mode = os.stat(path).st_mode
        if mode & (stat.S_IRWXO):
            raise ConfigError(path, ["password file is readable by others; chmod 600 or 640"])
        with open(path, encoding="utf-8") as fh:
            return fh.read().strip()
    except OSError as exc:
        raise ConfigError(path, [f"password file unreadable: {exc.strerror}"]) from None


def probe_broker(section: MqttSection, client_id: str, timeout: float) -> str | None:
    """Connect once with the room's settings; None when the broker accepted, else why not."""
    answer: queue.Queue[str] = queue.Queue()
    client = new_client(section, client_id)
    client.on_connect = lambda c, u, f, rc, p: answer.put(str(rc))
    try:
        client.connect_async(section.host, section.port, keepalive=10)
        client.loop_start()
        rc = answer.get(timeout=timeout)
    except (OSError, queue.Empty, ssl.SSLError) as exc:
        return f"did not answer ({exc or 'timeout'})"
    finally:
        client.disconnect()
        client.loop_stop()
    return None if rc == "Success" else f"refused the room: {rc}"


def new_client(
    section: MqttSection, client_id: str, *, status: str | None = None, manual_ack: bool = False
) -> mqtt.Client:
    """A paho MQTT 5 client with the section's credentials and TLS, Nagle off, reconnecting
    by itself; with ``status``, its last will says ``offline`` there (retained)."""
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=mqtt.MQTTv5,
        manual_ack=manual_ack,
    )
    if status is not None:
        client.will_set(status, b"offline", qos=1, retain=True)
    if section.username:
        password = read_password(section.password_file) if section.password_file else None
        client.username_pw_set(section.username, password)
    if section.tls_ca:
        client.tls_set(ca_certs=section.tls_ca, tls_version=ssl.PROTOCOL_TLS_CLIENT)
    client.reconnect_delay_set(min_delay=1, max_delay=10)
    client.on_socket_open = no_delay
    return client


def connect_persistent(
    client: mqtt.Client, section: MqttSection, *, receive_maximum: int | None = None
) -> None:
    """Connect in the background to the broker session kept for this client id (MQTT 5
    ``clean_start`` false, the section's expiry); paho reconnects by itself after a loss.
    ``receive_maximum``: how many QoS 1 messages the broker may send before their PUBACKs
    (else the broker's own limit, Mosquitto's ``max_inflight_messages``: 20)."""
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = section.session_expiry_s
    if receive_maximum is not None:
        props.ReceiveMaximum = receive_maximum
    client.connect_async(
        section.host,
        section.port,
        keepalive=section.keepalive_s,
        clean_start=False,
        properties=props,
    )
    client.loop_start()


def say_offline(client: mqtt.Client, status: str, timeout: float) -> None:
    """Publish ``offline`` (retained) at ``status`` if connected, disconnect, and stop the
    network thread (a clean stop: the last will is for the other kind)."""
    try:
        if client.is_connected():
            info = client.publish(status, b"offline", qos=1, retain=True)
            info.wait_for_publish(timeout)
        client.disconnect()
    except (RuntimeError, ValueError) as exc:
        log.warning("offline status not confirmed: %s", exc)
    finally:
        client.loop_stop()


class MqttLink:
    """The ClinicLink over a real broker."""

    def __init__(
        self,
        section: MqttSection,
        topics: Topics,
        emit: Emit,
        *,
        client_id: str | None = None,
        simulate: bool = False,
    ) -> None:
        self._section = section
        self._topics = topics
        self._emit = emit
        self._simulate = simulate
        self._lock = threading.Lock()
        self._pending: dict[int, int | None] = {}  # mid -> event seq (None: not an event)
        self._early: dict[int, float] = {}  # PUBACKs that beat publish() returning -> when
        # The clinic broker's message_size_limit is the contract's 64 KiB; a smaller Maximum
        # Packet Size in the CONNACK lowers it.
        self.max_payload = MAX_PAYLOAD_BYTES
        client = new_client(section, client_id or f"roomd-{topics.room_id}", status=topics.status)
        client.max_queued_messages_set(0)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_publish = self._on_publish
        client.on_subscribe = self._on_subscribe
        self._subscribing: int | None = None  # the mid of this connection's SUBSCRIBE
        self._client = client

    # --- lifecycle --------------------------------------------------------------------

    def start(self) -> None:
        """Connect in the background; paho reconnects by itself after a loss."""
        connect_persistent(self._client, self._section)

    def stop(self, timeout: float = 3.0) -> None:
        """Say ``offline`` (retained), disconnect, and stop the network thread."""
        say_offline(self._client, self._topics.status, timeout)

    # --- the ClinicLink port ------------------------------------------------------------

    def publish_event(self, event: Event) -> None:
        """Send one event (QoS 1); its PUBACK becomes EventDelivered(seq).

        An event the broker would refuse is not sent (the broker would drop the room's
        connection, and the outbox send it again at every reconnect): it is reported as
        EventUndeliverable(seq) for the outbox to set aside.
        """
        payload = event.to_json()
        if len(payload) > self.max_payload:
            reason = f"{len(payload)} bytes; the broker takes at most {self.max_payload}"
            log.error("event %d not sent: %s", event.seq, reason)
            self._emit(EventUndeliverable(event.seq, reason))
            return
        self._publish(self._topics.events, payload, 1, False, event.seq)

    def publish_state(self, state: RoomState) -> None:
        """Replace the retained state."""
        self._publish(self._topics.state, state.to_json(), 1, True)

    def publish_vitals(self, sample: VitalsSample) -> None:
        """Send a live sample (QoS 0)."""
        self._publish(self._topics.vitals, sample.to_json(), 0, False)

    def publish_nibp(self, reading: NibpReading) -> None:
        """Replace the retained latest NIBP reading."""
        self._publish(self._topics.nibp, reading.to_json(), 1, True)

    def publish_alarms(self, alarms: Sequence[Alarm]) -> None:
        """Replace the retained alarm list."""
        self._publish(self._topics.alarms, AlarmList(alarms=list(alarms)).to_json(), 1, True)

    def publish_reply(
        self, reply: Reply, response_topic: str | None, correlation_data: bytes | None
    ) -> None:
        """Send the reply on ``replies`` and, for MQTT 5 requesters, to their response topic
        (a ``PrivateReply`` only to a response topic under ``replies/``, which observers
        never read; elsewhere it becomes a refusal without its text)."""
        private = isinstance(reply, PrivateReply)
        if private and (response_topic or "").startswith(self._topics.replies + "/"):
            self._publish_to(response_topic or "", reply.to_json(), correlation_data)
            return
        if private:
            reply = _private_refused(reply)
        payload = reply.to_json()
        if len(payload) > self.max_payload:  # the desk fits replies: this is a last guard
            log.error("reply to %s not sent: %d bytes", reply.request_id, len(payload))
            return
        self._publish(self._topics.replies, payload, 1, False)
        if response_topic and response_topic != self._topics.replies:
            self._publish_to(response_topic, payload, correlation_data)

    def _publish_to(self, topic: str, payload: bytes, correlation_data: bytes | None) -> None:
        props = Properties(PacketTypes.PUBLISH)
        if correlation_data is not None:
            props.CorrelationData = correlation_data
        self._publish(topic, payload, 1, False, properties=props)

    # --- paho's thread ------------------------------------------------------------------

    def _publish(
        self,
        topic: str,
        payload: bytes,
        qos: int,
        retain: bool,
        seq: int | None = None,
        properties: Properties | None = None,
    ) -> None:
        try:
            info = self._client.publish(
                topic, payload, qos=qos, retain=retain, properties=properties
            )
        except (ValueError, RuntimeError) as exc:  # e.g. a response topic with wildcards
            log.warning("publish to %s refused: %s", topic, exc)
            return
        if info.rc == mqtt.MQTT_ERR_NO_CONN and qos == 0:
            return  # dropped: QoS 0 is never queued, and will never be acknowledged
        # (A QoS 1 message refused for want of a connection is queued by paho and sent after
        # the reconnect: its PUBACK still counts. The journal re-sends events anyway.)
        delivered = False
        now = time.monotonic()
        with self._lock:
            early = self._early.pop(info.mid, None)
            if early is not None and now - early <= EARLY_ACK_S:
                delivered = seq is not None
            else:
                self._pending[info.mid] = seq
            # An acknowledgement nobody claimed soon is stale; kept, it could pass for the
            # PUBACK of a later message once paho's 16-bit message ids wrap round.
            for mid, at in list(self._early.items()):
                if now - at > EARLY_ACK_S:
                    del self._early[mid]
        if delivered and seq is not None:
            self._emit(EventDelivered(seq))

    def _on_publish(
        self, client: mqtt.Client, userdata: Any, mid: int, reason: Any, properties: Any
    ) -> None:
        with self._lock:
            if mid in self._pending:
                seq = self._pending.pop(mid)
            else:
                self._early[mid] = time.monotonic()
                return
        if seq is None:
            return
        if not getattr(reason, "is_failure", False):
            self._emit(EventDelivered(seq))
        elif str(reason) in REFUSED_FOR_GOOD:
            log.error("broker refused event %d for good: %s", seq, reason)
            self._emit(EventUndeliverable(seq, f"the broker refused it: {reason}"))
        else:
            log.warning("broker refused event %d: %s (it will be sent again)", seq, reason)

    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any
    ) -> None:
        if reason.is_failure:
            log.error("broker refused the connection: %s", reason)
            return
        limit = getattr(properties, "MaximumPacketSize", None) if properties else None
        if isinstance(limit, int):
            self.max_payload = min(MAX_PAYLOAD_BYTES, limit - PACKET_OVERHEAD)
        # Retain As Published: a command someone published with the retain flag arrives
        # flagged even on live delivery (the broker clears the flag by default), so it is
        # ignored then too, not only when replayed on subscribing.
        commands = SubscribeOptions(qos=1, retainAsPublished=True)
        subs: list[tuple[str, Any]] = [
            (self._topics.plan, SubscribeOptions(qos=1)),
            (self._topics.commands, commands),
            (self._topics.attributed_commands, commands),
        ]
        if self._simulate:
            subs.append((self._topics.sim, SubscribeOptions(qos=0)))
        # Online once the broker has the subscriptions (SUBACK): a command sent after the room
        # said online is never published into the gap before them (a first connection).
        _, self._subscribing = client.subscribe(subs)
        log.info("connected to %s:%s", self._section.host, self._section.port)

    def _on_subscribe(
        self, client: mqtt.Client, userdata: Any, mid: int, reasons: Any, properties: Any
    ) -> None:
        if mid != self._subscribing:
            return
        self._subscribing = None
        refused = [str(r) for r in reasons if getattr(r, "is_failure", False)]
        if refused:  # the room could not hear commands there: say so loudly, still go online
            log.error("broker refused command subscriptions: %s", ", ".join(refused))
        self._publish(self._topics.status, b"online", 1, True)
        self._emit(LinkUp())

    def _on_disconnect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any
    ) -> None:
        log.warning("disconnected from broker: %s", reason)
        self._emit(LinkDown())

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        topic = message.topic
        command = self._topics.command_of(topic)
        if message.retain and command is not None:
            # A retained command is a stale replay whenever the room resubscribes: never run it.
            log.warning("ignored a retained command on %s", topic)
            return
        if topic == self._topics.plan:
            self._emit(PlanReceived(bytes(message.payload)))
            return
        if command is not None:
            verb, user = command
            props = getattr(message, "properties", None)
            response = getattr(props, "ResponseTopic", None) if props else None
            correlation = getattr(props, "CorrelationData", None) if props else None
            self._emit(CommandReceived(verb, bytes(message.payload), response, correlation, user))
            return
        action = self._topics.sim_of(topic)
        if action is not None and self._simulate:
            try:
                args = json.loads(message.payload) if message.payload else {}
            except (ValueError, UnicodeDecodeError):
                args = {}
            self._emit(SimAction(action, args if isinstance(args, dict) else {}))


def _private_refused(reply: Reply) -> Reply:
    """The refusal sent instead of a reply with clinical text that has nowhere private to go."""
    message = "this reply holds clinical text: give an MQTT 5 response topic under replies/"
    return Reply(
        request_id=reply.request_id,
        verb=reply.verb,
        ok=False,
        error=ErrorBody(code="invalid_payload", message=message),
    )
