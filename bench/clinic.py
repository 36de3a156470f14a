"""Clinic scale: N rooms on one broker, one tablet-like subscriber on ``clinic/rooms/+/#``."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import defaultdict
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.clients import (
    Client,
    expect_online,
    into_infusion,
    wait_online,
)
from bench.infra import (
    BenchError,
    Broker,
    Room,
    cpu_percent,
    percentile,
    proc_sample,
)

COMMAND_INTERVAL_S = 5.0
"""Each room gets a ``lights`` command this often during the window (a tablet's activity)."""


class Tablet:
    """What a clinic-wide subscriber sees: latency of every event and sample, seqs per room."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.counting = False
        self.msgs = 0
        self.bytes = 0
        self.event_lat: list[float] = []
        self.vitals_lat: list[float] = []
        self.seqs: dict[str, set[int]] = defaultdict(set)

    def __call__(self, t: float, wall: float, topic: str, payload: bytes) -> None:
        if not self.counting:
            return
        parts = topic.split("/")
        if len(parts) < 4 or parts[3] in ("cmd", "sim", "plan"):
            return
        leaf = "/".join(parts[3:])
        lat: float | None = None
        seq: int | None = None
        if leaf in ("events", "vitals"):
            obj = json.loads(payload)
            lat = wall - datetime.fromisoformat(obj["ts"]).timestamp()
            seq = obj.get("seq")
        with self.lock:
            self.msgs += 1
            self.bytes += len(payload) + len(topic)
            if leaf == "events" and lat is not None:
                self.event_lat.append(lat)
                if seq is not None:
                    self.seqs[parts[2]].add(int(seq))
            elif leaf == "vitals" and lat is not None:
                self.vitals_lat.append(lat)


def _gaps(seqs: dict[str, set[int]]) -> int:
    """Seqs missing inside each room's seen range (the window starts mid-stream)."""
    return sum(max(s) - min(s) + 1 - len(s) for s in seqs.values() if s)


def _one_size(workdir: Path, n: int, window_s: float) -> dict[str, Any]:
    broker = Broker(workdir / "broker")
    broker.start()
    rooms = [Room(workdir / f"room-{i:03d}", broker.port, f"clinic-{i:03d}") for i in range(n)]
    tablet = Tablet()
    sub = Client(broker.port, "tablet", ["clinic/rooms/+/#"], on_message=tablet)
    driver = Client(broker.port, "driver", ["clinic/rooms/+/replies", "clinic/rooms/+/status"])
    started = time.monotonic()
    try:
        watches = [expect_online(driver, room) for room in rooms]
        for room in rooms:
            room.start()
            time.sleep(0.05)
        for room, watch in zip(rooms, watches, strict=True):
            wait_online(driver, room, timeout=60.0 + 3.0 * n, watch=watch)
        for i, room in enumerate(rooms):
            into_infusion(driver, room.root, f"clinic-s{i}")
        setup_s = time.monotonic() - started
        time.sleep(2.0)
        tablet.counting = True
        before = {r.room_id: proc_sample(r.pid) for r in rooms}
        broker_before = proc_sample(broker.pid)
        t0 = time.monotonic()
        step = COMMAND_INTERVAL_S / n
        k = 0
        while (elapsed := time.monotonic() - t0) < window_s:
            room = rooms[k % n]
            level = 0.3 if (k // n) % 2 else 0.35
            body = {"request_id": f"tab-{uuid.uuid4().hex[:12]}", "by": "bench", "level": level}
            driver.publish(f"{room.root}/cmd/lights", json.dumps(body).encode())
            k += 1
            time.sleep(max(0.0, min(step, window_s - elapsed)))
        wall = time.monotonic() - t0
        after = {r.room_id: proc_sample(r.pid) for r in rooms}
        broker_after = proc_sample(broker.pid)
        time.sleep(0.5)
        tablet.counting = False
        for room in rooms:
            if not room.alive():
                raise BenchError(f"{room.room_id} died: {room.tail()}")
    finally:
        sub.close()
        driver.close()
        for room in rooms:
            room.stop()
        broker.stop()
    cpus = [cpu_percent(before[r], after[r], wall) for r in before]
    broker_cpu = cpu_percent(broker_before, broker_after, wall)
    with tablet.lock:
        ev = [x * 1000 for x in tablet.event_lat]
        vi = [x * 1000 for x in tablet.vitals_lat]
        msgs, nbytes, gaps = tablet.msgs, tablet.bytes, _gaps(tablet.seqs)
    return {
        "rooms": n,
        "window_s": round(wall, 1),
        "setup_s": round(setup_s, 1),
        "room_cpu_pct_mean": round(sum(cpus) / n, 3),
        "room_cpu_pct_max": round(max(cpus), 3),
        "room_rss_mb_mean": round(sum(a.rss_kb for a in after.values()) / n / 1024, 1),
        "broker_cpu_pct": round(broker_cpu, 3),
        "broker_cpu_pct_per_room": round(broker_cpu / n, 4),
        "broker_rss_mb": round(broker_after.rss_kb / 1024, 1),
        "subscriber_msgs_per_s": round(msgs / wall, 1),
        "subscriber_bytes_per_s": round(nbytes / wall, 1),
        "msgs_per_s_per_room": round(msgs / wall / n, 2),
        "bytes_per_s_per_room": round(nbytes / wall / n, 1),
        "events": len(ev),
        "event_latency_ms": _lat(ev),
        "vitals_latency_ms": _lat(vi),
        "event_seq_gaps": gaps,
    }


def _lat(ms: list[float]) -> dict[str, float | int | None]:
    if not ms:
        return {"n": 0, "p50": None, "p99": None, "max": None}
    return {
        "n": len(ms),
        "p50": round(percentile(ms, 50), 2),
        "p99": round(percentile(ms, 99), 2),
        "max": round(max(ms), 2),
    }


def bench_clinic(workdir: Path, sizes: list[int], window_s: float) -> dict[str, Any]:
    """The clinic figures for each room count in ``sizes``; the smallest is the reference."""
    runs = [_one_size(workdir / f"n{n}", n, window_s) for n in sizes]
    return {
        "sizes": sizes,
        "runs": runs,
        "reference": {"single_room": runs[0]} if runs else {},
        "note": "each room: roomd --simulate at time scale 1, in an infusion, one lights "
        f"command per {COMMAND_INTERVAL_S:g} s; latency = subscriber receive time − the "
        "message's ts (the room's clock; ts is cut to the millisecond, so it reads up to 1 ms "
        "high)",
    }
