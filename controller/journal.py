"""The journal: every event, in ``seq`` order, committed to SQLite before it is published.

It is also the MQTT outbox (``delivered`` is set when the broker acknowledges an event), the
record of replies for duplicate detection, and the store of a session's vitals readings.
Storage faults and what the journal does about them: docs/ARCHITECTURE.md, "Storage".
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections import deque
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from controller.config import JournalSection
from controller.models import Event, iso_utc, parse_utc
from controller.storage import (
    JournalDamaged,
    SeqMark,
    Space,
    StorageError,
    classify,
    free_space,
)

log = logging.getLogger("roomd.journal")

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
CREATE INDEX IF NOT EXISTS vitals_session ON vitals(session_id, id);
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

VITALS_BATCH = 30
"""Vitals samples are written in batches (and with every event): they are 1 Hz telemetry,
re-sent by the monitor, so a commit each would cost the SD card more than the loss of a few
seconds is worth."""
VITALS_HELD_MAX = 3 * 3600
"""Samples kept in memory while the disk refuses them (3 hours at 1 Hz); beyond, the oldest
are dropped and counted (``vitals_dropped``)."""
WRITES_HELD_MAX = 10_000
"""Replies, delivery marks and settings kept in memory while the disk refuses them; beyond,
they are dropped and counted (``writes_dropped``)."""

Statement = tuple[str, tuple[Any, ...]]
_INSERT_VITALS = "INSERT INTO vitals(ts, session_id, kind, payload) VALUES (?,?,?,?)"


class Journal:
    """The room's SQLite journal (WAL, ``synchronous=FULL``); used from the core thread only.

    Every failure is raised as one ``StorageError`` (controller/storage.py) saying what
    happened. An event that cannot be written raises (the caller keeps it and tries again);
    the writes that can wait (vitals, replies, delivery marks, settings) are held in memory,
    bounded, and written by ``flush`` once the disk takes them; ``fault`` says why they wait.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        synchronous: str = "FULL",
        settings: JournalSection | None = None,
    ) -> None:
        self.path = Path(path)
        self.settings = settings or JournalSection()
        self.fault: StorageError | None = None
        self.vitals_dropped = 0
        self.writes_dropped = 0
        self._vitals: deque[tuple[Any, ...]] = deque()
        self._held: list[Statement] = []
        self._held_replies: dict[str, str] = {}
        self._mark_stale = False
        self._undelivered = 0
        self._mark = SeqMark(f"{self.path}.seq")
        self._db: sqlite3.Connection | None = None
        # Seqs committed before and missing now (a lost -wal): (first, last), said once.
        self.lost: tuple[int, int] | None = None
        try:
            self._open(synchronous)
        except (sqlite3.Error, OSError, ValueError) as exc:
            if self._db is not None:
                with suppress(sqlite3.Error):
                    self._db.close()
            error = classify(exc, self.path)
            raise type(error)(self.path, f"{error.detail}; {error.hint}") from exc

    def _open(self, synchronous: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists():
            # SQLite would open an unwritable file read-only and fail later, vaguely: ask the
            # file system now, for its own reason (EACCES, EROFS).
            with open(self.path, "r+b"):
                pass
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db = db
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(f"PRAGMA synchronous={synchronous}")
        verdict = db.execute("PRAGMA quick_check").fetchone()[0]
        if verdict != "ok":
            raise JournalDamaged(self.path, f"failed its integrity check ({verdict})")
        db.executescript(SCHEMA)
        # quick_check reads pages, not meaning: a flipped byte inside an event's JSON passes
        # it and would stop every resume; such a row is damage, found here, not mid-replay.
        bad = db.execute("SELECT seq FROM events WHERE NOT json_valid(data) LIMIT 1").fetchone()
        if bad is not None:
            raise JournalDamaged(self.path, f"event {bad[0]} does not parse")
        stored = db.execute("SELECT MAX(seq) FROM events").fetchone()[0] or 0
        base = self.get_meta("seq_base")
        # After a recovery the new file continues the old one's numbering: seq never reused.
        floor = max(stored, int(base) - 1 if base else 0)
        mark = self._mark.read() or 0
        if mark > floor:
            # Committed events are gone (a -wal deleted or cut while the room was down): their
            # seqs were published and must never be given again.
            self.lost = (floor + 1, mark)
            self.set_meta("seq_base", str(mark + 1))
        self._last_seq: int = max(floor, mark)
        self._undelivered = self._count_undelivered()

    # --- writing --------------------------------------------------------------------------

    @property
    def db(self) -> sqlite3.Connection:
        """The open connection."""
        assert self._db is not None, "the journal is closed"
        return self._db

    def _write(self, statements: Sequence[Statement]) -> None:
        """Run ``statements`` in one transaction and commit it; a StorageError when it fails."""
        try:
            self.db.execute("BEGIN IMMEDIATE")
            for sql, params in statements:
                self.db.execute(sql, params)
            self.db.execute("COMMIT")
        except (sqlite3.Error, OSError) as exc:
            if self.db.in_transaction:
                with suppress(sqlite3.Error):
                    self.db.execute("ROLLBACK")
            raise classify(exc, self.path) from exc

    def _pending(self) -> list[Statement]:
        return [*self._held, *((_INSERT_VITALS, row) for row in self._vitals)]

    def flush(self) -> bool:
        """Write what waits in memory; True when nothing waits any more (``fault`` cleared)."""
        if self._held or self._vitals:
            try:
                self._write(self._pending())
            except StorageError as exc:
                self.fault = exc
                return False
            self._held.clear()
            self._held_replies.clear()
            self._vitals.clear()
        if self._mark_stale:
            try:
                self._mark.write(self._last_seq)
            except StorageError as exc:
                self.fault = exc
                return False
            self._mark_stale = False
        self.fault = None
        return True

    def _keep(self, sql: str, params: tuple[Any, ...]) -> None:
        """A write that may wait: try it now (with whatever waits before it), else hold it."""
        if len(self._held) >= WRITES_HELD_MAX:
            self.writes_dropped += 1
            log.error("journal: %d writes dropped while the disk refuses them", self.writes_dropped)
            return
        self._held.append((sql, params))
        if self.fault is None:
            self.flush()

    # --- events -------------------------------------------------------------------------

    @property
    def last_seq(self) -> int:
        """The highest ``seq`` written (0 for an empty journal)."""
        return self._last_seq

    def append(
        self, ts: datetime, session_id: str | None, type_: str, data: dict[str, Any]
    ) -> Event:
        """Write one event with the next ``seq`` and commit it (with what waits); return it.

        Raises a StorageError when the disk refuses it: nothing was written, the seq is not
        used, and the caller keeps the event to try again.
        """
        event = Event(seq=self._last_seq + 1, ts=ts, session_id=session_id, type=type_, data=data)
        payload = json.dumps(event.data, separators=(",", ":"))
        insert = (
            "INSERT INTO events(seq, ts, session_id, type, data) VALUES (?,?,?,?,?)",
            (event.seq, iso_utc(ts), session_id, type_, payload),
        )
        try:
            self._write([*self._pending(), insert])
        except StorageError as exc:
            self.fault = exc
            raise
        self._held.clear()
        self._held_replies.clear()
        self._vitals.clear()
        self._last_seq = event.seq
        self._undelivered += 1
        self._mark_stale = True
        self.flush()  # the high-water mark, and clears the fault
        return event

    def mark_delivered(self, seq: int) -> None:
        """Record that the broker acknowledged event ``seq`` (held while the disk refuses)."""
        self._undelivered = max(0, self._undelivered - 1)
        self._keep("UPDATE events SET delivered = 1 WHERE seq = ?", (seq,))

    def undelivered(self, limit: int = 1000) -> list[Event]:
        """Events the broker has not acknowledged yet, oldest first."""
        return self._events(
            "SELECT seq, ts, session_id, type, data FROM events WHERE delivered = 0 "
            "ORDER BY seq LIMIT ?",
            (limit,),
        )

    def undelivered_between(self, first: int, last: int, limit: int) -> list[Event]:
        """Unacknowledged events with ``first <= seq <= last``, oldest first."""
        return self._events(
            "SELECT seq, ts, session_id, type, data FROM events "
            "WHERE delivered = 0 AND seq BETWEEN ? AND ? ORDER BY seq LIMIT ?",
            (first, last, limit),
        )

    def count_undelivered(self) -> int:
        """How many events wait for the broker (the last count when the disk cannot say)."""
        try:
            self._undelivered = self._count_undelivered()
        except StorageError as exc:
            self.fault = exc
        return self._undelivered

    def _count_undelivered(self) -> int:
        rows = self._rows("SELECT COUNT(*) FROM events WHERE delivered = 0", ())
        return int(rows[0][0])

    def events_since(self, since_seq: int, limit: int = 1000) -> list[Event]:
        """Up to ``limit`` events with ``seq >= since_seq``, in order."""
        return self._events(
            "SELECT seq, ts, session_id, type, data FROM events WHERE seq >= ? "
            "ORDER BY seq LIMIT ?",
            (since_seq, limit),
        )

    def session_events(self, session_id: str) -> list[Event]:
        """Every event of one session, in order."""
        return self._events(
            "SELECT seq, ts, session_id, type, data FROM events WHERE session_id = ? ORDER BY seq",
            (session_id,),
        )

    def last_event(self, *types: str) -> Event | None:
        """The newest event of one of ``types``."""
        marks = ",".join("?" for _ in types)
        found = self._events(
            f"SELECT seq, ts, session_id, type, data FROM events WHERE type IN ({marks}) "
            "ORDER BY seq DESC LIMIT 1",
            types,
        )
        return found[0] if found else None

    def _rows(self, sql: str, params: tuple[Any, ...]) -> list[Any]:
        try:
            return self.db.execute(sql, params).fetchall()
        except (sqlite3.Error, OSError) as exc:
            raise classify(exc, self.path) from exc

    def _events(self, sql: str, params: tuple[Any, ...]) -> list[Event]:
        return [_event(row, self.path) for row in self._rows(sql, params)]

    # --- replies ------------------------------------------------------------------------

    def find_reply(self, request_id: str) -> str | None:
        """The JSON of the reply already given to ``request_id``, if any."""
        if request_id in self._held_replies:
            return self._held_replies[request_id]
        rows = self._rows("SELECT reply FROM replies WHERE request_id = ?", (request_id,))
        return str(rows[0][0]) if rows else None

    def record_reply(self, request_id: str, reply_json: str) -> None:
        """Keep a command's reply so a repeated ``request_id`` is never run twice."""
        self._held_replies.setdefault(request_id, reply_json)
        self._keep(
            "INSERT OR IGNORE INTO replies(request_id, seq, reply) VALUES (?,?,?)",
            (request_id, self._last_seq, reply_json),
        )

    # --- vitals and meta ----------------------------------------------------------------

    def record_vitals(self, ts: datetime, session_id: str | None, kind: str, payload: str) -> None:
        """Keep one vitals sample or NIBP reading (written in batches, and with every event)."""
        if len(self._vitals) >= VITALS_HELD_MAX:
            self._vitals.popleft()
            self.vitals_dropped += 1
        self._vitals.append((iso_utc(ts), session_id, kind, payload))
        if len(self._vitals) >= VITALS_BATCH and self.fault is None:
            self.flush()

    def vitals(self, session_id: str) -> list[tuple[str, str, str]]:
        """Every (ts, kind, payload JSON) kept for a session, in order."""
        self.flush()
        rows = self._rows(
            "SELECT ts, kind, payload FROM vitals WHERE session_id = ? ORDER BY id", (session_id,)
        )
        return [(r[0], r[1], r[2]) for r in rows]

    def prune(self, now: datetime) -> int:
        """Drop the vitals of ended sessions older than the retention.

        Events are the record and are never pruned; an unfinished session's vitals neither.
        Returns how many rows went.
        """
        cutoff = iso_utc(now - timedelta(days=self.settings.retention_days))
        sql = (
            "DELETE FROM vitals WHERE session_id IN (SELECT session_id FROM events "
            "WHERE type = 'session_ended' AND ts < ? AND session_id IS NOT NULL) "
            "OR (session_id IS NULL AND ts < ?)"
        )
        before = self.db.total_changes
        self._write([(sql, (cutoff, cutoff))])
        return self.db.total_changes - before

    def get_meta(self, key: str) -> str | None:
        """A stored setting of the room's own (for example the time-scale anchor)."""
        for sql, params in reversed(self._held):
            if sql.startswith("INSERT INTO meta") and params[0] == key:
                return str(params[1])
        rows = self._rows("SELECT value FROM meta WHERE key = ?", (key,))
        return str(rows[0][0]) if rows else None

    def set_meta(self, key: str, value: str) -> None:
        """Store a setting of the room's own."""
        self._keep(
            "INSERT INTO meta(key, value) VALUES (?,?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    def space(self) -> Space | None:
        """Free space where the journal lives (None when even that cannot be asked)."""
        try:
            return free_space(self.path)
        except OSError:
            return None

    def integrity_check(self) -> str:
        """SQLite's full integrity check ("ok" when sound)."""
        return str(self._rows("PRAGMA integrity_check", ())[0][0])

    def close(self) -> None:
        """Write what is pending (when the disk takes it) and close the file."""
        try:
            if not self.flush():
                log.error(
                    "journal closed with %d vitals and %d writes unwritten: %s",
                    len(self._vitals),
                    len(self._held),
                    self.fault,
                )
        finally:
            self._mark.close()
            if self._db is not None:
                self._db.close()
                self._db = None

    def add_note(self, ts: datetime, session_id: str | None, kind: str, by: str, text: str) -> str:
        """Keep a clinician's note (clinical text: never an event); return its ``note_id``,
        named after the seq of the event that announces it next (seq is never reused)."""
        note_id = f"n-{self._last_seq + 1}"
        self._keep(
            "INSERT INTO notes(note_id, ts, session_id, kind, by, text) VALUES (?,?,?,?,?,?)",
            (note_id, iso_utc(ts), session_id, kind, by, text),
        )
        return note_id

    def notes(self, session_id: str) -> list[dict[str, str]]:
        """One session's notes in order: ``{note_id, kind, by, ts, text}`` each."""
        self.flush()
        rows = self._rows(
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


def open_journal(
    path: str | Path, now: datetime, settings: JournalSection | None = None
) -> tuple[Journal, Recovery | None]:
    """Open the journal; a damaged one is kept aside (never deleted) and a new one started.

    Only damage takes this path: any other StorageError (full, I/O, read-only, permission)
    is raised with the file left where it is. The new journal's first ``seq`` follows the
    highest of the damaged one's last readable ``seq`` and the high-water mark; when neither
    can be read, it starts at the current time in milliseconds, far above any count a room
    reaches, so a ``seq`` is still never reused.
    """
    path = Path(path)
    try:
        return Journal(path, settings=settings), None
    except JournalDamaged as exc:
        reason = str(exc)
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    aside = path.with_name(f"{path.name}.damaged-{stamp}")
    for suffix in ("", "-wal", "-shm"):
        part = Path(f"{path}{suffix}")
        if part.exists():
            part.rename(Path(f"{aside}{suffix}"))
    last = _readable_last_seq(aside)
    mark = SeqMark(f"{path}.seq").read()  # stays: it is the room's, not the file's
    known = [s for s in (last, mark) if s is not None]
    first = max(known) + 1 if known else int(now.timestamp() * 1000)
    journal = Journal(path, settings=settings)
    journal.set_meta("seq_base", str(first))
    journal._last_seq = first - 1
    journal.lost = None  # said by the recovery itself
    return journal, Recovery(str(aside), last, first, reason)


def _readable_last_seq(path: Path) -> int | None:
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
            row = db.execute("SELECT MAX(seq) FROM events").fetchone()
            return int(row[0]) if row and row[0] is not None else 0
    except sqlite3.Error:
        return None


def _event(row: Any, path: Path) -> Event:
    try:
        data = json.loads(row[4])
        return Event(seq=row[0], ts=parse_utc(row[1]), session_id=row[2], type=row[3], data=data)
    except ValueError as exc:
        raise JournalDamaged(path, f"event {row[0]} does not parse: {exc}") from exc
