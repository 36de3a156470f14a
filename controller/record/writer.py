"""Session records written on a thread of their own (the core's ``SessionRecords`` port).

A record reads the whole session back from the journal and writes five files: on a Pi with a
long session that can take seconds, which the core thread (and the systemd watchdog behind
it) must not wait for. The core asks with ``write(session_id)`` and carries on; the worker
puts ``ReportWritten`` on the inbox when the record is written, or could not be.
"""

from __future__ import annotations

import logging
import queue
import sqlite3
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from controller.events import InboxMessage, ReportWritten
from controller.record import hl7

log = logging.getLogger("roomd.record")

CLOSE_TIMEOUT_S = 10.0
"""How long ``close`` waits for records still being written (half the systemd watchdog)."""


def _utc_now() -> datetime:
    return datetime.now(UTC)


class RecordWriter:
    """Writes ended sessions' records, one at a time, on one daemon thread."""

    def __init__(
        self,
        journal_path: Path,
        data_dir: Path,
        emit: Callable[[InboxMessage], None],
        *,
        sender: hl7.Sender | None = None,
        now: Callable[[], datetime] = _utc_now,
        timezone: str = "UTC",
    ) -> None:
        self._journal_path = journal_path
        self._timezone = timezone  # the clinic's, for the HTML report's times
        self._data_dir = data_dir
        self._emit = emit
        self._sender = sender or hl7.Sender()
        self._now = now
        self._sessions: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="roomd-record", daemon=True)
        self._thread.start()

    def write(self, session_id: str) -> None:
        """Queue the record of a session that just ended; returns at once."""
        self._sessions.put(session_id)

    def close(self, timeout_s: float = CLOSE_TIMEOUT_S) -> bool:
        """Finish the queued records and stop the worker; False if it was still busy after
        ``timeout_s`` (the journal keeps everything: ``roomd report`` writes it later)."""
        self._sessions.put(None)
        self._thread.join(timeout_s)
        return not self._thread.is_alive()

    def _record(self, session_id: str) -> dict[str, Any] | None:
        # report_ready's data, or None (and a logged error) when it could not be written.
        # Imported at the first record, not at start: the room carries the record's code
        # (about 1 MB) only once a session has ended.
        from controller.record.files import rebuild_from_journal
        from controller.record.reader import JournalReader

        try:
            with JournalReader(self._journal_path) as journal:
                return rebuild_from_journal(
                    journal, session_id, self._data_dir, sender=self._sender,
                    created_at=self._now(), timezone=self._timezone,
                )  # fmt: skip
        except (OSError, ValueError, LookupError, sqlite3.Error):
            # The journal keeps everything; `roomd report` can build it again later.
            log.exception("the session record of %s could not be written", session_id)
        except Exception:
            # A fault in one record must not stop the worker, and the room must hear of it.
            log.exception("writing the session record of %s failed unexpectedly", session_id)
        return None

    def _run(self) -> None:
        while (session_id := self._sessions.get()) is not None:
            self._emit(ReportWritten(session_id, self._record(session_id)))
