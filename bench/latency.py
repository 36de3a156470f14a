"""Call, alarm and command latency, each beside the raw paho floor measured in the same loop.

Every cycle first times two bare-paho references on the same broker with the same two
clients, then the room's figure, so all three see the same machine load:

- **floor (1 hop)**: client A publishes (QoS 1), client B receives — one broker hop;
- **echo (2 hops)**: A publishes, a bare paho process republishes, B receives — what any
  request/response through the broker costs (the fair reference for a command round trip,
  and for a ``sim/<action>`` that goes through the broker to the room and back).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from types import TracebackType
from typing import Any

from bench.clients import (
    Client,
    command,
    event_match,
    expect_online,
    reply_match,
    start_session,
    wait_online,
)
from bench.infra import (
    ALARM_TOML,
    BenchError,
    Broker,
    OximeterLine,
    Room,
    echo_script,
    python_argv,
    reap,
    spawn,
    summary_ms,
)

FLOOR_TOPIC = "bench/floor"
ECHO_REQ = "bench/echo/req"
ECHO_REP = "bench/echo/rep"
WARMUP = 5
"""Cycles run before counting (first connections, caches, the JIT-less interpreter's warm-up)."""


class LatencyRig(AbstractContextManager["LatencyRig"]):
    """One broker, the echo process, the two measuring clients, and the rooms (started lazily)."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.broker = Broker(workdir / "broker")
        self.rooms: dict[str, Room] = {}
        self._closers: list[Callable[[], None]] = []
        self.broker.start()
        self._closers.append(self.broker.stop)
        echo = spawn(
            python_argv(echo_script(self.broker.port, ECHO_REQ, ECHO_REP)), workdir / "echo.log"
        )
        self._closers.append(lambda: reap(echo))
        self.sub = Client(self.broker.port, "sub", [FLOOR_TOPIC, ECHO_REP])
        self._closers.append(self.sub.close)
        self.pub = Client(self.broker.port, "pub")
        self._closers.append(self.pub.close)
        deadline = time.monotonic() + 20
        while True:  # the echo process is ready when it answers
            try:
                self.echo()
                break
            except BenchError:
                if time.monotonic() > deadline:
                    raise
        self.floor()

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        for room in self.rooms.values():
            room.stop()
        for close in reversed(self._closers):
            close()

    # --- the references -------------------------------------------------------------------

    def _ping(self, req: str, rep: str) -> float:
        token = uuid.uuid4().hex.encode()
        w = self.sub.expect(lambda t, p: t == rep and p == token)
        t0 = time.perf_counter()
        self.pub.publish(req, token)
        try:
            t1, _ = w.wait(2.0, f"a ping on {rep}")
        finally:
            self.sub.forget(w)
        return t1 - t0

    def floor(self) -> float:
        """One raw paho publish → receive through the broker (seconds)."""
        return self._ping(FLOOR_TOPIC, FLOOR_TOPIC)

    def echo(self) -> float:
        """One raw paho request → bare paho echo → receive (seconds)."""
        return self._ping(ECHO_REQ, ECHO_REP)

    # --- rooms ----------------------------------------------------------------------------

    def room(self, name: str, time_scale: float) -> Room:
        """A ``roomd --simulate`` in an open session (alarms count), started on first use."""
        if name in self.rooms:
            return self.rooms[name]
        room = Room(
            self.workdir / name,
            self.broker.port,
            name,
            time_scale=time_scale,
            extra_toml=ALARM_TOML,
        )
        self.rooms[name] = room
        self.sub.client.subscribe(
            [(f"{room.root}/events", 1), (f"{room.root}/replies", 1), (f"{room.root}/status", 1)]
        )
        time.sleep(0.2)  # the SUBACK
        online = expect_online(self.sub, room)
        room.start()
        wait_online(self.sub, room, watch=online)
        start_session_via(self, room, f"{name}-s1")
        return room


def start_session_via(rig: LatencyRig, room: Room, session_id: str) -> None:
    """Start a session with the sub client (it sees the replies)."""
    start_session(rig.sub, room.root, session_id)


def _references(rig: LatencyRig, floor: list[float], echo: list[float]) -> None:
    floor.append(rig.floor())
    echo.append(rig.echo())


def _report(
    figure: list[float], floor: list[float], echo: list[float], extra: dict[str, Any]
) -> dict[str, Any]:
    fig = summary_ms(figure)
    ref = summary_ms(floor)
    ref2 = summary_ms(echo)
    return {
        **fig,
        **extra,
        "reference": {"raw_paho_floor": ref, "raw_paho_echo": ref2},
        "overhead_p50_ms": round(fig["p50_ms"] - ref["p50_ms"], 3),
        "overhead_p99_ms": round(fig["p99_ms"] - ref["p99_ms"], 3),
        "ratio_p50": round(fig["p50_ms"] / ref["p50_ms"], 2) if ref["p50_ms"] else None,
        "ratio_p99": round(fig["p99_ms"] / ref["p99_ms"], 2) if ref["p99_ms"] else None,
        "overhead_vs_echo_p50_ms": round(fig["p50_ms"] - ref2["p50_ms"], 3),
        "overhead_vs_echo_p99_ms": round(fig["p99_ms"] - ref2["p99_ms"], 3),
    }


# --- 1. call ------------------------------------------------------------------------------


def bench_call(rig: LatencyRig, n: int) -> dict[str, Any]:
    """``sim/press_call`` published → ``call_placed`` received, over ``n`` presses."""
    room = rig.room("bench-a", 1.0)
    root = room.root
    lat: list[float] = []
    floor: list[float] = []
    echo: list[float] = []
    released_by = 0.0
    for i in range(n + WARMUP):
        _references(rig, floor, echo)
        # The button confirms a release only after its 30 ms debounce: a press sooner is
        # chatter of the same press, and no call. Wait from when the room is known to have
        # handled the release, not from when it was sent (a room still committing the last
        # call_placed handles it late, and the press then fell inside the debounce).
        time.sleep(max(0.0, released_by + 0.045 - time.perf_counter()))
        w = rig.sub.expect(event_match(root, "call_placed"))
        t0 = time.perf_counter()
        rig.pub.publish(f"{root}/sim/press_call", b"")
        t1, _ = w.wait(10.0, "call_placed")
        if i >= WARMUP:
            lat.append(t1 - t0)
        cleared = rig.sub.expect(event_match(root, "call_cleared"))
        # One connection for the release and the clear: the room takes them in that order,
        # so once call_cleared is out the release has been handled.
        rig.sub.publish(f"{root}/sim/release_call", b"")
        reply = command(rig.sub, root, "call_clear")
        if not reply.get("ok"):
            raise BenchError(f"call_clear: {reply}")
        released_by, _ = cleared.wait(10.0, "call_cleared")
    del floor[:WARMUP], echo[:WARMUP]
    return _report(
        lat,
        floor,
        echo,
        {
            "path": "bench publish sim/press_call → broker → roomd (mock pin, core, journal "
            "commit) → broker → subscriber: two broker hops",
            "time_scale": 1.0,
        },
    )


# --- 2. alarm -----------------------------------------------------------------------------


def _alarm_cycle(
    rig: LatencyRig,
    room: Room,
    cross: Callable[[], None],
    recover: Callable[[], None],
) -> float:
    root = room.root

    def critical(e: dict[str, Any]) -> bool:
        return bool(e["data"]["alarm"]["code"] == "spo2_critical")

    w = rig.sub.expect(event_match(root, "alarm_raised", critical))
    t0 = time.perf_counter()
    cross()
    t1, raised = w.wait(10.0, "alarm_raised spo2_critical")
    alarm_id = raised["data"]["alarm"]["id"]

    def same(e: dict[str, Any]) -> bool:
        return bool(e["data"]["alarm"]["id"] == alarm_id)

    latched = rig.sub.expect(event_match(root, "alarm_latched", same))
    recover()
    latched.wait(10.0, "alarm_latched")
    cleared = rig.sub.expect(event_match(root, "alarm_cleared", same))
    reply = command(rig.sub, root, "alarm_ack", alarm_id=alarm_id)
    if not reply.get("ok"):
        raise BenchError(f"alarm_ack: {reply}")
    cleared.wait(10.0, "alarm_cleared")
    return t1 - t0


def bench_alarm_sim(rig: LatencyRig, n: int) -> dict[str, Any]:
    """``sim/incident desaturation`` published → ``alarm_raised`` received (``n`` crossings)."""
    room = rig.room("bench-b", 1.0)
    root = room.root
    desat = json.dumps({"kind": "desaturation"}).encode()
    recover = json.dumps({"kind": "recover"}).encode()
    lat: list[float] = []
    floor: list[float] = []
    echo: list[float] = []
    for i in range(n + WARMUP):
        _references(rig, floor, echo)
        took = _alarm_cycle(
            rig,
            room,
            lambda: rig.pub.publish(f"{root}/sim/incident", desat),
            lambda: rig.pub.publish(f"{root}/sim/incident", recover),
        )
        if i >= WARMUP:
            lat.append(took)
    del floor[:WARMUP], echo[:WARMUP]
    return _report(
        lat,
        floor,
        echo,
        {
            "path": "bench publish sim/incident → broker → roomd (patient state; the simulated "
            "monitor writes the incident's sample at once) → pty → driver → core (journal "
            "commit) → broker → subscriber: two broker hops",
            "time_scale": 1.0,
        },
    )


def bench_alarm_pty(rig: LatencyRig, n: int) -> dict[str, Any]:
    """A crossing sample written on the oximeter's serial line → ``alarm_raised`` received."""
    room = rig.room("bench-a", 1.0)
    line = OximeterLine(room.pid)
    lat: list[float] = []
    floor: list[float] = []
    echo: list[float] = []
    try:
        for i in range(n + WARMUP):
            _references(rig, floor, echo)
            took = _alarm_cycle(rig, room, lambda: line.write(85), lambda: line.write(97))
            if i >= WARMUP:
                lat.append(took)
    finally:
        line.close()
    del floor[:WARMUP], echo[:WARMUP]
    return _report(
        lat,
        floor,
        echo,
        {
            "path": "Masimo line written on the oximeter pty (pidfd_getfd of the simulator's "
            "master) → real driver → core (alarm engine, journal commit) → broker → "
            "subscriber: one broker hop, like the floor",
            "time_scale": 1.0,
        },
    )


# --- 3. command round trip ----------------------------------------------------------------


def bench_roundtrip(rig: LatencyRig, n: int) -> dict[str, Any]:
    """``cmd/status`` published → its reply received, over ``n`` commands."""
    room = rig.room("bench-a", 1.0)
    root = room.root
    lat: list[float] = []
    floor: list[float] = []
    echo: list[float] = []
    for i in range(n + WARMUP):
        _references(rig, floor, echo)
        rid = f"bench-rt-{uuid.uuid4().hex[:12]}"
        w = rig.sub.expect(reply_match(root, rid))
        payload = json.dumps({"request_id": rid, "by": "bench"}).encode()
        t0 = time.perf_counter()
        rig.pub.publish(f"{root}/cmd/status", payload)
        t1, reply = w.wait(10.0, "the status reply")
        if not reply.get("ok"):
            raise BenchError(f"status: {reply}")
        if i >= WARMUP:
            lat.append(t1 - t0)
    del floor[:WARMUP], echo[:WARMUP]
    return _report(
        lat,
        floor,
        echo,
        {"path": "bench publish cmd/status → broker → roomd → broker → subscriber (two hops)"},
    )
