"""`make bench` still runs: a quick, bounded pass over two benchmarks (a real broker and room)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench.cli import check_targets, render, selected

REPO = Path(__file__).resolve().parents[2]


def _sane_latency(r: dict[str, Any]) -> None:
    assert r["n"] >= 30
    assert 0 < r["p50_ms"] <= r["p99_ms"] <= r["max_ms"]
    for ref in r["reference"].values():
        assert ref["n"] == r["n"]
        assert 0 < ref["p50_ms"] <= ref["p99_ms"] <= ref["max_ms"]
    assert r["overhead_p99_ms"] == round(
        r["p99_ms"] - r["reference"]["raw_paho_floor"]["p99_ms"], 3
    )


def test_quick_bench_writes_figures_with_references(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "--quick",
            "--only",
            "journal,roundtrip",
            "--samples",
            "40",
            "--out",
            str(out),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=50,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    doc = json.loads(out.read_text())
    assert doc["errors"] == {}
    assert set(doc["results"]) == {"journal", "roundtrip"}
    _sane_latency(doc["results"]["roundtrip"])
    journal = doc["results"]["journal"]
    assert journal["full_events_per_s"] > 0
    assert journal["reference"]["normal_events_per_s"] > 0
    # Every measured target has a verdict, and a missed one is not an error (exit 0 above).
    verdicts = {(t["bench"], t["figure"]): t["verdict"] for t in doc["targets"]}
    assert verdicts[("roundtrip", "p99")] in ("PASS", "FAIL")
    assert "roundtrip" in done.stdout and "journal" in done.stdout
    assert f"written: {out}" in done.stdout


def test_selection_and_groups() -> None:
    assert selected(["recovery", "journal"]) == ["journal", "kill9", "outage"]
    assert selected(["latency"]) == ["roundtrip", "call", "alarm"]
    assert selected(None)[0] == "journal"


def test_targets_and_table_from_results() -> None:
    lat = {
        "n": 3,
        "p50_ms": 2.0,
        "p99_ms": 12.5,
        "max_ms": 13.0,
        "overhead_p50_ms": 1.5,
        "overhead_p99_ms": 12.0,
        "ratio_p99": 25.0,
        "overhead_vs_echo_p99_ms": 11.0,
        "reference": {
            "raw_paho_floor": {"n": 3, "p50_ms": 0.5, "p99_ms": 0.5, "max_ms": 0.6},
            "raw_paho_echo": {"n": 3, "p50_ms": 1.0, "p99_ms": 1.5, "max_ms": 1.6},
        },
    }
    targets = check_targets({"call": lat, "roundtrip": lat})
    assert {(t["bench"], t["verdict"]) for t in targets} == {
        ("call", "FAIL"),
        ("roundtrip", "PASS"),
    }
    table = render({"call": lat, "roundtrip": lat}, targets, {})
    assert "FAIL  call" in table and "PASS  roundtrip" in table


def test_the_flood_bench_has_a_target_and_a_row() -> None:
    ms = {"n": 2, "p50_ms": 1.0, "p99_ms": 2.0, "max_ms": 2.0, "mean_ms": 1.5}
    flood = {
        "flood": 3000,
        "cycles": 2,
        "behind_flood_s_max": 2.5,
        "behind_flood_ms": ms,
        "reference": {"emergency_alone_ms": ms},
        "command_rejected_events": 6,
        "flood_replies": 40,
    }
    assert "flood" in selected(["flood"])
    targets = check_targets({"flood": flood})
    assert [(t["bench"], t["verdict"]) for t in targets] == [("flood", "FAIL")]
    row = render({"flood": flood}, targets, {})
    assert "emergency behind 3000 bad commands" in row and "40 refusal replies" in row


def test_the_scale_benchmarks_have_rows_and_targets() -> None:
    lat = {"n": 30, "p50_ms": 2.0, "p99_ms": 6.0, "max_ms": 7.0}
    foot = {
        "room_threads_cpu_pct": 0.31,
        "sim_threads_cpu_pct": 0.2,
        "cpu_pct_of_core": 0.6,
        "rss_mb_max": 41.0,
        "pinned_cpus": [0],
        "window_s": 60.0,
        "reference": {"bare_paho_process_rss_mb": 22.1, "deps_floor_rss_mb": 38.1},
    }
    results = {
        "pi": foot,
        "bridge": {
            "central_latency": {**lat, "p99_ms": 9.0},
            "reference": {"single_broker_latency": lat},
            "overhead_p99_ms": 3.0,
            "vitals_window": {"site": 40, "central": 39},
            "cut": {
                "site": "site-a",
                "cut_s": 30,
                "lost_events": 0,
                "journal_events": 400,
                "duplicates_received": 2,
                "archive_duplicates": 0,
                "archive_lost": 0,
                "reconnect_s": 1.1,
                "caught_up_s": 1.5,
            },
        },
        "archive": {
            "events": 3_400_000,
            "rooms": 30,
            "days": 365,
            "db_mb": 600.0,
            "catch_up_events_per_s": 9000,
            "live_events_per_s": 150,
            "course_ms": {**lat, "p99_ms": 80.0},
            "course_direct_ms": lat,
            "clinicd_rss_mb": 43.0,
            "hl7_scan_ms": {"backlog": 23490, "first_turn_ms": 0.6, "all_queued_ms": 0.013},
            "reference": {
                "sessions_count_ms": 1.5,
                "raw_insert_per_txn_per_s": 170,
                "bare_paho_drain_per_s": 4000,
                "echo_ms": lat,
                "bare_paho_rss_mb": 22.1,
            },
        },
    }
    verdicts = {(t["bench"], t["figure"]): t["verdict"] for t in check_targets(results)}
    assert verdicts == {
        ("pi", "room threads CPU"): "PASS",
        ("pi", "RSS max"): "FAIL",
        ("bridge", "p99 overhead"): "PASS",
        ("bridge", "cut: lost"): "PASS",
        ("bridge", "cut: archive dup/lost"): "PASS",
        ("archive", "ingest catch-up"): "PASS",
        ("archive", "ingest live"): "FAIL",
        ("archive", "course p99"): "FAIL",
    }
    table = render(results, check_targets(results), {})
    assert "taskset -c 0" in table and "site broker p50/p99 2.00/6.00 ms" in table
    assert "libraries alone RSS 38.1 MB" in table and "39 at the centre" in table
    assert "lost 0 of 400" in table and "course p50/p99 2.0/80.0 ms" in table
    assert "bare paho drain: 4000 msg/s" in table
    assert "0.60 ms with 23490 to queue, 0.013 ms once queued" in table
    assert selected(["bridge", "pi", "archive"]) == ["bridge", "pi", "archive"]
