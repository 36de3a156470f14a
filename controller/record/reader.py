"""A read-only view of the journal file, for a thread other than the core's.

SQLite connections must not cross threads, and the record must never write to the journal:
this opens its own connection with ``mode=ro``. In WAL mode it reads the last committed
state while the core keeps writing.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from types import TracebackType

from controller.journal import NOTE_FIELDS
from controller.models import Event, parse_utc


class JournalReader:
    """One thread's read-only connection to the journal (``with`` closes it)."""

    def __init__(self, path: str | Path) -> None:
        # A URI, so SQLite opens the file read-only and never creates or changes it.
        uri = Path(path).absolute().as_uri() + "?mode=ro"
        self._db = sqlite3.connect(uri, uri=True)

    def session_events(self, session_id: str) -> list[Event]:
        """Every committed event of one session, in order."""
        rows = self._db.execute(
            "SELECT seq, ts, session_id, type, data FROM events WHERE session_id = ? ORDER BY seq",
            (session_id,),
        )
        return [
            Event(seq=seq, ts=parse_utc(ts), session_id=sid, type=type_, data=json.loads(data))
            for seq, ts, sid, type_, data in rows
        ]

    def vitals(self, session_id: str) -> list[tuple[str, str, str]]:
        """Every committed (ts, kind, payload JSON) of one session, in order."""
        rows = self._db.execute(
            "SELECT ts, kind, payload FROM vitals WHERE session_id = ? ORDER BY id", (session_id,)
        )
        return [(ts, kind, payload) for ts, kind, payload in rows]

    def notes(self, session_id: str) -> list[dict[str, str]]:
        """Every committed note of one session (``note_id, kind, by, ts, text``), in order;
        none from a journal made before notes were kept."""
        try:
            rows = self._db.execute(
                "SELECT note_id, kind, by, ts, text FROM notes WHERE session_id = ? ORDER BY id",
                (session_id,),
            ).fetchall()
        except sqlite3.OperationalError:  # no notes table: an older journal
            return []
        return [dict(zip(NOTE_FIELDS, row, strict=True)) for row in rows]

    def close(self) -> None:
        """Close the connection."""
        self._db.close()

    def __enter__(self) -> JournalReader:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
