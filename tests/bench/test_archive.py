"""The archive benchmark at a small size: ingest and ``course`` over MQTT against a real
clinicd, on a small generated year."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.archive import bench_archive
from bench.infra import reap_all


def test_quick_archive_bench(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    try:
        # Over clinicd's batch (BATCH_MAX 1000): a burst that fits one batch can be stored
        # before the bench sees its first event, and then cannot be timed.
        r = bench_archive(tmp_path / "run", rooms=1, days=7, queries=5, ingest_n=2500)
    finally:
        reap_all()
    assert r["events"] > 1000 and r["patients"] >= 3
    assert r["catch_up_events_per_s"] > 0 and r["live_events_per_s"] > 0
    assert r["reference"]["bare_paho_drain_per_s"] > 0
    assert r["course_ms"]["n"] == 5 and r["course_direct_ms"]["n"] == 5
    assert 0 < r["course_ms"]["p50_ms"] <= r["course_ms"]["p99_ms"]
    assert r["clinicd_rss_mb"] > r["reference"]["bare_paho_rss_mb"] > 0
    # Every ended session of the small year was still to queue, then all were queued.
    hl7 = r["hl7_scan_ms"]
    assert hl7["backlog"] >= 3 and hl7["first_turn_ms"] > 0 and hl7["all_queued_ms"] > 0
