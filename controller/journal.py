"""The journal: every event, in ``seq`` order, committed to SQLite before it is published.

It is also the MQTT outbox (``delivered`` is set when the broker acknowledges an event), the
record of replies for duplicate detection, and the store of vitals readings.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from controller.errors import JournalError
from controller.models import Event, iso_utc, parse_utc

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY,
    ts TEXT NOT NULL,
    session_id TEXT,
    type TEXT NOT NULL,
    data TEXT NOT NULL,
    delivered INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS events_undelivered ON events(seq) WHERE delivered = 0;
CREATE INDEX IF NOT EXISTS events_session ON events(session_id, seq);
CREATE TABLE IF NOT EXISTS replies (
    request_id TEXT PRIMARY KEY,
    seq INTEGER NOT NULL,
    reply TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS vitals (
    id INTEGER PRIMARY KEY,
    ts TEXT NOT NULL,
    session_id TEXT,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS notes (
    id INTEGER PRIMARY KEY,
    note_id TEXT NOT NULL UNIQUE,
    ts TEXT NOT NULL,
    session_id TEXT,
    kind TEXT NOT NULL,
    by TEXT NOT NULL,
    text TEXT NOT NULL
);
"""

VITALS_BATCH = 10
"""Vitals samples are committed in batches (and with every event): they are 1 Hz and re-sent
by the monitor, so an fsync each would cost more than the loss of a few seconds is worth."""


class Journal:
    """The room's SQLite journal (WAL, ``synchronous=FULL``); used from the core thread only."""

    def __init__(self, path: str | Path, *, synchronous: str = "FULL") -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(f"PRAGMA synchronous={synchronous}")
            verdict = self._db.execute("PRAGMA quick_check").fetchone()[0]
        except sqlite3.DatabaseError as exc:
            raise JournalError(
                f"journal {self.path} cannot be opened ({exc}); move it aside "
                "(keep it for the record) and start again with an empty data directory"
            ) from None
        if verdict != "ok":
            self._db.close()
            raise JournalError(
                f"journal {self.path} failed its integrity check ({verdict}); move it aside "
                "(keep it for the record) and start again with an empty data directory"
            )
        self._db.executescript(SCHEMA)
        row = self._db.execute("SELECT MAX(seq) FROM events").fetchone()
        base = self.get_meta("seq_base")
        # After a recovery the new file continues the old one's numbering: seq never reused.
        self._last_seq: int = max(row[0] or 0, int(base) - 1 if base else 0)
        self._pending_vitals = 0

    # --- events -------------------------------------------------------------------------

    @property
    def last_seq(self) -> int:
        """The highest ``seq`` written (0 for an empty journal)."""
        return self._last_seq

    def append(
        self, ts: datetime, session_id: str | None, type_: str, data: dict[str, Any]
    ) -> Event:
        """Write one event with the next ``seq`` and commit it; return it."""
        event = Event(seq=self._last_seq + 1, ts=ts, session_id=session_id, type=type_, data=data)
        payload = json.dumps(event.data, separators=(",", ":"))
        try:
            self._db.execute(
                "INSERT INTO events(seq, ts, session_id, type, data) VALUES (?,?,?,?,?)",
                (event.seq, iso_utc(ts), session_id, type_, payload),
            )
            self._commit()
        except sqlite3.Error as exc:
            raise JournalError(f"journal write failed: {exc}") from exc
        self._last_seq = event.seq
        return event

    def mark_delivered(self, seq: int) -> None:
        """Record that the broker acknowledged event ``seq``."""
        self._db.execute("UPDATE events SET delivered = 1 WHERE seq = ?", (seq,))
        self._commit()

    def undelivered(self, limit: int = 1000) -> list[Event]:
        """Events the broker has not acknowledged yet, oldest first."""
        rows = self._db.execute(
            "SELECT seq, ts, session_id, type, data FROM events WHERE delivered = 0 "
            "ORDER BY seq LIMIT ?",
            (limit,),
        )
        return [_event(r) for r in rows]

    def undelivered_between(self, first: int, last: int, limit: int) -> list[Event]:
        """Unacknowledged events with ``first <= seq <= last``, oldest first."""
        rows = self._db.execute(
            "SELECT seq, ts, session_id, type, data FROM events "
            "WHERE delivered = 0 AND seq BETWEEN ? AND ? ORDER BY seq LIMIT ?",
            (first, last, limit),
        )
        return [_event(r) for r in rows]

    def count_undelivered(self) -> int:
        """How many events wait for the broker."""
        return int(
            self._db.execute("SELECT COUNT(*) FROM events WHERE delivered = 0").fetchone()[0]
        )

    def events_since(self, since_seq: int, limit: int = 1000) -> list[Event]:
        """Up to ``limit`` events with ``seq >= since_seq``, in order."""
        rows = self._db.execute(
            "SELECT seq, ts, session_id, type, data FROM events WHERE seq >= ? "
            "ORDER BY seq LIMIT ?",
            (since_seq, limit),
        )
        return [_event(r) for r in rows]

    def session_events(self, session_id: str) -> list[Event]:
        """Every event of one session, in order."""
        rows = self._db.execute(
            "SELECT seq, ts, session_id, type, data FROM events WHERE session_id = ? ORDER BY seq",
            (session_id,),
        )
        return [_event(r) for r in rows]

    def last_event(self, *types: str) -> Event | None:
        """The newest event of one of ``types``."""
        marks = ",".join("?" for _ in types)
        row = self._db.execute(
            f"SELECT seq, ts, session_id, type, data FROM events WHERE type IN ({marks}) "
            "ORDER BY seq DESC LIMIT 1",
            types,
        ).fetchone()
        return _event(row) if row else None

    # --- replies ------------------------------------------------------------------------

    def find_reply(self, request_id: str) -> str | None:
        """The JSON of the reply already given to ``request_id``, if any."""
        row = self._db.execute(
            "SELECT reply FROM replies WHERE request_id = ?", (request_id,)
        ).fetchone()
        return row[0] if row else None

    def record_reply(self, request_id: str, reply_json: str) -> None:
        """Keep a command's reply so a repeated ``request_id`` is never run twice."""
        self._db.execute(
            "INSERT OR IGNORE INTO replies(request_id, seq, reply) VALUES (?,?,?)",
            (request_id, self._last_seq, reply_json),
        )
        self._commit()

    # --- vitals and meta ----------------------------------------------------------------

    def record_vitals(self, ts: datetime, session_id: str | None, kind: str, payload: str) -> None:
        """Keep one vitals sample or NIBP reading (committed in small batches)."""
        if not self._db.in_transaction:
            self._db.execute("BEGIN")
        self._db.execute(
            "INSERT INTO vitals(ts, session_id, kind, payload) VALUES (?,?,?,?)",
            (iso_utc(ts), session_id, kind, payload),
        )
        self._pending_vitals += 1
        if self._pending_vitals >= VITALS_BATCH:
            self._commit()

    def vitals(self, session_id: str) -> list[tuple[str, str, str]]:
        """Every (ts, kind, payload JSON) kept for a session, in order."""
        self._commit()
        rows = self._db.execute(
            "SELECT ts, kind, payload FROM vitals WHERE session_id = ? ORDER BY id", (session_id,)
        )
        return [(r[0], r[1], r[2]) for r in rows]

    def get_meta(self, key: str) -> str | None:
        """A stored setting of the room's own (for example the time-scale anchor)."""
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        """Store a setting of the room's own."""
        self._db.execute(
            "INSERT INTO meta(key, value) VALUES (?,?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, value),
        )
        self._commit()

    def integrity_check(self) -> str:
        """SQLite's full integrity check ("ok" when sound)."""
        return str(self._db.execute("PRAGMA integrity_check").fetchone()[0])

    def close(self) -> None:
        """Commit what is pending and close the file."""
        try:
            self._commit()
        finally:
            self._db.close()

    def _commit(self) -> None:
        # Autocommit mode: each statement commits by itself; vitals ride along in a
        # transaction opened by record_vitals until the next event or batch end.
        if self._db.in_transaction:
            self._db.execute("COMMIT")
        self._pending_vitals = 0

    def add_note(self, ts: datetime, session_id: str | None, kind: str, by: str, text: str) -> str:
        """Keep a clinician's note (clinical text: never an event); return its ``note_id``,
        named after the seq of the event that announces it next (seq is never reused)."""
        self._commit()
        note_id = f"n-{self._last_seq + 1}"
        self._db.execute(
            "INSERT INTO notes(note_id, ts, session_id, kind, by, text) VALUES (?,?,?,?,?,?)",
            (note_id, iso_utc(ts), session_id, kind, by, text),
        )
        return note_id

    def notes(self, session_id: str) -> list[dict[str, str]]:
        """One session's notes in order: ``{note_id, kind, by, ts, text}`` each."""
        rows = self._db.execute(
            "SELECT note_id, kind, by, ts, text FROM notes WHERE session_id = ? ORDER BY id",
            (session_id,),
        )
        return [dict(zip(NOTE_FIELDS, row, strict=True)) for row in rows]


NOTE_FIELDS = ("note_id", "kind", "by", "ts", "text")
"""The fields of one note, as ``notes`` returns it."""


@dataclass(frozen=True)
class Recovery:
    """What ``open_journal`` did with a damaged journal."""

    damaged_file: str
    last_seq: int | None
    first_seq: int
    reason: str


def open_journal(path: str | Path, now: datetime) -> tuple[Journal, Recovery | None]:
    """Open the journal; a damaged one is kept aside (never deleted) and a new one started.

    The new journal's first ``seq`` follows the damaged one's last readable ``seq``; when even
    that cannot be read, it starts at the current time in milliseconds, far above any count a
    room reaches, so a ``seq`` is still never reused.
    """
    path = Path(path)
    try:
        return Journal(path), None
    except JournalError as exc:
        if not path.exists():
            raise
        reason = str(exc)
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    aside = path.with_name(f"{path.name}.damaged-{stamp}")
    for suffix in ("", "-wal", "-shm"):
        part = Path(f"{path}{suffix}")
        if part.exists():
            part.rename(Path(f"{aside}{suffix}"))
    last = _readable_last_seq(aside)
    first = last + 1 if last is not None else int(now.timestamp() * 1000)
    journal = Journal(path)
    journal.set_meta("seq_base", str(first))
    journal._last_seq = first - 1
    return journal, Recovery(str(aside), last, first, reason)


def _readable_last_seq(path: Path) -> int | None:
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
            row = db.execute("SELECT MAX(seq) FROM events").fetchone()
            return int(row[0]) if row and row[0] is not None else 0
    except sqlite3.Error:
        return None


def _event(row: Any) -> Event:
    return Event(
        seq=row[0], ts=parse_utc(row[1]), session_id=row[2], type=row[3], data=json.loads(row[4])
    )
