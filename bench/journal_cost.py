"""The journal's cost per event: ``synchronous=FULL`` (what the room uses) against ``NORMAL``."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from controller.event_data import ALARM
from controller.journal import Journal

SAMPLE_DATA: dict[str, Any] = {"alarm": ALARM}
"""A typical event's data (an alarm_raised: among the larger ones)."""


def _rate(directory: Path, synchronous: str, n: int) -> tuple[float, float]:
    path = directory / f"journal-{synchronous.lower()}.sqlite"
    journal = Journal(path, synchronous=synchronous)
    try:
        ts = datetime.now(UTC)
        for _ in range(5):  # warm-up: the file and its WAL exist
            journal.append(ts, "bench", "alarm_raised", SAMPLE_DATA)
        t0 = time.perf_counter()
        for _ in range(n):
            journal.append(ts, "bench", "alarm_raised", SAMPLE_DATA)
        took = time.perf_counter() - t0
    finally:
        journal.close()
    return n / took, took / n


def bench_journal(workdir: Path, n: int) -> dict[str, Any]:
    """Appends per second in each mode, in-process, on the disk under ``workdir``."""
    workdir.mkdir(parents=True, exist_ok=True)
    directory = Path(tempfile.mkdtemp(prefix="journal-", dir=workdir))
    try:
        full_rate, full_each = _rate(directory, "FULL", n)
        normal_rate, normal_each = _rate(directory, "NORMAL", n)
        st = os.statvfs(directory)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    return {
        "n": n,
        "full_events_per_s": round(full_rate, 1),
        "full_ms_per_event": round(full_each * 1000, 3),
        "reference": {
            "normal_events_per_s": round(normal_rate, 1),
            "normal_ms_per_event": round(normal_each * 1000, 3),
        },
        "full_vs_normal_ratio": round(normal_rate / full_rate, 2),
        "directory": str(workdir),
        "fs_block_size": st.f_bsize,
        "note": "Journal.append (WAL; one commit per event), in-process, alarm_raised-sized data",
    }
