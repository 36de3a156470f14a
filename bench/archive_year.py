"""A year of a clinic's archive, generated: the sessions of 30 rooms (three a weekday, each
~150 events made of the contract's own examples: plan, phases, lights, music, NIBP every five
minutes, check-ins, an alarm), and the archive database holding them, built once and cached.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from controller.event_data import EVENT_DATA, PLAN
from controller.models import Event, iso_utc
from mqtt_bridge.clinicd.course import keep_summaries
from mqtt_bridge.clinicd.store import Store

SESSIONS_PER_DAY = 3
SESSIONS_PER_PATIENT = 6
YEAR_START = datetime(2025, 1, 6, 8, 0, tzinfo=UTC)
FIXTURE_VERSION = 2
"""Bump when the generator changes: the cached fixture is then rebuilt."""


def _session(sid: str, number: int, patient: str) -> list[tuple[float, str, dict[str, Any]]]:
    """One session's (seconds from its start, type, data), from the contract's examples."""
    plan = {**PLAN, "session_id": sid, "patient_ref": patient, "session_number": number}
    ex = {t: m.example for t, m in EVENT_DATA.items()}
    out: list[tuple[float, str, dict[str, Any]]] = [
        (0, "session_configured", {**ex["session_configured"], "plan": plan}),
        (60, "session_started", {**ex["session_started"], "plan": plan}),
        (61, "limits_in_force", ex["limits_in_force"]),
    ]
    for i, (a, b) in enumerate(
        [("check_in", "intentions"), ("intentions", "pre_infusion"), ("pre_infusion", "infusion")]
    ):
        out.append((120 + 300 * i, "phase_changed", {"from": a, "to": b, "by": "dr-lee"}))
        out.append((121 + 300 * i, "lighting_changed", ex["lighting_changed"]))
        out.append((122 + 300 * i, "confirmed", ex["confirmed"]))
    out += [
        (1000, "music_started", ex["music_started"]),
        (1020, "infusion_started", ex["infusion_started"]),
    ]
    for k in range(30):  # NIBP every 5 min for 2.5 h
        t = 1020 + 300 * k
        out += [(t, "nibp_due", ex["nibp_due"]), (t + 1, "nibp_requested", ex["nibp_requested"])]
        out.append((t + 40, "nibp_result", {**ex["nibp_result"], "sys": 120 + k % 17}))
    for k in range(8):
        t = 1030 + 900 * k
        out += [
            (t, "track_started", ex["track_started"]),
            (t + 890, "track_ended", ex["track_ended"]),
        ]
        out += [
            (t + 5, "checkin_due", ex["checkin_due"]),
            (t + 60, "checkin_recorded", ex["checkin_recorded"]),
        ]
    for i, kind in enumerate(
        ("alarm_raised", "alarm_latched", "alarm_acknowledged", "alarm_cleared")
    ):
        out.append((3000 + 10 * i, kind, ex[kind]))
    out += [
        (3420, "infusion_completed", ex["infusion_completed"]),
        (3421, "phase_changed", {"from": "infusion", "to": "integration", "by": "dr-lee"}),
        (9000, "session_ended", ex["session_ended"]),
        (9001, "report_ready", ex["report_ready"]),
        (9002, "discharged", ex["discharged"]),
    ]
    return sorted(out, key=lambda x: x[0])


@dataclass(frozen=True)
class Slot:
    """One generated session: where, when, whose."""

    room: str
    session_id: str
    start: datetime
    patient: str
    number: int

    def events(self) -> list[tuple[float, str, dict[str, Any]]]:
        """Its events: (seconds from its start, type, data)."""
        return _session(self.session_id, self.number, self.patient)


def _slots(room: str, days: int) -> Iterator[Slot]:
    """One room's sessions over ``days`` (weekdays only). Patients take six sessions each in
    one slot of the day, so each ``course`` covers six sessions over about two weeks."""
    n = 0
    for day in range(days):
        start = YEAR_START + timedelta(days=day)
        if start.weekday() >= 5:
            continue
        for slot in range(SESSIONS_PER_DAY):
            yield Slot(
                room,
                f"{room}-d{day:03d}-s{slot}",
                start + timedelta(hours=3 * slot),
                f"P-{room}-{slot}-{n // (SESSIONS_PER_PATIENT * SESSIONS_PER_DAY)}",
                (n // SESSIONS_PER_DAY) % SESSIONS_PER_PATIENT + 1,
            )
            n += 1


def room_year(room: str, days: int) -> Iterator[list[Event]]:
    """One room's events over ``days``, a session at a time; seq from 1."""
    seq = 0
    for slot in _slots(room, days):
        batch = []
        for offset, kind, data in slot.events():
            seq += 1
            ts = slot.start + timedelta(seconds=offset)
            batch.append(Event(seq=seq, ts=ts, session_id=slot.session_id, type=kind, data=data))
        yield batch


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "roomd-bench"


def year_fixture(rooms: int, days: int, log: Callable[[str], None]) -> tuple[Path, list[str]]:
    """The generated archive of ``rooms`` × ``days``, built once and kept in the user's cache
    (``~/.cache/roomd-bench``; rebuilt when the generator changes); (path, patients)."""
    path = _cache_dir() / f"archive-v{FIXTURE_VERSION}-{rooms}x{days}.sqlite"
    patients = sorted({s.patient for r in range(rooms) for s in _slots(f"room-{r:02d}", days)})
    if not path.exists():
        log(f"bench: building the archive fixture {path} (once) …")
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".building")
        tmp.unlink(missing_ok=True)
        build_year(tmp, rooms, days)
        tmp.rename(path)
    return path, patients


def build_year(path: Path, rooms: int, days: int) -> int:
    """Write the generated year straight into a new archive database (the archive's own
    schema, ``Store``'s), with the sessions' summaries kept as the archive keeps them; the
    events written. A fixture, built fast: the archive's ingest is measured separately,
    through its API."""
    Store(path).close()  # the schema
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=OFF")
    db.execute("PRAGMA synchronous=OFF")
    db.execute("PRAGMA cache_size=-262144")
    db.execute("BEGIN")
    total = 0
    for r in range(rooms):
        room = f"room-{r:02d}"
        seq = 0
        for slot in _slots(room, days):
            rows = []
            for offset, kind, data in slot.events():
                seq += 1
                ts = iso_utc(slot.start + timedelta(seconds=offset))
                rows.append((room, seq, ts, slot.session_id, kind, json.dumps(data)))
            db.executemany("INSERT INTO events VALUES (?, ?, ?, ?, ?, ?)", rows)
            db.execute(
                "INSERT INTO sessions (session_id, room_id, patient_ref, started_at, ended_at, "
                "notes_state) VALUES (?, ?, ?, ?, ?, 'fetched')",
                (slot.session_id, room, slot.patient, rows[1][2], rows[-1][2]),
            )
            total += len(rows)
        db.execute("INSERT INTO rooms (room_id, complete_through) VALUES (?, ?)", (room, seq))
    db.execute("COMMIT")
    db.execute("PRAGMA journal_mode=WAL")
    db.close()
    store = Store(path)
    try:
        with store.batch():
            keep_summaries(store)
    finally:
        store.close()
    return total
