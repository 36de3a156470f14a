"""What the room writes to its storage device: bytes per idle day and per 2-hour session.

An SD card wears with every block written, so the figure that matters is what reaches the
block layer, not the journal file's size. Measured as ``write_bytes`` in ``/proc/self/io``
(bytes this process caused to be sent to the storage layer: every page SQLite dirties, the
-wal's frames, checkpoints into the main file, the seq mark) around the real Room on fakes
driven on a FakeClock: an oximeter sample every second, the state published on the
heartbeat, a whole session with its blood pressures. The work directory must be on a real
block device (on tmpfs nothing reaches a block layer and the figure reads 0).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from tests.controller.harness import Harness

DAY_S = 24 * 3600
SESSION_S = 2 * 3600
CHUNK_S = 600
"""Fake seconds driven between two clean-ups of the fake link's records (memory)."""


def write_bytes() -> int:
    """Bytes this process has caused to be written to the storage layer so far."""
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("write_bytes:"):
            return int(line.split()[1])
    raise RuntimeError("/proc/self/io has no write_bytes (no task I/O accounting)")


def _drive(h: Harness, seconds: int) -> None:
    """``seconds`` of room life, a sample a second; measurements taken when asked for."""
    left = seconds
    while left > 0:
        step = min(CHUNK_S, left)
        for _ in range(step):
            h.clock.advance(1.0)
            h.vitals()
            h.room.tick()
            h.drain()
            if h.nibp.measuring:
                h.nibp.finish(121, 77, 70)
                h.drain()
        left -= step
        for records in (h.link.events, h.link.states, h.link.vitals, h.link.alarms):
            records.clear()


def _idle(directory: Path, seconds: int) -> dict[str, Any]:
    h = Harness(directory / "idle")
    h.run(60, step=1)  # settled: the file and its -wal exist
    os.sync()
    before, seq = write_bytes(), h.journal.last_seq
    _drive(h, seconds)
    written = write_bytes() - before  # before close: its checkpoint moves the settling's pages
    events = h.journal.last_seq - seq
    h.close()
    return {
        "seconds": seconds,
        "bytes": written,
        "events": events,
        "mb_per_day": round(written * DAY_S / seconds / 1e6, 3),
    }


def _session(directory: Path, seconds: int) -> dict[str, Any]:
    h = Harness(directory / "session")
    h.run(60, step=1)
    os.sync()
    before, seq = write_bytes(), h.journal.last_seq
    h.to_infusion_running()
    _drive(h, seconds)
    h.ok("end_session", reason="bench")
    h.close()  # its checkpoint counts: the session's pages reach the main file
    written = write_bytes() - before
    return {
        "seconds": seconds,
        "bytes": written,
        "events": h.journal.last_seq - seq,
        "mb_per_session": round(written * SESSION_S / seconds / 1e6, 3),
    }


def fs_type(path: Path) -> str:
    """The file system type ``path`` lives on (from /proc/mounts: the longest mount point)."""
    best, kind = "", "unknown"
    real = str(path.resolve())
    for line in Path("/proc/mounts").read_text().splitlines():
        fields = line.split()
        point = fields[1]
        inside = real == point or real.startswith(point.rstrip("/") + "/")
        if inside and len(point) > len(best):
            best, kind = point, fields[2]
    return kind


def bench_writes(workdir: Path, idle_s: int, session_s: int) -> dict[str, Any]:
    """Block-layer bytes written per idle day and per 2-hour session (scaled from the runs)."""
    workdir.mkdir(parents=True, exist_ok=True)
    if fs_type(workdir) in ("tmpfs", "ramfs"):
        workdir = Path("/var/tmp")  # a /tmp in memory has no block layer to count
    directory = Path(tempfile.mkdtemp(prefix="roomd-writes-", dir=workdir))
    try:
        write_bytes()
        idle = _idle(directory, idle_s)
        session = _session(directory, session_s)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    return {
        "idle_mb_per_day": idle["mb_per_day"],
        "session_mb": session["mb_per_session"],
        "idle": idle,
        "session": session,
        "directory": str(workdir),
        "fs_type": fs_type(workdir),
        "note": "write_bytes of /proc/self/io around the real Room on fakes (FakeClock, "
        "1 Hz oximeter); runs shorter than a day or a session are scaled linearly",
    }
