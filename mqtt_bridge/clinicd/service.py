"""The archive process: its MQTT client (paho 2.x, MQTT 5, persistent session) and the one
worker thread that owns the store.

paho's callbacks only put messages on the worker's inbox; the worker stores events, answers
the archive's verbs and asks rooms for what is missing. The HL7 sender, when configured,
runs on its own thread with its own connection to the store.

Exactly once, no loss on kill -9: paho acknowledges nothing by itself (``manual_ack``). The
worker takes whatever has arrived (up to ``BATCH_MAX`` messages), handles it in one
transaction, commits, and only then sends the PUBACKs; a message not yet committed when the
archive dies is still the broker's, and the persistent session delivers it again. A PUBACK is
sent only on the connection the message came on: after a reconnection the broker redelivers
what was not acknowledged, and that copy is acknowledged instead.
"""

from __future__ import annotations

import json
import logging
import queue
import re
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from controller.models import Event
from mqtt_bridge.clinicd.config import ClinicdConfig
from mqtt_bridge.clinicd.course import keep_summaries
from mqtt_bridge.clinicd.ingest import Ingest
from mqtt_bridge.clinicd.sender import Hl7Sender
from mqtt_bridge.clinicd.store import Store
from mqtt_bridge.clinicd.verbs import Archive
from mqtt_bridge.link import connect_persistent, new_client, say_offline

log = logging.getLogger("clinicd")

ROOM_ID = re.compile(r"^[a-z0-9-]{1,32}$")
TICK_S = 0.5
BATCH_MAX = 1000
"""Messages handled in one transaction at most (the rest wait for the next one)."""
IDLE_S = 0.05
"""Nothing arrived for this long: the worker is idle (and may keep summaries)."""
SUMMARIES_PER_TURN = 4
"""Sessions summarised per idle turn of the worker (each takes a few milliseconds)."""


class ArchiveTopics:
    """The archive's topics, and how it reads the rooms' ones."""

    def __init__(self, prefix: str, client_id: str) -> None:
        self.prefix = prefix
        self.rooms = f"{prefix}/rooms"
        self.root = f"{prefix}/archive"
        self.status = f"{self.root}/status"
        self.replies = f"{self.root}/replies"
        self.commands = f"{self.root}/cmd/+"
        self.reply_leaf = f"replies/{client_id}"
        # A room answers on its general replies as well as on the response topic: across a
        # site bridge (MQTT 3.1.1, no response topic) that is where the answer comes.
        self.subscriptions = [
            f"{self.rooms}/+/events",
            f"{self.rooms}/+/status",
            f"{self.rooms}/+/{self.reply_leaf}",
            f"{self.rooms}/+/replies",
            self.commands,
        ]
        self._kinds = {
            "events": "event",
            "status": "status",
            self.reply_leaf: "reply",
            "replies": "reply",
        }

    def room_cmd(self, room_id: str, verb: str) -> str:
        """A room's command topic."""
        return f"{self.rooms}/{room_id}/cmd/{verb}"

    def room_replies(self, room_id: str) -> str:
        """Where a room answers the archive (MQTT 5 response topic under its replies/)."""
        return f"{self.rooms}/{room_id}/{self.reply_leaf}"

    def classify(self, topic: str) -> tuple[str, str] | None:
        """(kind, room id or verb) of a topic the archive subscribes to, else None."""
        head = f"{self.root}/cmd/"
        if topic.startswith(head):
            return "command", topic[len(head) :]
        if not topic.startswith(self.rooms + "/"):
            return None
        room_id, _, leaf = topic[len(self.rooms) + 1 :].partition("/")
        if not ROOM_ID.fullmatch(room_id):
            return None
        kind = self._kinds.get(leaf)
        return (kind, room_id) if kind else None


@dataclass(frozen=True)
class Inbound:
    """One message for the worker."""

    kind: str  # event | status | reply | command | connected | stop
    name: str = ""  # the room id, or the verb
    payload: bytes = b""
    response_topic: str | None = None
    correlation: bytes | None = None
    mid: int = 0  # to acknowledge once handled (QoS 1)
    qos: int = 0
    link: int = 0  # which connection it came on


def utc_now() -> datetime:
    """The wall clock, UTC."""
    return datetime.now(UTC)


class ClinicArchive:
    """The running archive: connect, ingest, answer, until ``stop()``."""

    def __init__(
        self, config: ClinicdConfig, db_path: Path, *, now: Callable[[], datetime] = utc_now
    ) -> None:
        self.config = config
        self.db_path = db_path
        self.topics = ArchiveTopics(config.mqtt.topic_prefix, config.mqtt.client_id)
        self._now = now
        self._inbox: queue.SimpleQueue[Inbound] = queue.SimpleQueue()
        self._worker = threading.Thread(target=self._work, name="clinicd-worker", daemon=True)
        self._ready = threading.Event()
        self.failure: BaseException | None = None
        self.sender = Hl7Sender(config.hl7, db_path, now=now) if config.hl7 else None
        self._alive: Callable[[], None] = lambda: None
        self._link = 0  # counts connections: a PUBACK belongs to the one its message came on
        self._unsummarized: set[str] = set()  # sessions with new events (the worker's)
        client = new_client(
            config.mqtt, config.mqtt.client_id, status=self.topics.status, manual_ack=True
        )
        client.on_connect = self._on_connect
        client.on_disconnect = lambda c, u, f, reason, p: log.warning("disconnected: %s", reason)
        client.on_message = self._on_message
        self._client = client

    # --- lifecycle --------------------------------------------------------------------

    def start(self, alive: Callable[[], None] | None = None) -> None:
        """Open the store, connect with the persistent session, start the threads."""
        if alive is not None:
            self._alive = alive
        self._worker.start()
        if not self._ready.wait(30) or self.failure is not None:
            raise RuntimeError(f"cannot open the archive {self.db_path}: {self.failure}")
        # The broker may have a whole batch in flight: acknowledged only once committed, 20
        # at a time (Mosquitto's default) would make every batch 20 events and one fsync.
        connect_persistent(self._client, self.config.mqtt, receive_maximum=BATCH_MAX)
        if self.sender is not None:
            self.sender.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Say ``offline`` (retained), stop the threads, disconnect."""
        self._inbox.put(Inbound("stop"))
        self._worker.join(timeout)
        if self.sender is not None:
            self.sender.stop()
        say_offline(self._client, self.topics.status, timeout)

    # --- paho's thread ----------------------------------------------------------------

    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any
    ) -> None:
        if reason.is_failure:
            log.error("broker refused the archive: %s", reason)
            return
        self._link += 1
        client.subscribe([(t, 1) for t in self.topics.subscriptions])
        client.publish(self.topics.status, b"online", qos=1, retain=True)
        log.info("connected to %s:%s", self.config.mqtt.host, self.config.mqtt.port)
        self._inbox.put(Inbound("connected"))

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        what = self.topics.classify(message.topic)
        # a retained command would be replayed on every resubscription
        if what is None or (what[0] == "command" and message.retain):
            client.ack(message.mid, message.qos)
            return
        kind, name = what
        props = getattr(message, "properties", None)
        self._inbox.put(
            Inbound(
                kind,
                name,
                bytes(message.payload),
                getattr(props, "ResponseTopic", None) if props else None,
                getattr(props, "CorrelationData", None) if props else None,
                message.mid,
                message.qos,
                self._link,
            )
        )

    # --- the worker ---------------------------------------------------------------------

    def _send_room(self, room_id: str, verb: str, payload: dict[str, Any]) -> None:
        props = Properties(PacketTypes.PUBLISH)
        props.ResponseTopic = self.topics.room_replies(room_id)
        props.CorrelationData = str(payload["request_id"]).encode()
        props.MessageExpiryInterval = int(self.config.archive.request_timeout_s) + 1
        self._client.publish(
            self.topics.room_cmd(room_id, verb), json.dumps(payload).encode(), 1, properties=props
        )

    def _work(self) -> None:
        try:
            store = Store(self.db_path)
        except (sqlite3.Error, OSError) as exc:
            self.failure = exc
            self._ready.set()
            return
        archive = Archive(store, self.config.course)
        a = self.config.archive
        ingest = Ingest(
            store,
            self._send_room,
            page_limit=a.page_limit,
            request_timeout_s=a.request_timeout_s,
            resync_s=a.resync_s,
            on_new=self._on_new,
        )
        self._unsummarized = set(store.unsummarized())
        self._ready.set()
        try:
            self._loop(store, archive, ingest)
        except Exception as exc:  # e.g. the disk is full: stop, and let systemd restart us
            log.critical("the archive's worker failed: %s", exc, exc_info=True)
            self.failure = exc
        finally:
            store.close()

    def _loop(self, store: Store, archive: Archive, ingest: Ingest) -> None:
        while True:
            batch, stopping = self._take(IDLE_S if self._unsummarized else TICK_S)
            now = self._now()
            if batch:
                if log.isEnabledFor(logging.DEBUG):
                    events = sum(m.kind == "event" for m in batch)
                    log.debug("handling %d message(s), %d event(s), in one transaction",
                              len(batch), events)  # fmt: skip
                with store.batch():
                    self._handle(batch, ingest, archive, now)
                self._ack(batch)  # committed: now the broker may forget them
            if stopping:
                return
            ingest.tick(now)
            if self.sender is not None:
                self.sender.enqueue_ended(store)
            if self._unsummarized and not batch:
                # Idle (nothing came for IDLE_S: not in the middle of a burst, whose paho
                # thread would wait for the GIL): keep the summaries of sessions that had new
                # events (the ended ones), a few at a time: a query waits for at most these.
                n = min(SUMMARIES_PER_TURN, len(self._unsummarized))
                keep_summaries(store, [self._unsummarized.pop() for _ in range(n)])
            self._alive()

    def _take(self, wait_s: float) -> tuple[list[Inbound], bool]:
        """What has arrived (waiting up to ``wait_s`` for the first), up to a stop; and
        whether a stop came."""
        batch: list[Inbound] = []
        try:
            msg = self._inbox.get(timeout=wait_s) if wait_s > 0 else self._inbox.get_nowait()
            while True:
                if msg.kind == "stop":
                    return batch, True
                batch.append(msg)
                if len(batch) >= BATCH_MAX:
                    break
                msg = self._inbox.get_nowait()
        except queue.Empty:
            pass
        return batch, False

    def _ack(self, batch: list[Inbound]) -> None:
        link = self._link
        for msg in batch:
            if msg.qos and msg.link == link:
                self._client.ack(msg.mid, msg.qos)

    def _handle(
        self, batch: list[Inbound], ingest: Ingest, archive: Archive, now: datetime
    ) -> None:
        """Each message in order; a run of events goes to the store together, by room."""
        run: dict[str, list[bytes]] = {}
        for msg in batch:
            if msg.kind == "event":
                run.setdefault(msg.name, []).append(msg.payload)
                continue
            for room_id, payloads in run.items():
                ingest.on_events(room_id, payloads, now)
            run = {}
            self._dispatch(msg, ingest, archive, now)
        for room_id, payloads in run.items():
            ingest.on_events(room_id, payloads, now)

    def _dispatch(self, msg: Inbound, ingest: Ingest, archive: Archive, now: datetime) -> None:
        if msg.kind == "command":
            reply = archive.handle(msg.name, msg.payload).to_json()
            self._client.publish(self.topics.replies, reply, 1)
            if msg.response_topic and msg.response_topic != self.topics.replies:
                props = Properties(PacketTypes.PUBLISH)
                if msg.correlation is not None:
                    props.CorrelationData = msg.correlation
                self._client.publish(msg.response_topic, reply, 1, properties=props)
            return
        if msg.kind == "connected":
            ingest.on_connected(now)
            return
        if msg.kind == "status":
            if msg.payload == b"online":
                ingest.on_room_online(msg.name, now)
            return
        try:
            obj = json.loads(msg.payload)
        except (ValueError, UnicodeDecodeError):
            log.warning("%s: a reply that is not JSON was dropped", msg.name)
            return
        if isinstance(obj, dict):
            ingest.on_reply(msg.name, obj, now)

    def _on_new(self, room_id: str, events: list[Event]) -> None:
        self._unsummarized.update(e.session_id for e in events if e.session_id is not None)
        if self.sender is not None and any(e.type == "session_ended" for e in events):
            self.sender.wake()
