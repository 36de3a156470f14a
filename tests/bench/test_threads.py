"""Per-thread CPU from /proc: a launched process's threads carry their Python names, and the
room's share is told apart from the simulators'."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from bench.threads import ThreadTimes, launcher, pct_by_name, share, thread_times

PROGRAM = """
import threading, time
stop = threading.Event()
def spin():
    while not stop.is_set():
        sum(range(1000))
threading.Thread(target=spin, name="sim-busy", daemon=True).start()
threading.Thread(target=stop.wait, name="roomd-idle", daemon=True).start()
print("ready", flush=True)
time.sleep(30)
"""


def test_launched_threads_are_named_and_split(tmp_path: Path) -> None:
    (tmp_path / "threadsdemo.py").write_text(PROGRAM)
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    proc = subprocess.Popen(launcher("threadsdemo"), env=env, stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
        # A thread is named when it first runs Python code: it may not have run yet.
        deadline = time.monotonic() + 10
        while not {"roomd-main", "sim-busy", "roomd-idle"} <= set(
            (before := thread_times(proc.pid)).by_name
        ):
            assert time.monotonic() < deadline, before.by_name
            time.sleep(0.05)
        t0 = time.monotonic()
        deadline = t0 + 10
        while thread_times(proc.pid).sims() - before.sims() < 0.2:  # CPU ticks are coarse
            assert time.monotonic() < deadline
            time.sleep(0.05)
        after = thread_times(proc.pid)
        wall = time.monotonic() - t0
    finally:
        proc.kill()
        proc.wait(10)
    room, sims = share(before, after, wall)
    assert sims > 10 * max(room, 0.5)  # the spinning simulator, not the idle room
    assert pct_by_name(before, after, wall)["sim-busy"] > 10


def test_room_and_simulators_are_summed_by_prefix() -> None:
    t = ThreadTimes({"roomd-main": 1.0, "paho-mqtt-clien": 0.5, "sim-nibp": 2.0, "sim-ox": 1.0})
    assert t.room() == 1.5 and t.sims() == 3.0
