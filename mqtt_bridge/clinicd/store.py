"""The archive's SQLite file: every room's events exactly once, the notes, the HL7 outbox.

One ``Store`` per thread (SQLite connections are not shared); WAL lets the HL7 sender read
and write while the ingest thread writes. ``synchronous=FULL``: an event the archive has
stored survives a power cut, so it never needs to be fetched twice. The worker writes what has
arrived in one transaction (``batch``): one commit, one fsync, however many events.

``summaries`` keeps each session's summary as computed from its events, with the number of
events it was computed from: events are only ever added, so a different count means stale.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Container, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic_core import to_json

from controller.models import Event, iso_utc, parse_utc

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    room_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    ts TEXT NOT NULL,
    session_id TEXT,
    type TEXT NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (room_id, seq)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS events_by_session ON events (session_id, room_id, seq);
-- each session's end: whether a session is whole is one look-up, not a walk of its events
CREATE INDEX IF NOT EXISTS events_session_ended ON events (session_id, room_id, seq)
    WHERE type = 'session_ended';
CREATE TABLE IF NOT EXISTS rooms (
    room_id TEXT PRIMARY KEY,
    -- every seq up to here is stored, or the room said it has none (a recovered journal)
    complete_through INTEGER NOT NULL DEFAULT 0,
    last_event_at TEXT
);
CREATE TABLE IF NOT EXISTS sessions (
    session_id TEXT PRIMARY KEY,
    room_id TEXT NOT NULL,
    patient_ref TEXT,
    started_at TEXT,
    ended_at TEXT,
    noted INTEGER NOT NULL DEFAULT 0,  -- a note_recorded was seen
    -- NULL: to fetch (once ended or noted); fetched; unsupported (no notes verb); error
    notes_state TEXT,
    hl7_queued INTEGER NOT NULL DEFAULT 0  -- its HL7 message is in the outbox
);
CREATE INDEX IF NOT EXISTS sessions_by_patient ON sessions (patient_ref, started_at);
-- the few sessions whose notes are still to fetch: the worker asks on every turn
CREATE INDEX IF NOT EXISTS sessions_notes_due ON sessions (room_id) WHERE notes_state IS NULL;
CREATE TABLE IF NOT EXISTS notes (
    session_id TEXT NOT NULL,
    note_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    by TEXT,
    ts TEXT,
    text TEXT NOT NULL,
    PRIMARY KEY (session_id, note_id)
);
-- a session's summary from its events (course.py), kept so a course query decodes no events
CREATE TABLE IF NOT EXISTS summaries (
    session_id TEXT PRIMARY KEY,
    events INTEGER NOT NULL,  -- the events it was computed from: another count is stale
    summary TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS outbox (
    session_id TEXT PRIMARY KEY,
    room_id TEXT NOT NULL,
    message TEXT NOT NULL,
    -- pending (never answered), accepted (AA), refused (AE/AR: kept, retried, flagged)
    state TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    next_try_at TEXT NOT NULL,
    ack_code TEXT,
    last_error TEXT,
    accepted_at TEXT
);
"""


@dataclass(frozen=True)
class RoomRow:
    """What the archive knows of one room."""

    room_id: str
    last_seq: int
    complete_through: int
    last_event_at: str | None


@dataclass(frozen=True)
class OutboxRow:
    """One session's HL7 message and how its delivery stands."""

    session_id: str
    room_id: str
    message: str
    state: str
    attempts: int
    next_try_at: str
    ack_code: str | None
    last_error: str | None


class Store:
    """The archive database (one connection; use one Store per thread)."""

    def __init__(self, path: str | Path) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.path = Path(path)
        self._db = sqlite3.connect(path, isolation_level=None, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(SCHEMA)
        self._migrate()

    def _migrate(self) -> None:
        """Bring an archive written by an earlier clinicd to this schema (idempotent)."""
        with self._tx() as db:
            columns = {row[1] for row in db.execute("PRAGMA table_info(sessions)")}
            if "hl7_queued" not in columns:
                db.execute("ALTER TABLE sessions ADD COLUMN hl7_queued INTEGER NOT NULL DEFAULT 0")
                db.execute(
                    "UPDATE sessions SET hl7_queued = 1 "
                    "WHERE session_id IN (SELECT session_id FROM outbox)"
                )
            # The few ended sessions whose message is still to queue: the worker asks on every
            # turn, so this must not be a walk of a year of sessions.
            db.execute(
                "CREATE INDEX IF NOT EXISTS sessions_hl7_due ON sessions (room_id) "
                "WHERE ended_at IS NOT NULL AND hl7_queued = 0"
            )

    def close(self) -> None:
        """Close the connection."""
        self._db.close()

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Everything written inside is one transaction: committed (and synced) once, at the
        end, or not at all."""
        with self._tx():
            yield

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        if self._db.in_transaction:  # inside batch(): the outer one commits or rolls back
            yield self._db
            return
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # --- events -----------------------------------------------------------------------

    def add_events(self, room_id: str, events: Iterable[Event]) -> list[Event]:
        """Store each event not stored yet (by ``(room_id, seq)``); the new ones, in order."""
        new: dict[int, Event] = {}
        with self._tx() as db:
            db.execute("INSERT OR IGNORE INTO rooms (room_id) VALUES (?)", (room_id,))
            for e in events:
                new.setdefault(e.seq, e)
            if not new:
                return []
            stored = db.execute(
                "SELECT seq FROM events WHERE room_id = ? AND seq BETWEEN ? AND ?",
                (room_id, min(new), max(new)),
            )
            for (seq,) in stored:
                new.pop(seq, None)
            fresh = [new[seq] for seq in sorted(new)]
            if not fresh:
                return []
            stamps = [iso_utc(e.ts) for e in fresh]
            db.executemany(
                "INSERT INTO events VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (room_id, e.seq, ts, e.session_id, e.type, to_json(e.data).decode())
                    for e, ts in zip(fresh, stamps, strict=True)
                ],
            )
            self._index_sessions(db, room_id, fresh, stamps)
            db.execute(
                "UPDATE rooms SET last_event_at = max(coalesce(last_event_at, ''), ?) "
                "WHERE room_id = ?",
                (max(stamps), room_id),
            )
            self._advance(db, room_id, new)
        return fresh

    @staticmethod
    def _index_sessions(
        db: sqlite3.Connection, room_id: str, events: Sequence[Event], stamps: Sequence[str]
    ) -> None:
        """Keep the sessions table in step with the events that define a session, and drop
        the kept summary of every session that has new events."""
        sessions = {e.session_id for e in events if e.session_id is not None}
        db.executemany(
            "INSERT OR IGNORE INTO sessions (session_id, room_id) VALUES (?, ?)",
            [(sid, room_id) for sid in sessions],
        )
        db.executemany("DELETE FROM summaries WHERE session_id = ?", [(s,) for s in sessions])
        for e, ts in zip(events, stamps, strict=True):
            if e.session_id is None:
                continue
            if e.type == "session_started":
                plan = e.data.get("plan") or {}
                db.execute(
                    "UPDATE sessions SET patient_ref = ?, started_at = ? WHERE session_id = ?",
                    (plan.get("patient_ref"), ts, e.session_id),
                )
            elif e.type == "session_ended":
                db.execute(
                    "UPDATE sessions SET ended_at = ?, notes_state = NULL WHERE session_id = ?",
                    (ts, e.session_id),
                )
            elif e.type == "note_recorded":
                db.execute(
                    "UPDATE sessions SET noted = 1, notes_state = NULL WHERE session_id = ?",
                    (e.session_id,),
                )

    @staticmethod
    def _advance(db: sqlite3.Connection, room_id: str, new: Container[int] | None = None) -> None:
        """Move ``complete_through`` over every contiguous stored seq after it (only new seqs
        given: nothing to do unless the first missing one is among them)."""
        (through,) = db.execute(
            "SELECT complete_through FROM rooms WHERE room_id = ?", (room_id,)
        ).fetchone()
        if new is not None and through + 1 not in new:
            return
        for (seq,) in db.execute(
            "SELECT seq FROM events WHERE room_id = ? AND seq > ? ORDER BY seq",
            (room_id, through),
        ):
            if seq != through + 1:
                break
            through = seq
        db.execute("UPDATE rooms SET complete_through = ? WHERE room_id = ?", (through, room_id))

    def confirm_through(self, room_id: str, seq: int) -> None:
        """The room has answered for every seq up to ``seq``: what it did not send, it lacks."""
        with self._tx() as db:
            db.execute("INSERT OR IGNORE INTO rooms (room_id) VALUES (?)", (room_id,))
            db.execute(
                "UPDATE rooms SET complete_through = max(complete_through, ?) WHERE room_id = ?",
                (seq, room_id),
            )
            self._advance(db, room_id)

    # max(seq) per room is a lookup in the primary key, not a scan of the events.
    _ROOM_ROW = (
        "SELECT room_id, coalesce((SELECT max(seq) FROM events e WHERE e.room_id = r.room_id), "
        "0), complete_through, last_event_at FROM rooms r"
    )

    def rooms(self) -> list[RoomRow]:
        """Every room seen, by id."""
        rows = self._db.execute(self._ROOM_ROW + " ORDER BY room_id").fetchall()
        return [RoomRow(*row) for row in rows]

    def room(self, room_id: str) -> RoomRow | None:
        """One room, or None if never seen."""
        row = self._db.execute(self._ROOM_ROW + " WHERE room_id = ?", (room_id,)).fetchone()
        return None if row is None else RoomRow(*row)

    def events_of(self, room_id: str) -> list[Event]:
        """Every stored event of a room, by seq."""
        return self._events("WHERE room_id = ? ORDER BY seq", (room_id,))

    def session_events(self, session_id: str) -> list[Event]:
        """The stored events of one session, in the room's order."""
        return self._events("WHERE session_id = ? ORDER BY seq", (session_id,))

    def _events(self, where: str, args: Sequence[Any]) -> list[Event]:
        rows = self._db.execute(
            f"SELECT seq, ts, session_id, type, data FROM events {where}", args
        ).fetchall()
        return [
            Event(seq=s, ts=parse_utc(ts), session_id=sid, type=t, data=json.loads(d))
            for s, ts, sid, t, d in rows
        ]

    # --- kept summaries ---------------------------------------------------------------

    def kept_summary(self, session_id: str) -> dict[str, Any] | None:
        """A session's kept summary if it was computed from every event now stored, else None."""
        row = self._db.execute(
            "SELECT events, summary FROM summaries WHERE session_id = ?", (session_id,)
        ).fetchone()
        if row is None:
            return None
        (count,) = self._db.execute(
            "SELECT count(*) FROM events WHERE session_id = ?", (session_id,)
        ).fetchone()
        return json.loads(row[1]) if count == row[0] else None

    def keep_summary(self, session_id: str, events: int, summary: dict[str, Any]) -> None:
        """Keep a session's summary, computed from ``events`` events."""
        self._db.execute(
            "INSERT OR REPLACE INTO summaries VALUES (?, ?, ?)",
            (session_id, events, json.dumps(summary)),
        )

    def unsummarized(self, among: Sequence[str] | None = None) -> list[str]:
        """Ended sessions with no kept summary (new, or events came since): all of them, or
        those ``among`` these."""
        sql = (
            "SELECT session_id FROM sessions s WHERE ended_at IS NOT NULL AND NOT EXISTS "
            "(SELECT 1 FROM summaries m WHERE m.session_id = s.session_id)"
        )
        if among is None:
            return [r[0] for r in self._db.execute(sql).fetchall()]
        out: list[str] = []
        for i in range(0, len(among), 500):  # SQLite's limit on bound parameters
            part = among[i : i + 500]
            marks = ", ".join("?" * len(part))
            rows = self._db.execute(f"{sql} AND session_id IN ({marks})", part).fetchall()
            out += [r[0] for r in rows]
        return out

    # --- sessions and notes -----------------------------------------------------------

    def session_room(self, session_id: str) -> str | None:
        """The room a session ran in, or None if unknown."""
        row = self._db.execute(
            "SELECT room_id FROM sessions WHERE session_id = ?", (session_id,)
        ).fetchone()
        return None if row is None else str(row[0])

    def sessions_of(self, patient_ref: str) -> list[str]:
        """The session ids of a patient, by start time."""
        rows = self._db.execute(
            "SELECT session_id FROM sessions WHERE patient_ref = ? ORDER BY started_at",
            (patient_ref,),
        ).fetchall()
        return [r[0] for r in rows]

    def notes_wanted(self, room_id: str | None = None) -> list[tuple[str, str]]:
        """(room, session) pairs whose notes are to be fetched (ended or noted, not fetched)."""
        sql = (
            "SELECT room_id, session_id FROM sessions WHERE notes_state IS NULL "
            "AND (ended_at IS NOT NULL OR noted)"
        )
        args: tuple[str, ...] = ()
        if room_id is not None:
            sql += " AND room_id = ?"
            args = (room_id,)
        return [(r, s) for r, s in self._db.execute(sql, args).fetchall()]

    def retry_unsupported_notes(self, room_id: str) -> None:
        """A room came back (perhaps upgraded): ask it again for notes it could not give."""
        self._db.execute(
            "UPDATE sessions SET notes_state = NULL WHERE room_id = ? "
            "AND notes_state IN ('unsupported', 'error')",
            (room_id,),
        )

    def put_notes(self, session_id: str, notes: Sequence[dict[str, Any]]) -> None:
        """Keep a session's notes (as the room gave them) and mark them fetched."""
        with self._tx() as db:
            for n in notes:
                db.execute(
                    "INSERT OR REPLACE INTO notes VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        session_id,
                        str(n["note_id"]),
                        str(n["kind"]),
                        n.get("by"),
                        n.get("ts"),
                        str(n["text"]),
                    ),
                )
            db.execute(
                "UPDATE sessions SET notes_state = 'fetched' WHERE session_id = ?", (session_id,)
            )

    def mark_notes(self, session_id: str, state: str) -> None:
        """Record why a session's notes are not here (``unsupported``)."""
        self._db.execute(
            "UPDATE sessions SET notes_state = ? WHERE session_id = ?", (state, session_id)
        )

    def notes_of(self, session_id: str) -> list[dict[str, Any]]:
        """A session's notes, by time."""
        rows = self._db.execute(
            "SELECT note_id, kind, by, ts, text FROM notes WHERE session_id = ? "
            "ORDER BY ts, note_id",
            (session_id,),
        ).fetchall()
        return [dict(zip(("note_id", "kind", "by", "ts", "text"), r, strict=True)) for r in rows]

    def notes_state(self, session_id: str) -> str | None:
        """``fetched``, ``unsupported`` or None (not yet)."""
        row = self._db.execute(
            "SELECT notes_state FROM sessions WHERE session_id = ?", (session_id,)
        ).fetchone()
        return None if row is None else row[0]

    # --- the HL7 outbox ---------------------------------------------------------------

    def sessions_to_send(self, limit: int = -1) -> list[tuple[str, str]]:
        """(room, session) of ended sessions not queued yet whose events are all here (at
        most ``limit``; -1: all)."""
        rows = self._db.execute(
            "SELECT s.room_id, s.session_id FROM sessions s INDEXED BY sessions_hl7_due "
            "JOIN rooms r USING (room_id) "
            "WHERE s.ended_at IS NOT NULL AND s.hl7_queued = 0 "
            "AND (SELECT max(seq) FROM events e INDEXED BY events_session_ended "
            "     WHERE e.session_id = s.session_id AND e.room_id = s.room_id "
            "     AND e.type = 'session_ended') <= r.complete_through "
            "LIMIT ?",
            (limit,),
        ).fetchall()
        return [(r, s) for r, s in rows]

    def enqueue_message(self, session_id: str, room_id: str, message: str, now: datetime) -> bool:
        """Queue a session's message once; whether it was new."""
        with self._tx() as db:
            cur = db.execute(
                "INSERT OR IGNORE INTO outbox (session_id, room_id, message, next_try_at) "
                "VALUES (?, ?, ?, ?)",
                (session_id, room_id, message, iso_utc(now)),
            )
            db.execute("UPDATE sessions SET hl7_queued = 1 WHERE session_id = ?", (session_id,))
        return bool(cur.rowcount)

    def due_messages(self, now: datetime) -> list[OutboxRow]:
        """Messages not accepted yet whose next try is due, oldest first."""
        return self._outbox(
            "WHERE state != 'accepted' AND next_try_at <= ? ORDER BY next_try_at", (iso_utc(now),)
        )

    def message(self, session_id: str) -> OutboxRow | None:
        """A session's outbox row, or None."""
        rows = self._outbox("WHERE session_id = ?", (session_id,))
        return rows[0] if rows else None

    def _outbox(self, where: str, args: Sequence[Any]) -> list[OutboxRow]:
        rows = self._db.execute(
            "SELECT session_id, room_id, message, state, attempts, next_try_at, ack_code, "
            f"last_error FROM outbox {where}",
            args,
        ).fetchall()
        return [OutboxRow(*r) for r in rows]

    def message_result(
        self,
        session_id: str,
        *,
        state: str,
        ack_code: str | None,
        error: str | None,
        next_try_at: datetime,
        now: datetime,
    ) -> None:
        """Record one delivery attempt."""
        self._db.execute(
            "UPDATE outbox SET state = ?, attempts = attempts + 1, ack_code = ?, "
            "last_error = ?, next_try_at = ?, "
            "accepted_at = CASE WHEN ? = 'accepted' THEN ? ELSE accepted_at END "
            "WHERE session_id = ?",
            (state, ack_code, error, iso_utc(next_try_at), state, iso_utc(now), session_id),
        )
