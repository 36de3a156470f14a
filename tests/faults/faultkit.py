"""Shared helpers for the durability fault tests (outage, crashes, clock steps, fuzz).

Everything here waits with a bound: a fault test that hangs proves nothing.

- ``persistent_broker``: a real Mosquitto with persistence on, as the shipped production config
  has it (``mqtt_bridge/broker/mosquitto.conf``: ``persistence true``), so a subscriber's
  durable session and its queued QoS 1 messages survive a broker restart.
- ``Tablet``: a subscriber like the clinic's tablet: a durable MQTT 5 session (clean_start off,
  session expiry), records every message with the number of the connection it arrived on.
- journal readers that open the SQLite file read-only, and the seq checks the tests share.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import statistics
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from tests.support.broker import Broker
from tests.support.probe import Probe

ACTIVE_PHASES = frozenset(
    {
        "check_in",
        "integration",
        "intentions",
        "pre_infusion",
        "infusion",
        "debrief",
        "preparation",
        "discharge",
    }
)


def persistent_broker(workdir: Path) -> Broker:
    """A test broker that keeps sessions and queued messages across stop()/start().

    The last ``persistence`` line of a Mosquitto config wins, so this overrides the test
    broker's ``persistence false``.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    return Broker(
        workdir,
        extra_conf=f"persistence true\npersistence_location {workdir}/\nautosave_interval 1\n",
    )


def wait_until(predicate: Callable[[], Any], timeout: float, what: str, poll: float = 0.02) -> Any:
    """Poll (bounded) until ``predicate()`` is truthy; return its value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(poll)


# --- a durable subscriber ---------------------------------------------------------------------


@dataclass(frozen=True)
class Seen:
    """One message as the tablet received it."""

    conn: int  # 1 for the first connection, 2 after the first reconnect, ...
    at: float  # time.monotonic() on arrival
    topic: str
    payload: bytes
    retain: bool


class Tablet:
    """A durable MQTT 5 subscriber to a room's root that records what arrives, per connection."""

    def __init__(self, port: int, root: str, *, session_expiry_s: int = 600) -> None:
        self.root = root
        self._lock = threading.Lock()
        self.seen: list[Seen] = []
        self.connections = 0
        self.connected_at: list[float] = []
        self._subscribed = threading.Event()
        c = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"tablet-{uuid.uuid4().hex[:8]}",
            protocol=mqtt.MQTTv5,
        )
        c.reconnect_delay_set(min_delay=1, max_delay=2)
        c.on_connect = self._on_connect
        c.on_subscribe = lambda *a: self._subscribed.set()
        c.on_message = self._on_message
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = session_expiry_s
        c.connect("127.0.0.1", port, keepalive=10, clean_start=False, properties=props)
        c.loop_start()
        self.client = c
        if not self._subscribed.wait(10):
            raise RuntimeError("the tablet could not subscribe")

    def _on_connect(self, client: mqtt.Client, ud: Any, flags: Any, rc: Any, props: Any) -> None:
        with self._lock:
            self.connections += 1
            self.connected_at.append(time.monotonic())
        client.subscribe(f"{self.root}/#", qos=1)

    def _on_message(self, client: mqtt.Client, ud: Any, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.seen.append(
                Seen(self.connections, time.monotonic(), msg.topic, bytes(msg.payload), msg.retain)
            )

    def leaf(self, topic: str) -> str:
        """A topic relative to the room's root."""
        return topic[len(self.root) + 1 :]

    def on(self, leaf: str) -> list[Seen]:
        """Every message seen on ``leaf``, in arrival order."""
        with self._lock:
            return [s for s in self.seen if self.leaf(s.topic) == leaf]

    def events(self) -> list[dict[str, Any]]:
        """Every event seen, in arrival order (duplicates included)."""
        return [json.loads(s.payload) for s in self.on("events")]

    def events_with_conn(self) -> list[tuple[int, float, dict[str, Any]]]:
        """(connection number, arrival time, event) for every event seen, in arrival order."""
        return [(s.conn, s.at, json.loads(s.payload)) for s in self.on("events")]

    def status_values(self) -> list[tuple[float, bytes]]:
        """(arrival time, payload) of every ``status`` message, in order."""
        return [(s.at, s.payload) for s in self.on("status")]

    def max_seq(self) -> int:
        """The highest event seq seen so far (0 if none)."""
        return max((e["seq"] for e in self.events()), default=0)

    def find_event(self, type_: str, *, after_seq: int = 0) -> dict[str, Any] | None:
        """The first event of ``type_`` with a seq above ``after_seq``."""
        for e in self.events():
            if e["type"] == type_ and e["seq"] > after_seq:
                return e
        return None

    def wait_event(self, type_: str, timeout: float, *, after_seq: int = 0) -> dict[str, Any]:
        """Wait (bounded) for an event of ``type_`` with a seq above ``after_seq``."""
        return wait_until(  # type: ignore[no-any-return]
            lambda: self.find_event(type_, after_seq=after_seq),
            timeout,
            f"event {type_} after seq {after_seq}",
        )

    def close(self) -> None:
        """Disconnect."""
        self.client.disconnect()
        self.client.loop_stop()


# --- commands that survive a crash ------------------------------------------------------------


def try_command(probe: Probe, verb: str, timeout: float, **args: Any) -> dict[str, Any] | None:
    """Send a command with a fresh request_id; its reply, or None if none came in time."""
    rid = uuid.uuid4().hex[:16]
    body = json.dumps({"request_id": rid, "by": "dr-fault", **args}).encode()
    try:
        probe.publish(f"cmd/{verb}", body)
        return probe.reply(rid, timeout)
    except (AssertionError, RuntimeError, ValueError):
        return None


def status(probe: Probe, timeout: float = 30.0) -> dict[str, Any]:
    """The room's state, asking again (new request_id) until the room answers (bounded)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        reply = try_command(probe, "status", timeout=1.5)
        if reply is not None and reply["ok"]:
            return reply["result"]  # type: ignore[no-any-return]
    raise AssertionError(f"the room did not answer status within {timeout}s")


def fetch_journal(probe: Probe, timeout: float = 30.0) -> list[dict[str, Any]]:
    """The room's whole journal through the ``events`` command (paged, bounded)."""
    out: list[dict[str, Any]] = []
    since = 1
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        reply = try_command(probe, "events", timeout=5.0, since_seq=since, limit=1000)
        if reply is None:
            continue
        assert reply["ok"], reply
        batch = reply["result"]["events"]
        out.extend(batch)
        last = reply["result"]["last_seq"]
        if not batch or batch[-1]["seq"] >= last:
            return out
        since = batch[-1]["seq"] + 1
    raise AssertionError(f"could not fetch the journal within {timeout}s")


# --- journal files ------------------------------------------------------------------------------


def open_readonly(db: Path) -> sqlite3.Connection:
    """The journal opened read-only (the daemon must be stopped or the file a copy)."""
    return sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)


def integrity_check(db: Path) -> str:
    """``PRAGMA integrity_check`` on the file, opened read-only."""
    con = open_readonly(db)
    try:
        return str(con.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        con.close()


def journal_rows(db: Path) -> list[tuple[int, str, str | None, str, str]]:
    """(seq, ts, session_id, type, data) of every journal event, read-only."""
    con = open_readonly(db)
    try:
        return list(con.execute("SELECT seq, ts, session_id, type, data FROM events ORDER BY seq"))
    finally:
        con.close()


def snapshot_journal(db: Path, dest_dir: Path) -> Path:
    """Copy a crashed daemon's journal (file, -wal) aside and open the copy, leaving the
    original exactly as the crash left it for the next start to recover."""
    dest_dir.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal"):
        src = Path(f"{db}{suffix}")
        dst = dest_dir / f"journal.sqlite{suffix}"
        if dst.exists():
            dst.unlink()
        if src.exists():
            shutil.copyfile(src, dst)
    shm = dest_dir / "journal.sqlite-shm"
    if shm.exists():
        shm.unlink()
    return dest_dir / "journal.sqlite"


# --- seq bookkeeping -----------------------------------------------------------------------------


def _canon(event: dict[str, Any]) -> str:
    return json.dumps(event, sort_keys=True, separators=(",", ":"))


@dataclass
class SeqReport:
    """What a subscriber saw, compared with the journal."""

    seen: int = 0  # messages on `events`
    distinct: int = 0  # distinct seqs among them
    duplicates: int = 0  # the same seq seen again (same content)
    conflicts: list[int] = field(default_factory=list)  # one seq, two different events
    missing: list[int] = field(default_factory=list)  # in the journal, never seen
    unknown: list[int] = field(default_factory=list)  # seen, not in the journal
    differs: list[int] = field(default_factory=list)  # seen content != journal content


def compare_with_journal(
    seen: Iterable[dict[str, Any]], journal: Iterable[dict[str, Any]]
) -> SeqReport:
    """Seq-by-seq comparison of what a subscriber saw with the journal's events."""
    report = SeqReport()
    by_seq: dict[int, str] = {}
    for e in seen:
        report.seen += 1
        canon = _canon(e)
        if by_seq.setdefault(e["seq"], canon) != canon:
            report.conflicts.append(e["seq"])
    report.distinct = len(by_seq)
    report.duplicates = report.seen - report.distinct - len(report.conflicts)
    jmap = {e["seq"]: _canon(e) for e in journal}
    report.missing = sorted(set(jmap) - set(by_seq))
    report.unknown = sorted(set(by_seq) - set(jmap))
    report.differs = sorted(s for s in set(jmap) & set(by_seq) if jmap[s] != by_seq[s])
    return report


def assert_seqs_contiguous(seqs: list[int], what: str) -> None:
    """``seqs`` is exactly 1..N, in order, nothing repeated."""
    assert seqs, f"{what}: no events at all"
    expected = list(range(1, len(seqs) + 1))
    if seqs != expected:
        gaps = sorted(set(range(1, max(seqs) + 1)) - set(seqs))
        repeats = sorted({s for s in seqs if seqs.count(s) > 1})
        raise AssertionError(f"{what}: not 1..N (gaps {gaps[:20]}, repeats {repeats[:20]})")


def describe(values: list[float]) -> str:
    """median/max of a list of seconds, for the printed figures."""
    if not values:
        return "n/a"
    return f"median {statistics.median(values):.2f} s, max {max(values):.2f} s (n={len(values)})"
