"""The clinic archive at a year of data: ingest rate, ``course`` query latency, memory.

A year of 30 rooms is generated (``bench/archive_year.py``), written straight into an
archive database with each ended session's summary kept (as a running archive keeps them
when idle), then:

- **catch-up ingest**: a room's backlog through ``Store.add_events`` in the archive's page
  size, in-process;
- **live ingest**: a real clinicd process drains a burst of events from the broker (queued
  for its persistent session while it was stopped with SIGSTOP, then SIGCONT): taken as they
  come, one transaction per batch, acknowledged after the commit; timed from the first event
  stored to the last. Reference: a bare ``INSERT`` in one transaction per row on the same disk
  (what one transaction per event would cost);
- **course**: the same clinicd on the loaded database, asked ``course`` over MQTT for
  random patients (reply received − request sent); reference: the same queries through
  ``Archive.course`` in-process, and a bare paho echo round trip;
- **RSS** of that clinicd process after the queries, beside a bare paho process.
"""

from __future__ import annotations

import json
import random
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.archive_year import SESSIONS_PER_DAY, room_year, year_fixture
from bench.clients import Client, reply_match
from bench.infra import (
    BenchError,
    Broker,
    Matcher,
    bare_paho_script,
    echo_script,
    proc_sample,
    python_argv,
    reap,
    spawn,
    summary_ms,
)
from mqtt_bridge.clinicd.config import CourseSection
from mqtt_bridge.clinicd.sender import ENQUEUE_PER_TURN
from mqtt_bridge.clinicd.service import BATCH_MAX
from mqtt_bridge.clinicd.store import Store
from mqtt_bridge.clinicd.verbs import Archive

PAGE = 500
"""Events per ``add_events`` call: the archive's default page when it fetches from a room."""


def _catch_up(store: Store, n: int) -> float:
    """Events/s through ``Store.add_events`` in pages of ``PAGE`` (a room's backlog fetched
    after an outage), into the loaded archive, for a new room."""
    events = [e for s in room_year("room-catchup", 40) for e in s][:n]
    t0 = time.perf_counter()
    for i in range(0, len(events), PAGE):
        store.add_events("room-catchup", events[i : i + PAGE])
    rate = len(events) / (time.perf_counter() - t0)
    for sid in {e.session_id for e in events if e.session_id}:
        store.mark_notes(sid, "fetched")  # the bench's rooms have no notes to give
    return rate


def _raw_insert(path: Path, n: int) -> float:
    """The reference: rows/s of a bare INSERT, one FULL-synced transaction per row."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute(
        "CREATE TABLE t (room TEXT, seq INTEGER, data TEXT, PRIMARY KEY (room, seq)) WITHOUT ROWID"
    )
    t0 = time.perf_counter()
    for i in range(n):
        db.execute("BEGIN IMMEDIATE")
        db.execute("INSERT INTO t VALUES (?, ?, ?)", ("r", i, '{"sys": 120, "dia": 80}'))
        db.execute("COMMIT")
    rate = n / (time.perf_counter() - t0)
    db.close()
    return rate


ECHO_REQ, ECHO_REP = "bench/echo/req", "bench/echo/rep"
LIVE_ROOM = "room-live"
LIVE_TOPIC = f"clinic/rooms/{LIVE_ROOM}/events"


def _is(topic: str, payload: bytes) -> Matcher:
    """A matcher for exactly this message."""
    return lambda t, p: t == topic and p == payload


def _live_events(n: int) -> list[bytes]:
    """``n`` events of a new room, as it publishes them."""
    out: list[bytes] = []
    for session in room_year(LIVE_ROOM, 10 * 365):  # generated lazily: only what is taken
        out += [e.to_json() for e in session]
        if len(out) >= n:
            return out[:n]
    raise BenchError(f"cannot generate {n} live events")


def _stored(db: sqlite3.Connection, what: str = "max(seq)") -> int:
    """The live room's highest stored seq (a primary-key lookup: cheap to poll beside the
    archive; it arrives in seq order), or another aggregate of its events."""
    row = db.execute(f"SELECT {what} FROM events WHERE room_id = ?", (LIVE_ROOM,)).fetchone()
    return int(row[0] or 0)


def _drain_burst(archive: subprocess.Popen[bytes], client: Client, db: Path, n: int) -> float:
    """Events/s of a running clinicd storing a burst of ``n`` events queued at the broker
    (published while it was stopped): first event stored → last event stored."""
    _burst(archive, client, LIVE_TOPIC, n)
    reader = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        deadline = time.monotonic() + 120.0
        first: tuple[float, int] | None = None
        while (top := _stored(reader)) < n:
            now = time.perf_counter()
            if first is None and top:
                first = (now, _stored(reader, "count(*)"))
            if time.monotonic() > deadline:
                raise BenchError(f"clinicd stored up to seq {top} of {n} live events in 120 s")
            time.sleep(0.01)
        end = time.perf_counter()
        if (count := _stored(reader, "count(*)")) != n:
            raise BenchError(f"clinicd stored {count} of {n} live events")
    finally:
        reader.close()
    if first is None or end <= first[0]:
        raise BenchError("the burst was stored before it could be timed: raise ingest_n")
    return (n - first[1]) / (end - first[0])


DRAIN_TOPIC = "bench/drain/events"


def drain_script(port: int, n: int) -> str:
    """A ``python -c`` program: a bare paho client (MQTT 5, persistent session, the same
    Receive Maximum as clinicd) that acknowledges each message on arrival and prints
    ``subscribed``, then the rate of ``n`` messages, first → last."""
    return (
        "import os, time, paho.mqtt.client as m\n"
        "from paho.mqtt.properties import Properties\n"
        "from paho.mqtt.packettypes import PacketTypes\n"
        "c = m.Client(m.CallbackAPIVersion.VERSION2, client_id='bench-drain', "
        "protocol=m.MQTTv5, manual_ack=True)\n"
        "got = []\n"
        "def on_message(c, u, msg):\n"
        "    got.append(time.perf_counter()); c.ack(msg.mid, msg.qos)\n"
        f"    if len(got) == {n}:\n"
        f"        print('rate', ({n} - 1) / (got[-1] - got[0]), flush=True); os._exit(0)\n"
        "c.on_message = on_message\n"
        f"c.on_subscribe = lambda *a: print('subscribed', flush=True)\n"
        f"c.on_connect = lambda c, *a: c.subscribe('{DRAIN_TOPIC}', 1)\n"
        "p = Properties(PacketTypes.CONNECT)\n"
        f"p.SessionExpiryInterval = 600; p.ReceiveMaximum = {BATCH_MAX}\n"
        f"c.connect('127.0.0.1', {port}, clean_start=False, properties=p); c.loop_forever()\n"
    )


def _burst(proc: subprocess.Popen[bytes], client: Client, topic: str, n: int) -> None:
    """Publish ``n`` live events on ``topic`` while ``proc`` is stopped (the broker queues
    them for its session), then let it go on."""
    payloads = _live_events(n)
    proc.send_signal(signal.SIGSTOP)
    try:
        infos = [client.client.publish(topic, p, qos=1) for p in payloads]
        for info in infos:
            info.wait_for_publish(60.0)
    finally:
        proc.send_signal(signal.SIGCONT)


def _bare_drain(workdir: Path, port: int, client: Client, n: int) -> float:
    """The reference: events/s of a bare paho client draining the same burst (the ceiling
    of a Python paho consumer on this machine now)."""
    out = workdir / "drain.out"
    proc = spawn(python_argv(drain_script(port, n)), out)
    try:
        deadline = time.monotonic() + 30.0
        while "subscribed" not in out.read_text():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise BenchError(f"the drain client did not subscribe: {out.read_text()}")
            time.sleep(0.01)
        _burst(proc, client, DRAIN_TOPIC, n)
        proc.wait(120.0)
    finally:
        reap(proc)
    line = next((x for x in out.read_text().splitlines() if x.startswith("rate ")), None)
    if line is None:
        raise BenchError(f"the drain client gave no rate: {out.read_text()[-500:]}")
    return float(line.split()[1])


def _summaries_kept(db: Path, timeout: float) -> None:
    """Wait (bounded) for the idle clinicd to keep the summaries of the live room's sessions."""
    reader = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    deadline = time.monotonic() + timeout
    try:
        while reader.execute(
            "SELECT count(*) FROM sessions s WHERE ended_at IS NOT NULL AND NOT EXISTS "
            "(SELECT 1 FROM summaries m WHERE m.session_id = s.session_id)"
        ).fetchone()[0]:
            if time.monotonic() > deadline:
                raise BenchError(f"clinicd kept no summaries of the live room in {timeout} s")
            time.sleep(0.05)
    finally:
        reader.close()


def _over_mqtt(
    workdir: Path, db: Path, patients: list[str], queries: int, live_n: int
) -> dict[str, Any]:
    """A clinicd on ``db``: a burst drained live, then ``course`` answered over MQTT;
    rates, latencies, its RSS, references."""
    broker = Broker(workdir / "broker")
    broker.start()
    conf = workdir / "clinicd.toml"
    conf.write_text(
        f'[mqtt]\nhost = "127.0.0.1"\nport = {broker.port}\nkeepalive_s = 60\n'
        f'[archive]\ndb = "{db}"\nresync_s = 3600\n'
    )
    archive = spawn(
        [sys.executable, "-m", "mqtt_bridge.clinicd", "--config", str(conf),
         "--data-dir", str(workdir)],
        workdir / "clinicd.log",
    )  # fmt: skip
    echo = spawn(
        python_argv(echo_script(broker.port, ECHO_REQ, ECHO_REP)),
        workdir / "echo.log",
    )
    bare = spawn(python_argv(bare_paho_script(broker.port, 600)), workdir / "bare.log")
    client = Client(
        broker.port,
        "archive-q",
        ["clinic/archive/replies", "clinic/archive/status", ECHO_REP],
    )
    # Nagle off on the bench's side too, as roomd and clinicd do on theirs.
    sock = client.client.socket()
    if isinstance(sock, socket.socket):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    lat: list[float] = []
    echo_lat: list[float] = []
    try:
        client.expect(_is("clinic/archive/status", b"online")).wait(60.0, "clinicd online")
        live = _drain_burst(archive, client, db, live_n)
        drain = _bare_drain(workdir, broker.port, client, live_n)
        _summaries_kept(db, 120.0)
        rng = random.Random(7)
        for i in range(queries + 5):
            rid = uuid.uuid4().hex[:12]
            w = client.expect(reply_match("clinic/archive", rid))
            body = {"request_id": rid, "by": "bench", "patient_ref": rng.choice(patients)}
            t0 = time.perf_counter()
            client.publish("clinic/archive/cmd/course", json.dumps(body).encode())
            t1, reply = w.wait(30.0, "the course reply")
            if not reply.get("ok"):
                raise BenchError(f"course failed: {reply.get('error')}")
            e = client.expect(_is(ECHO_REP, rid.encode()))
            t2 = time.perf_counter()
            client.publish(ECHO_REQ, rid.encode())
            t3, _ = e.wait(10.0, "the echo")
            if i >= 5:
                lat.append(t1 - t0)
                echo_lat.append(t3 - t2)
        rss = proc_sample(archive.pid).rss_kb
        bare_rss = proc_sample(bare.pid).rss_kb
    finally:
        client.close()
        for p in (archive, echo, bare):
            reap(p)
        broker.stop()
    return {
        "live": live,
        "bare_drain": drain,
        "mqtt": summary_ms(lat),
        "echo": summary_ms(echo_lat),
        "clinicd_rss_mb": round(rss / 1024, 1),
        "bare_paho_rss_mb": round(bare_rss / 1024, 1),
    }


def _timed_ms(fn: Callable[[], object], n: int = 20) -> float:
    """The median of ``n`` calls of ``fn``, in ms."""
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(summary_ms(times)["p50_ms"])


def _hl7_scan(db: Path) -> dict[str, Any]:
    """What clinicd's worker pays on every turn when HL7 is configured: the look for ended
    sessions whose message is still to queue — with a year's backlog (HL7 newly configured:
    one turn's share), and once all are queued; beside a bare count of the sessions."""
    store = Store(db)
    try:
        backlog = len(store.sessions_to_send())
        first_turn = _timed_ms(lambda: store.sessions_to_send(ENQUEUE_PER_TURN))
        with store.batch():
            for room_id, session_id in store.sessions_to_send():
                store.enqueue_message(session_id, room_id, "MSH|bench", datetime.now(UTC))
        steady = _timed_ms(lambda: store.sessions_to_send(ENQUEUE_PER_TURN))
    finally:
        store.close()
    reader = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        count = _timed_ms(lambda: reader.execute("SELECT count(*) FROM sessions").fetchone())
    finally:
        reader.close()
    return {
        "scan": {"backlog": backlog, "first_turn_ms": first_turn, "all_queued_ms": steady},
        "count": count,
    }


def bench_archive(
    workdir: Path,
    rooms: int,
    days: int,
    queries: int,
    ingest_n: int,
    log: Callable[[str], None] = lambda _m: None,
) -> dict[str, Any]:
    """The archive's figures at ``rooms`` rooms × ``days`` days of generated events."""
    workdir.mkdir(parents=True, exist_ok=True)
    fixture, patients = year_fixture(rooms, days, log)
    db = workdir / "archive.sqlite"
    shutil.copyfile(fixture, db)  # the runs below write to it
    total = (
        sqlite3.connect(f"file:{fixture}?mode=ro", uri=True)
        .execute("SELECT count(*) FROM events")
        .fetchone()[0]
    )
    store = Store(db)
    try:
        catch_up = _catch_up(store, ingest_n)
        archive = Archive(store, CourseSection())
        rng = random.Random(7)
        direct: list[float] = []
        for _ in range(queries):
            t0 = time.perf_counter()
            archive.course(rng.choice(patients))
            direct.append(time.perf_counter() - t0)
    finally:
        store.close()
    raw = _raw_insert(workdir / "raw.sqlite", max(50, ingest_n // 20))
    over = _over_mqtt(workdir / "clinicd", db, patients, queries, ingest_n)
    hl7 = _hl7_scan(db)
    return {
        "rooms": rooms,
        "days": days,
        "events": total,
        "patients": len(patients),
        "db_mb": round(db.stat().st_size / 2**20, 1),
        "catch_up_events_per_s": round(catch_up),
        "live_events_per_s": round(over["live"]),
        "course_ms": over["mqtt"],
        "course_direct_ms": summary_ms(direct),
        "clinicd_rss_mb": over["clinicd_rss_mb"],
        "hl7_scan_ms": hl7["scan"],
        "reference": {
            "sessions_count_ms": hl7["count"],
            "raw_insert_per_txn_per_s": round(raw),
            "bare_paho_drain_per_s": round(over["bare_drain"]),
            "echo_ms": over["echo"],
            "bare_paho_rss_mb": over["bare_paho_rss_mb"],
        },
        "note": f"{SESSIONS_PER_DAY} sessions a weekday per room, ~150 events each, summaries "
        f"kept; catch-up = Store.add_events in pages of {PAGE} (a room's backlog after an "
        f"outage); live = a real clinicd draining {ingest_n} events queued at the broker (one "
        "FULL-synced transaction per batch, PUBACK after the commit), first → last stored; "
        "course over MQTT = request published → reply received, the same clinicd",
    }
