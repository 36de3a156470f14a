"""Recovery: ``kill -9`` mid-infusion, and a broker outage with the session running."""

from __future__ import annotations

import json
import statistics
import threading
import time
from pathlib import Path
from typing import Any

from bench.clients import (
    Client,
    event_match,
    expect_online,
    fetch_journal,
    into_infusion,
    ok,
    wait_online,
)
from bench.infra import (
    ALARM_TOML,
    BenchError,
    Broker,
    OximeterLine,
    Room,
)


class SeqLog:
    """Every event seq a subscriber received, with its first arrival (perf_counter)."""

    def __init__(self, root: str) -> None:
        self.topic = f"{root}/events"
        self.lock = threading.Lock()
        self.first: dict[int, float] = {}
        self.received = 0

    def __call__(self, t: float, wall: float, topic: str, payload: bytes) -> None:
        if topic != self.topic:
            return
        seq = int(json.loads(payload)["seq"])
        with self.lock:
            self.received += 1
            self.first.setdefault(seq, t)

    def seqs(self) -> set[int]:
        """The distinct seqs seen so far."""
        with self.lock:
            return set(self.first)

    def has_all(self, lo: int, hi: int) -> bool:
        """Whether every seq in lo..hi has arrived."""
        with self.lock:
            return all(s in self.first for s in range(lo, hi + 1))


def lost_events(client: Client, root: str, log: SeqLog, since: int) -> tuple[int, int, int]:
    """(journal events from ``since``, those the subscriber never received, duplicates seen)."""
    journal, _ = fetch_journal(client, root, since)
    seen = log.seqs()
    missing = [e["seq"] for e in journal if e["seq"] not in seen]
    with log.lock:
        dups = log.received - len(log.first)
    return len(journal), len(missing), dups


def bench_kill9(workdir: Path, runs: int) -> dict[str, Any]:
    """``kill -9`` mid-infusion, restart: spawn → ``session_resumed`` at a subscriber."""
    broker = Broker(workdir / "broker")
    broker.start()
    room = Room(workdir / "room", broker.port, "bench-kill", time_scale=1.0)
    log = SeqLog(room.root)
    client = Client(
        broker.port,
        "kill",
        [f"{room.root}/events", f"{room.root}/replies", f"{room.root}/status"],
        on_message=log,
    )
    from_spawn: list[float] = []
    from_kill: list[float] = []
    downtimes: list[float] = []
    try:
        online = expect_online(client, room)
        room.start()
        wait_online(client, room, watch=online)
        into_infusion(client, room.root, "kill-s1")
        last_resumed = 0
        for _ in range(runs):
            time.sleep(1.0)  # a little infusion between crashes

            def newer(e: dict[str, Any], floor: int = last_resumed) -> bool:
                return int(e["seq"]) > floor

            watch = client.expect(event_match(room.root, "session_resumed", newer))
            t_kill = time.perf_counter()
            room.kill9()
            spawned = room.start()
            t1, resumed = watch.wait(30.0, "session_resumed")
            from_spawn.append(t1 - spawned)
            from_kill.append(t1 - t_kill)
            downtimes.append(float(resumed["data"]["downtime_s"]))
            last_resumed = int(resumed["seq"])
            if resumed["data"].get("phase") != "infusion":
                raise BenchError(f"resumed in {resumed['data'].get('phase')}, not infusion")
        status = ok(client, room.root, "status")
        if not status["infusion"]["running"]:
            raise BenchError("the infusion is not running after the restarts")
        time.sleep(0.5)
        journal_n, lost, dups = lost_events(client, room.root, log, 1)
    finally:
        client.close()
        room.stop()
        broker.stop()
    return {
        "runs": runs,
        "resume_s_median": round(statistics.median(from_spawn), 3),
        "resume_s_max": round(max(from_spawn), 3),
        "kill_to_resumed_s_median": round(statistics.median(from_kill), 3),
        "downtime_s_reported_median": round(statistics.median(downtimes), 3),
        "journal_events": journal_n,
        "lost_events": lost,
        "duplicates_received": dups,
        "reference": {"broker_hop": "see call/roundtrip floors (sub-ms)"},
        "note": "spawn of the new process → its session_resumed event at a subscriber",
    }


def bench_outage(workdir: Path, outage_s: float, inject_hz: float) -> dict[str, Any]:
    """Broker down ``outage_s`` with the session running and alarms flapping; then drain."""
    broker = Broker(workdir / "broker")
    broker.start()
    room = Room(workdir / "room", broker.port, "bench-out", time_scale=1.0, extra_toml=ALARM_TOML)
    log = SeqLog(room.root)
    topics = [f"{room.root}/events", f"{room.root}/replies", f"{room.root}/status"]
    client = Client(broker.port, "out1", topics, on_message=log)
    line: OximeterLine | None = None
    injected = 0
    try:
        online = expect_online(client, room)
        room.start()
        wait_online(client, room, watch=online)
        into_infusion(client, room.root, "out-s1")
        line = OximeterLine(room.pid)
        time.sleep(1.0)
        before = max(log.seqs())
        client.close()
        broker.stop()
        # While the broker is away the alarm flaps (SpO2 85 / 97 lines on the serial line):
        # every flip is an event journaled with no broker to take it.
        period = 1.0 / inject_hz
        t_end = time.monotonic() + outage_s
        low = True
        while time.monotonic() < t_end:
            line.write(85 if low else 97)
            low = not low
            injected += 1
            time.sleep(period)
        line.write(97)
        time.sleep(0.2)
        t_up = broker.start()
        client = Client(broker.port, "out2", topics, on_message=log)
        online = client.expect(lambda t, p: t == f"{room.root}/status" and p == b"online")
        restored = client.expect(event_match(room.root, "link_restored"))
        t_online, _ = online.wait(60.0, "the room back online")
        _, ev = restored.wait(120.0, "link_restored")
        queued = int(ev["data"]["queued"])
        last_queued = int(ev["seq"]) - 1
        deadline = time.monotonic() + 120
        while not log.has_all(before + 1, last_queued):
            if time.monotonic() > deadline:
                raise BenchError("the queued events did not all arrive within 120 s")
            time.sleep(0.05)
        with log.lock:
            t_last = max(log.first[s] for s in range(before + 1, last_queued + 1))
        time.sleep(1.0)
        journal_n, lost, dups = lost_events(client, room.root, log, 1)
    finally:
        if line is not None:
            line.close()
        client.close()
        room.stop()
        broker.stop()
    drain = t_last - t_online
    return {
        "outage_s": outage_s,
        "frames_injected": injected,
        "queued": queued,
        "reconnect_s": round(t_online - t_up, 3),
        "broker_up_to_last_queued_s": round(t_last - t_up, 3),
        "drain_s": round(drain, 3),
        "drain_events_per_s": round(queued / drain, 1) if drain > 0 else None,
        "journal_events": journal_n,
        "lost_events": lost,
        "duplicates_received": dups,
        "reference": {"paho_reconnect_backoff_s": "1 → 10 (MqttLink.reconnect_delay_set)"},
        "note": "reconnect = broker accepting → the room's 'online'; drain = 'online' → the "
        "last queued event at the subscriber",
    }
