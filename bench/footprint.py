"""What a room costs the Pi: CPU and memory during an infusion, and the time to READY."""

from __future__ import annotations

import statistics
import subprocess
import sys
import threading
import time
from collections import defaultdict
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
    NotifyListener,
    Room,
    bare_paho_script,
    compile_sources,
    cpu_percent,
    deps_floor_script,
    proc_sample,
    python_argv,
    reap,
    spawn,
)
from bench.threads import launcher, pct_by_name, share, thread_times

DEFAULT_MUSIC_DIR = Path("/var/lib/roomd/music")


class TopicCounter:
    """Messages and bytes per topic leaf, counted on a subscriber's network thread."""

    def __init__(self, root: str) -> None:
        self.root = root
        self.lock = threading.Lock()
        self.counting = False
        self.msgs: dict[str, int] = defaultdict(int)
        self.bytes: dict[str, int] = defaultdict(int)

    def __call__(self, t: float, wall: float, topic: str, payload: bytes) -> None:
        if not self.counting:
            return
        leaf = topic[len(self.root) + 1 :] if topic.startswith(self.root + "/") else topic
        if leaf.startswith("cmd/") or leaf.startswith("sim/"):
            return
        with self.lock:
            self.msgs[leaf] += 1
            self.bytes[leaf] += len(payload) + len(topic)


def bench_footprint(
    workdir: Path, window_s: float, cpus: list[int] | None = None
) -> dict[str, Any]:
    """CPU and RSS of one ``roomd --simulate`` over ``window_s`` of an infusion at time scale 1:
    the whole process, and its own threads apart from the simulated devices' (``cpus``: pin
    the room to these cores with taskset, a Pi-like run)."""
    compile_sources()
    broker = Broker(workdir / "broker")
    broker.start()
    room = Room(
        workdir / "room",
        broker.port,
        "bench-foot",
        time_scale=1.0,
        launch=launcher("controller"),
        cpus=cpus,
    )
    counter = TopicCounter(room.root)
    client = Client(broker.port, "foot", [f"{room.root}/#"], on_message=counter)
    ref = floor = None
    try:
        online = expect_online(client, room)
        room.start()
        wait_online(client, room, watch=online)
        into_infusion(client, room.root, "foot-s1")
        time.sleep(2.0)  # settle: the infusion's first lights, music and state are out
        # The reference: a bare paho client process, connected and idle, in the same window.
        ref = spawn(python_argv(bare_paho_script(broker.port, window_s + 30)), workdir / "ref.log")
        # And the room's libraries alone, imported and used once: what no room code can shed.
        floor = spawn(
            python_argv(deps_floor_script(broker.port, window_s + 30)), workdir / "floor.log"
        )
        counter.counting = True
        rss: list[int] = []
        ref_rss: list[int] = []
        floor_rss: list[int] = []
        before = proc_sample(room.pid)
        threads_before = thread_times(room.pid)
        broker_before = proc_sample(broker.pid)
        t0 = time.monotonic()
        while (elapsed := time.monotonic() - t0) < window_s:
            if not room.alive():
                raise BenchError(f"roomd exited during the footprint window: {room.tail()}")
            rss.append(proc_sample(room.pid).rss_kb)
            if elapsed > 2.0:  # the reference has imported paho and connected by then
                ref_rss.append(proc_sample(ref.pid).rss_kb)
                floor_rss.append(proc_sample(floor.pid).rss_kb)
            time.sleep(min(1.0, max(0.0, window_s - elapsed)))
        after = proc_sample(room.pid)
        threads_after = thread_times(room.pid)
        broker_after = proc_sample(broker.pid)
        wall = time.monotonic() - t0
        counter.counting = False
        if not ref_rss:
            ref_rss.append(proc_sample(ref.pid).rss_kb)
            floor_rss.append(proc_sample(floor.pid).rss_kb)
        with counter.lock:
            msgs = dict(counter.msgs)
            nbytes = dict(counter.bytes)
    finally:
        for proc in (ref, floor):
            if proc is not None:
                reap(proc)
        client.close()
        room.stop()
        broker.stop()
    room_pct, sim_pct = share(threads_before, threads_after, wall)
    music = "libVLC (music_dir exists)" if DEFAULT_MUSIC_DIR.is_dir() else "stand-in player"
    return {
        "window_s": round(wall, 1),
        "time_scale": 1.0,
        "phase": "infusion",
        "music": music,
        "pinned_cpus": cpus,
        "cpu_pct_of_core": round(cpu_percent(before, after, wall), 3),
        "room_threads_cpu_pct": round(room_pct, 3),
        "sim_threads_cpu_pct": round(sim_pct, 3),
        "threads_cpu_pct": pct_by_name(threads_before, threads_after, wall),
        "rss_mb_max": round(max(rss) / 1024, 1),
        "rss_mb_last": round(rss[-1] / 1024, 1),
        "vm_hwm_mb": round(after.hwm_kb / 1024, 1),
        "threads": after.threads,
        "broker_cpu_pct_of_core": round(cpu_percent(broker_before, broker_after, wall), 3),
        "published_per_s": {k: round(v / wall, 3) for k, v in sorted(msgs.items())},
        "published_bytes_per_s": {k: round(v / wall, 1) for k, v in sorted(nbytes.items())},
        "total_msgs_per_s": round(sum(msgs.values()) / wall, 3),
        "total_bytes_per_s": round(sum(nbytes.values()) / wall, 1),
        "reference": {
            "bare_paho_process_rss_mb": round(max(ref_rss) / 1024, 1),
            "deps_floor_rss_mb": round(max(floor_rss) / 1024, 1),
        },
        "load": "1 Hz simulated oximeter, NIBP module idle between readings, state heartbeat "
        "every 10 s, lights and music of the infusion phase; room threads = every thread but "
        "the simulated devices' (sim-*), named for /proc by bench.threads.launcher; the room "
        "runs from bytecode compiled beforehand, as installed",
    }


def bench_startup(workdir: Path, runs: int) -> dict[str, Any]:
    """Spawn → READY=1 of ``roomd --simulate`` (fresh data directory each time), started from
    bytecode as an installed room is."""
    compile_sources()
    broker = Broker(workdir / "broker")
    broker.start()
    listener = NotifyListener(workdir / "notify.sock")
    ready: list[float] = []
    online: list[float] = []
    try:
        for i in range(runs):
            room = Room(
                workdir / f"room-{i}", broker.port, f"bench-start-{i}", notify=listener.path
            )
            client = Client(broker.port, f"start{i}", [f"{room.root}/status"])
            watch = client.expect(lambda t, p: p == b"online")
            try:
                spawned = room.start()
                t_ready = listener.wait_ready(spawned, 30.0)
                ready.append(t_ready - spawned)
                t_online, _ = watch.wait(30.0, "status online")
                online.append(t_online - spawned)
            finally:
                client.close()
                room.stop()
        ref: list[float] = []
        for _ in range(max(3, runs)):
            t0 = time.perf_counter()
            subprocess.run(python_argv("import paho.mqtt.client"), check=True, timeout=60)
            ref.append(time.perf_counter() - t0)
        bare: list[float] = []
        for _ in range(3):
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-c", "pass"], check=True, timeout=60)
            bare.append(time.perf_counter() - t0)
    finally:
        listener.close()
        broker.stop()
    return {
        "runs": runs,
        "ready_s_median": round(statistics.median(ready), 3),
        "ready_s_max": round(max(ready), 3),
        "online_s_median": round(statistics.median(online), 3),
        "reference": {
            "python_import_paho_s_median": round(statistics.median(ref), 3),
            "python_bare_s_median": round(statistics.median(bare), 3),
        },
        "note": "spawn → READY=1 on NOTIFY_SOCKET; 'online' is the retained status at a "
        "subscriber (READY is sent before the broker connection completes)",
    }
