"""``python -m bench [--quick] [--only NAME ...] [--outage-s N] [--rooms 1,10,30] [--out FILE]``.

Runs the benchmarks, prints a table (figure, same-run reference, target, PASS/FAIL) and writes
the whole of it to ``bench/results.json``. A missed target is a finding, not an error: the exit
status is non-zero only when a benchmark could not be measured.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import infra
from bench.infra import REPO, reap_all

NAMES = (
    "journal",
    "writes",
    "roundtrip",
    "call",
    "alarm",
    "startup",
    "footprint",
    "kill9",
    "outage",
    "clinic",
    "flood",
    "bridge",
    "pi",
    "archive",
)
GROUPS = {"latency": ("roundtrip", "call", "alarm"), "recovery": ("kill9", "outage")}


@dataclass(frozen=True)
class Plan:
    """How much of each benchmark to run."""

    samples: int
    alarm_samples: int
    roundtrip_samples: int
    footprint_s: float
    startup_runs: int
    kill9_runs: int
    outage_s: float
    inject_hz: float
    journal_n: int
    writes_idle_s: int
    writes_session_s: int
    rooms: list[int]
    clinic_window_s: float
    flood_cycles: int
    bridge_rooms: int
    bridge_window_s: float
    bridge_cut_s: float
    archive_rooms: int
    archive_days: int
    archive_queries: int
    archive_ingest_n: int


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line."""
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[1])
    p.add_argument("--quick", action="store_true", help="small counts and windows (< 90 s)")
    p.add_argument(
        "--only",
        nargs="+",
        metavar="NAME",
        help=f"run only these ({', '.join(NAMES)}; groups: {', '.join(GROUPS)}); commas work too",
    )
    p.add_argument("--outage-s", type=float, help="broker outage length (default 60, quick 5)")
    p.add_argument("--rooms", help="clinic sizes, e.g. 1,10,30 (quick: 1,3)")
    p.add_argument("--samples", type=int, help="presses / crossings / commands (default 500)")
    p.add_argument("--footprint-s", type=float, help="footprint window (default 120, quick 8)")
    p.add_argument(
        "--broker-nagle",
        action="store_true",
        help="leave Nagle on in the bench's brokers (the shipped config turns it off)",
    )
    p.add_argument("--out", default=str(REPO / "bench" / "results.json"), help="results file")
    p.add_argument("--keep", action="store_true", help="keep the work directory (logs)")
    return p.parse_args(argv)


def make_plan(args: argparse.Namespace) -> Plan:
    """Defaults, quick defaults, then the explicit options."""
    q = args.quick
    rooms = (
        [int(x) for x in args.rooms.split(",")] if args.rooms else ([1, 3] if q else [1, 10, 30])
    )
    samples = args.samples or (40 if q else 500)
    return Plan(
        samples=samples,
        alarm_samples=samples,
        roundtrip_samples=args.samples or (50 if q else 500),
        footprint_s=args.footprint_s or (8.0 if q else 120.0),
        startup_runs=2 if q else 5,
        kill9_runs=3 if q else 10,
        outage_s=args.outage_s if args.outage_s is not None else (5.0 if q else 60.0),
        inject_hz=20.0,
        journal_n=500 if q else 5000,
        writes_idle_s=3600 if q else 86400,
        writes_session_s=1800 if q else 7200,
        rooms=rooms,
        clinic_window_s=5.0 if q else 30.0,
        flood_cycles=2 if q else 5,
        bridge_rooms=1 if q else 3,
        bridge_window_s=4.0 if q else 30.0,
        bridge_cut_s=4.0 if q else 30.0,
        archive_rooms=2 if q else 30,
        archive_days=14 if q else 365,
        archive_queries=20 if q else 200,
        archive_ingest_n=2000 if q else 20000,
    )


def selected(only: list[str] | None) -> list[str]:
    """The benchmarks to run, in the bench's order; SystemExit(2) on an unknown name."""
    if not only:
        return list(NAMES)
    wanted: set[str] = set()
    for item in only:
        for name in filter(None, item.split(",")):
            if name in GROUPS:
                wanted.update(GROUPS[name])
            elif name in NAMES:
                wanted.add(name)
            else:
                print(
                    f"bench: unknown benchmark {name!r} (one of {', '.join(NAMES)})",
                    file=sys.stderr,
                )
                raise SystemExit(2)
    return [n for n in NAMES if n in wanted]


# --- targets ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """One of the issue's targets, checked against one figure."""

    bench: str
    label: str
    wanted: str
    value: Callable[[dict[str, Any]], float | int | None]
    good: Callable[[float], bool]
    unit: str


TARGETS = (
    *(
        Target(
            name,
            "p99 − floor p99",
            "≤ 10 ms",
            lambda r: r["overhead_p99_ms"],
            lambda v: v <= 10,
            "ms",
        )
        for name in ("call", "alarm", "alarm_pty")
    ),
    Target(
        "writes",
        "idle day",
        "≤ 2 MB",
        lambda r: r["idle_mb_per_day"],
        lambda v: v <= 2,
        "MB",
    ),
    Target(
        "writes",
        "2-hour session",
        "≤ 20 MB",
        lambda r: r["session_mb"],
        lambda v: v <= 20,
        "MB",
    ),
    Target("roundtrip", "p99", "< 20 ms", lambda r: r["p99_ms"], lambda v: v < 20, "ms"),
    Target("footprint", "RSS max", "< 60 MB", lambda r: r["rss_mb_max"], lambda v: v < 60, "MB"),
    Target("footprint", "CPU", "< 1 % core", lambda r: r["cpu_pct_of_core"], lambda v: v < 1, "%"),
    Target(
        "startup", "READY median", "< 1.5 s", lambda r: r["ready_s_median"], lambda v: v < 1.5, "s"
    ),
    Target("kill9", "resume median", "< 2 s", lambda r: r["resume_s_median"], lambda v: v < 2, "s"),
    Target("kill9", "events lost", "0", lambda r: r["lost_events"], lambda v: v == 0, ""),
    Target("outage", "events lost", "0", lambda r: r["lost_events"], lambda v: v == 0, ""),
    *(
        t
        for name in ("footprint", "pi")
        for t in (
            Target(
                name,
                "room threads CPU",
                "≤ 0.5 % core",
                lambda r: r["room_threads_cpu_pct"],
                lambda v: v <= 0.5,
                "%",
            ),
            Target(name, "RSS max", "≤ 40 MB", lambda r: r["rss_mb_max"], lambda v: v <= 40, "MB"),
        )
    ),
    Target(
        "bridge", "p99 overhead", "≤ 5 ms", lambda r: r["overhead_p99_ms"], lambda v: v <= 5, "ms"
    ),
    Target("bridge", "cut: lost", "0", lambda r: r["cut"]["lost_events"], lambda v: v == 0, ""),
    Target(
        "bridge",
        "cut: archive dup/lost",
        "0",
        lambda r: r["cut"]["archive_duplicates"] + r["cut"]["archive_lost"],
        lambda v: v == 0,
        "",
    ),
    Target(
        "archive",
        "ingest catch-up",
        "≥ 5000 ev/s",
        lambda r: r["catch_up_events_per_s"],
        lambda v: v >= 5000,
        "ev/s",
    ),
    Target(
        "archive",
        "ingest live",
        "≥ 5000 ev/s",
        lambda r: r["live_events_per_s"],
        lambda v: v >= 5000,
        "ev/s",
    ),
    Target(
        "archive",
        "course p99",
        "< 50 ms",
        lambda r: r["course_ms"]["p99_ms"],
        lambda v: v < 50,
        "ms",
    ),
    Target(
        "clinic",
        "event seq gaps",
        "0",
        lambda r: sum(x["event_seq_gaps"] for x in r["runs"]),
        lambda v: v == 0,
        "",
    ),
    Target(
        "flood",
        "emergency behind",
        "< 2 s",
        lambda r: r["behind_flood_s_max"],
        lambda v: v < 2,
        "s",
    ),
)


def check_targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Every target whose figure was measured, with its verdict."""
    out = []
    for t in TARGETS:
        if t.bench not in results:
            continue
        value = t.value(results[t.bench])
        verdict = "n/a" if value is None else ("PASS" if t.good(float(value)) else "FAIL")
        out.append(
            {
                "bench": t.bench,
                "figure": t.label,
                "target": t.wanted,
                "value": value,
                "unit": t.unit,
                "verdict": verdict,
            }
        )
    return out


# --- the table ----------------------------------------------------------------------------


def _lat_row(name: str, r: dict[str, Any]) -> list[list[str]]:
    f = r["reference"]["raw_paho_floor"]
    e = r["reference"]["raw_paho_echo"]
    return [
        [
            name,
            f"p50/p99/max {r['p50_ms']:.2f}/{r['p99_ms']:.2f}/{r['max_ms']:.2f} ms (n={r['n']})",
            f"floor {f['p50_ms']:.2f}/{f['p99_ms']:.2f}/{f['max_ms']:.2f}; "
            f"echo {e['p50_ms']:.2f}/{e['p99_ms']:.2f}",
        ],
        [
            "",
            f"overhead p50/p99 {r['overhead_p50_ms']:.2f}/{r['overhead_p99_ms']:.2f} ms "
            f"(×{r['ratio_p99']} at p99)",
            f"vs echo p99 {r['overhead_vs_echo_p99_ms']:.2f} ms",
        ],
    ]


def rows(results: dict[str, Any]) -> list[list[str]]:
    """Benchmark, figure, same-run reference."""
    out: list[list[str]] = []
    for name in ("roundtrip", "call", "alarm", "alarm_pty"):
        if name in results:
            out += _lat_row(name, results[name])
    if "journal" in results:
        r = results["journal"]
        out.append(
            [
                "journal",
                f"FULL {r['full_events_per_s']:.0f} ev/s ({r['full_ms_per_event']:.2f} ms)",
                f"NORMAL {r['reference']['normal_events_per_s']:.0f} ev/s "
                f"(×{r['full_vs_normal_ratio']})",
            ]
        )
    if "writes" in results:
        r = results["writes"]
        out.append(
            [
                "writes",
                f"block layer: idle {r['idle_mb_per_day']:.2f} MB/day, "
                f"session {r['session_mb']:.2f} MB/2 h",
                f"{r['session']['events']} session events; vitals batched, none when idle",
            ]
        )
    if "startup" in results:
        r = results["startup"]
        ref = r["reference"]
        out.append(
            [
                "startup",
                f"READY median/max {r['ready_s_median']:.3f}/{r['ready_s_max']:.3f} s",
                f"python -c 'import paho.mqtt.client' {ref['python_import_paho_s_median']:.3f} s",
            ]
        )
    if "footprint" in results:
        r = results["footprint"]
        out.append(
            [
                "footprint",
                f"CPU {r['cpu_pct_of_core']:.2f} % core, RSS max {r['rss_mb_max']:.1f} MB "
                f"({r['window_s']:.0f} s, {r['music']})",
                f"bare paho process RSS {r['reference']['bare_paho_process_rss_mb']:.1f} MB; "
                f"the room's libraries alone {r['reference']['deps_floor_rss_mb']:.1f} MB",
            ]
        )
        out.append(
            [
                "",
                f"{r['total_msgs_per_s']:.2f} msg/s, {r['total_bytes_per_s']:.0f} B/s published",
                f"broker CPU {r['broker_cpu_pct_of_core']:.2f} %",
            ]
        )
    for name in ("footprint", "pi"):
        if name in results and "room_threads_cpu_pct" in results[name]:
            r = results[name]
            pinned = (
                f"taskset -c {','.join(map(str, r['pinned_cpus']))}"
                if r["pinned_cpus"]
                else "unpinned"
            )
            out.append(
                [
                    name if name == "pi" else "",
                    f"room threads {r['room_threads_cpu_pct']:.2f} % core, RSS max "
                    f"{r['rss_mb_max']:.1f} MB ({pinned}, {r['window_s']:.0f} s)",
                    f"whole process {r['cpu_pct_of_core']:.2f} %, simulators "
                    f"{r['sim_threads_cpu_pct']:.2f} %; libraries alone RSS "
                    f"{r['reference']['deps_floor_rss_mb']:.1f} MB",
                ]
            )
    if "kill9" in results:
        r = results["kill9"]
        out.append(
            [
                "kill9",
                f"resume median/max {r['resume_s_median']:.3f}/{r['resume_s_max']:.3f} s "
                f"(n={r['runs']}), lost {r['lost_events']}",
                f"kill→resumed {r['kill_to_resumed_s_median']:.3f} s",
            ]
        )
    if "outage" in results:
        r = results["outage"]
        out.append(
            [
                "outage",
                f"{r['outage_s']:g} s down, {r['queued']} queued: broker up → last queued "
                f"{r['broker_up_to_last_queued_s']:.2f} s, lost {r['lost_events']}",
                f"reconnect {r['reconnect_s']:.2f} s; drain {r['drain_events_per_s']} ev/s",
            ]
        )
    if "clinic" in results:
        for run in results["clinic"]["runs"]:
            ev = run["event_latency_ms"]
            out.append(
                [
                    f"clinic N={run['rooms']}",
                    f"room CPU {run['room_cpu_pct_mean']:.2f} %, "
                    f"broker {run['broker_cpu_pct']:.2f} %, "
                    f"event p50/p99 {ev['p50']}/{ev['p99']} ms",
                    f"{run['msgs_per_s_per_room']} msg/s, {run['bytes_per_s_per_room']:.0f} B/s "
                    f"per room; gaps {run['event_seq_gaps']}",
                ]
            )
    if "flood" in results:
        r = results["flood"]
        b, a = r["behind_flood_ms"], r["reference"]["emergency_alone_ms"]
        out.append(
            [
                "flood",
                f"emergency behind {r['flood']} bad commands: p50/max {b['p50_ms']:.0f}/"
                f"{b['max_ms']:.0f} ms (n={r['cycles']}); "
                f"{r['command_rejected_events']} command_rejected, "
                f"{r['flood_replies']} refusal replies",
                f"emergency alone p50/max {a['p50_ms']:.1f}/{a['max_ms']:.1f} ms",
            ]
        )
    if "bridge" in results:
        r = results["bridge"]
        c, ref, cut = r["central_latency"], r["reference"]["single_broker_latency"], r["cut"]
        out += [
            [
                "bridge",
                f"central p50/p99 {c['p50_ms']:.2f}/{c['p99_ms']:.2f} ms (n={c['n']}), "
                f"overhead p99 {r['overhead_p99_ms']:.2f} ms",
                f"site broker p50/p99 {ref['p50_ms']:.2f}/{ref['p99_ms']:.2f} ms",
            ],
            [
                "",
                f"{cut['cut_s']:g} s cut of {cut['site']}: lost {cut['lost_events']} of "
                f"{cut['journal_events']}, dup received {cut['duplicates_received']}, archive "
                f"dup/lost {cut['archive_duplicates']}/{cut['archive_lost']}",
                f"bridge back {cut['reconnect_s']:.2f} s, caught up {cut['caught_up_s']:.2f} s "
                "after the link",
            ],
            [
                "",
                f"live vitals in the window: {r['vitals_window']['central']} at the centre "
                "(own connection)",
                f"{r['vitals_window']['site']} on the sites",
            ],
        ]
    if "archive" in results:
        r = results["archive"]
        ref = r["reference"]
        out += [
            [
                "archive",
                f"{r['events']} events ({r['rooms']} rooms × {r['days']} d, {r['db_mb']:.0f} MB): "
                f"ingest catch-up {r['catch_up_events_per_s']} ev/s, live "
                f"{r['live_events_per_s']} ev/s",
                f"bare INSERT, one FULL txn each: {ref['raw_insert_per_txn_per_s']} rows/s; "
                f"bare paho drain: {ref['bare_paho_drain_per_s']} msg/s",
            ],
            [
                "",
                f"course p50/p99 {r['course_ms']['p50_ms']:.1f}/{r['course_ms']['p99_ms']:.1f} ms"
                f" over MQTT (in-process {r['course_direct_ms']['p99_ms']:.1f} ms p99), "
                f"clinicd RSS {r['clinicd_rss_mb']:.1f} MB",
                f"paho echo p99 {ref['echo_ms']['p99_ms']:.2f} ms; bare paho RSS "
                f"{ref['bare_paho_rss_mb']:.1f} MB",
            ],
            [
                "",
                f"HL7 due-session look, per turn: {r['hl7_scan_ms']['first_turn_ms']:.2f} ms "
                f"with {r['hl7_scan_ms']['backlog']} to queue, "
                f"{r['hl7_scan_ms']['all_queued_ms']:.3f} ms once queued",
                f"count(*) of the sessions: {ref['sessions_count_ms']:.2f} ms",
            ],
        ]
    return out


def render(results: dict[str, Any], targets: list[dict[str, Any]], errors: dict[str, str]) -> str:
    """The printed table."""
    table = [["benchmark", "figure", "reference (same run)"], *rows(results)]
    widths = [max(len(r[i]) for r in table) for i in range(3)]
    lines = []
    for i, r in enumerate(table):
        lines.append("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    lines.append("")
    lines.append("targets (from the issue)")
    for t in targets:
        value = t["value"]
        shown = f"{value:.3f}".rstrip("0").rstrip(".") if isinstance(value, float) else str(value)
        lines.append(
            f"  {t['verdict']:<4}  {t['bench']:<10} {t['figure']:<18} {shown} {t['unit']}".rstrip()
            + f"   (target {t['target']})"
        )
    for name, err in errors.items():
        lines.append(f"  ERROR {name}: {err.splitlines()[0] if err else ''}")
    return "\n".join(lines)


# --- running ------------------------------------------------------------------------------


def run(
    names: list[str], plan: Plan, workdir: Path, log: Callable[[str], None]
) -> tuple[dict[str, Any], dict[str, str]]:
    """Run the benchmarks; (results by name, errors by name)."""
    from bench import (
        archive,
        bridge,
        clinic,
        flood,
        footprint,
        journal_cost,
        latency,
        recovery,
        writes,
    )

    results: dict[str, Any] = {}
    errors: dict[str, str] = {}

    def attempt(name: str, fn: Callable[[], Any], *, cleanup: bool = True) -> None:
        log(f"bench: {name} …")
        t0 = time.monotonic()
        try:
            results[name] = fn()
        except Exception as exc:
            errors[name] = f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"
            log(f"bench: {name} FAILED: {exc}")
        finally:
            if cleanup:  # a benchmark that failed half-way leaves nothing running
                reap_all()
        log(f"bench: {name} done in {time.monotonic() - t0:.1f} s")

    if "journal" in names:
        attempt("journal", lambda: journal_cost.bench_journal(workdir / "journal", plan.journal_n))
    if "writes" in names:
        attempt(
            "writes",
            lambda: writes.bench_writes(
                workdir / "writes", plan.writes_idle_s, plan.writes_session_s
            ),
        )
    lat_names = [n for n in ("roundtrip", "call", "alarm") if n in names]
    if lat_names:
        try:
            with latency.LatencyRig(workdir / "latency") as rig:
                if "roundtrip" in names:
                    attempt(
                        "roundtrip",
                        lambda: latency.bench_roundtrip(rig, plan.roundtrip_samples),
                        cleanup=False,
                    )
                if "call" in names:
                    attempt("call", lambda: latency.bench_call(rig, plan.samples), cleanup=False)
                if "alarm" in names:
                    attempt(
                        "alarm",
                        lambda: latency.bench_alarm_sim(rig, plan.alarm_samples),
                        cleanup=False,
                    )
                    attempt(
                        "alarm_pty",
                        lambda: latency.bench_alarm_pty(rig, plan.alarm_samples),
                        cleanup=False,
                    )
        except Exception as exc:
            for n in lat_names:
                errors.setdefault(n, f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}")
            log(f"bench: latency rig FAILED: {exc}")
        finally:
            reap_all()
    if "startup" in names:
        attempt("startup", lambda: footprint.bench_startup(workdir / "startup", plan.startup_runs))
    if "footprint" in names:
        attempt(
            "footprint", lambda: footprint.bench_footprint(workdir / "footprint", plan.footprint_s)
        )
    if "kill9" in names:
        attempt("kill9", lambda: recovery.bench_kill9(workdir / "kill9", plan.kill9_runs))
    if "outage" in names:
        attempt(
            "outage",
            lambda: recovery.bench_outage(workdir / "outage", plan.outage_s, plan.inject_hz),
        )
    if "clinic" in names:
        attempt(
            "clinic",
            lambda: clinic.bench_clinic(workdir / "clinic", plan.rooms, plan.clinic_window_s),
        )
    if "flood" in names:
        attempt("flood", lambda: flood.bench_flood(workdir / "flood", plan.flood_cycles))
    if "bridge" in names:
        attempt(
            "bridge",
            lambda: bridge.bench_bridge(
                workdir / "bridge", plan.bridge_rooms, plan.bridge_window_s, plan.bridge_cut_s
            ),
        )
    if "pi" in names:
        attempt(
            "pi",
            lambda: footprint.bench_footprint(workdir / "pi", plan.footprint_s, cpus=[0]),
        )
    if "archive" in names:
        attempt(
            "archive",
            lambda: archive.bench_archive(
                workdir / "archive",
                plan.archive_rooms,
                plan.archive_days,
                plan.archive_queries,
                plan.archive_ingest_n,
                log,
            ),
        )
    return results, errors


def main(argv: list[str] | None = None) -> int:
    """Run, print, write; 0 unless a benchmark could not be measured."""
    args = parse_args(argv)
    names = selected(args.only)
    plan = make_plan(args)
    if args.broker_nagle:
        infra.BROKER_EXTRA_CONF = ""
    if shutil.which("mosquitto") is None and set(names) - {"journal", "writes"}:
        print("bench: mosquitto is not installed (make deps)", file=sys.stderr)
        return 1
    workdir = Path(tempfile.mkdtemp(prefix="roomd-bench-"))
    started = datetime.now(UTC)
    t0 = time.monotonic()

    def log(msg: str) -> None:
        print(f"[{time.monotonic() - t0:6.1f}s] {msg}", file=sys.stderr, flush=True)

    try:
        results, errors = run(names, plan, workdir, log)
    finally:
        reap_all()
    targets = check_targets(results)
    doc = {
        "meta": {
            "started": started.isoformat(timespec="seconds"),
            "duration_s": round(time.monotonic() - t0, 1),
            "host": platform.node(),
            "cpus": _cpus(),
            "python": platform.python_version(),
            "kernel": platform.release(),
            "quick": args.quick,
            "only": names,
            "plan": plan.__dict__,
            "broker_extra_conf": infra.BROKER_EXTRA_CONF,
        },
        "results": results,
        "targets": targets,
        "errors": errors,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=2) + "\n")
    print(render(results, targets, errors))
    print(f"\nwritten: {out}")
    if errors or args.keep:
        print(f"work directory (logs): {workdir}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    return 1 if errors else 0


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0))
