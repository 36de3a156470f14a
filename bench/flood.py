"""An emergency behind a flood of bad commands (issue 15): how late is its reply?

One room, one broker. Each cycle first times an ``emergency`` alone (the same-run reference),
then publishes ``FLOOD`` bad commands (unreadable, invalid, unknown verbs, as fast as paho
sends them) and an ``emergency`` right behind them, and times that emergency's reply from its
publish. The room answers refusals up to a budget per sender and second and counts the rest;
the journal's ``command_rejected`` events (coalesced) and the replies the flood got are counted
too.
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

from bench.clients import Client, event_match, reply_match, wait_online
from bench.infra import BenchError, Broker, Room, summary_ms

FLOOD = 3000
"""Bad commands in one burst (the issue's figure)."""
BAD = (b"not json", b"[]", b'{"request_id": "f", "by": "x", "surprise": 1}')


def _emergency(pub: Client, sub: Client, root: str, timeout: float) -> float:
    """Publish an emergency; seconds until its reply arrived."""
    rid = f"bench-em-{uuid.uuid4().hex[:12]}"
    watch = sub.expect(reply_match(root, rid))
    payload = json.dumps({"request_id": rid, "by": "bench", "reason": "bench"}).encode()
    t0 = time.perf_counter()
    pub.publish(f"{root}/cmd/emergency", payload)
    try:
        t1, _ = watch.wait(timeout, "the emergency's reply")
    finally:
        sub.forget(watch)
    return t1 - t0


def bench_flood(workdir: Path, cycles: int, flood: int = FLOOD) -> dict[str, Any]:
    """``cycles`` × (an emergency alone, then one behind ``flood`` bad commands)."""
    broker = Broker(workdir / "broker")
    broker.start()
    room = Room(workdir / "room", broker.port, "bench-flood")
    rejected: list[dict[str, Any]] = []
    root = room.root
    sub = Client(broker.port, "flood-sub", [f"{root}/replies", f"{root}/events", f"{root}/status"])
    sub_hook = event_match(root, "command_rejected")

    refusals = [0]  # replies the flood got (its commands' request ids are "" or "f")

    def count(t: float, wall: float, topic: str, payload: bytes) -> None:
        if (e := sub_hook(topic, payload)) is not None:
            rejected.append(e)
        elif topic == f"{root}/replies" and json.loads(payload)["request_id"] in ("", "f"):
            refusals[0] += 1

    counter = Client(
        broker.port, "flood-count", [f"{root}/events", f"{root}/replies"], on_message=count
    )
    pub = Client(broker.port, "flood-pub")
    flooder = Client(broker.port, "flood-bad")
    try:
        room.start()
        wait_online(sub, room)
        alone: list[float] = []
        behind: list[float] = []
        for _ in range(cycles):
            alone.append(_emergency(pub, sub, root, 10.0))
            before = len(rejected)
            for i in range(flood):
                verb = "fly" if i % 4 == 3 else "status"
                flooder.publish(f"{root}/cmd/{verb}", BAD[i % len(BAD)], qos=0)
            behind.append(_emergency(pub, sub, root, 60.0))
            time.sleep(1.5)  # the coalescing interval closes; the next command flushes it
            alone.append(_emergency(pub, sub, root, 10.0))
            if len(rejected) - before > flood // 10:
                raise BenchError(f"{len(rejected) - before} command_rejected for {flood} refusals")
        return {
            "flood": flood,
            "cycles": cycles,
            "behind_flood_s_max": round(max(behind), 3),
            "behind_flood_ms": summary_ms(behind),
            "reference": {"emergency_alone_ms": summary_ms(alone)},
            "command_rejected_events": len(rejected),
            "flood_replies": refusals[0],
            "path": "bench publishes N bad commands (QoS 0) then cmd/emergency → its reply",
        }
    finally:
        for c in (sub, counter, pub, flooder):
            c.close()
        room.stop()
        broker.stop()
