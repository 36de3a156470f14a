"""The write-bytes benchmark measures the block layer on a real disk, never a tmpfs."""

from __future__ import annotations

from pathlib import Path

from bench.cli import check_targets
from bench.writes import bench_writes, fs_type, write_bytes


def test_write_bytes_counts_what_reaches_the_block_layer(tmp_path: Path) -> None:
    r = bench_writes(tmp_path, idle_s=600, session_s=600)
    assert r["fs_type"] not in ("tmpfs", "ramfs")
    assert r["idle"]["events"] == 0  # an idle room journals nothing...
    assert r["session"]["events"] > 10
    assert r["session"]["bytes"] > 0  # ...a session does, and it is counted
    assert r["session_mb"] == round(r["session"]["bytes"] * 7200 / 600 / 1e6, 3)
    verdicts = {t["figure"]: t["verdict"] for t in check_targets({"writes": r})}
    assert set(verdicts) == {"idle day", "2-hour session"}


def test_fs_type_and_the_counter() -> None:
    assert fs_type(Path("/proc")) == "proc"
    assert write_bytes() >= 0
