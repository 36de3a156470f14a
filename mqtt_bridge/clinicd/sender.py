"""Store-and-forward of each ended session's ORU^R01 to the EHR over MLLP.

The archive, not each room, sends: a message is queued in the store once the session's events
are all there, and sent until the receiver answers ``AA``. No answer: retried with backoff
(``retry_min_s`` doubling to ``retry_max_s``). ``AE``/``AR``: kept, retried the same way,
and flagged in the patient's course (``hl7_refused``) for someone to look at.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

from mqtt_bridge.clinicd.config import Hl7Section
from mqtt_bridge.clinicd.mllp import MllpError, control_id_of, exchange, with_identity
from mqtt_bridge.clinicd.record import oru_message
from mqtt_bridge.clinicd.store import OutboxRow, Store

log = logging.getLogger("clinicd.hl7")


ENQUEUE_PER_TURN = 20
"""Messages built per worker turn at most (each reads its session's events)."""


class Hl7Sender:
    """Builds, queues and sends the sessions' messages."""

    def __init__(self, section: Hl7Section, db_path: Path, *, now: Callable[[], datetime]) -> None:
        self.section = section
        self.db_path = db_path
        self._now = now
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="clinicd-hl7", daemon=True)

    # --- queueing (on the archive's worker thread, with its store) ------------------------

    def enqueue_ended(self, store: Store, limit: int = ENQUEUE_PER_TURN) -> int:
        """Queue the message of ended, complete sessions not queued yet, at most ``limit``
        (the worker calls it every turn: a backlog, such as a year's sessions when HL7 is
        first configured, is queued a turn at a time, never holding up ingest); how many."""
        queued = 0
        for room_id, session_id in store.sessions_to_send(limit):
            try:
                text = oru_message(store.session_events(session_id), room_id)
            except (KeyError, ValueError, TypeError) as exc:
                log.error("%s: no HL7 message could be built: %s", session_id, exc)
                text = ""
            text = with_identity(
                text, self.section.sending_facility, self.section.assigning_authority
            )
            if store.enqueue_message(session_id, room_id, text, self._now()):
                queued += 1
        if queued:
            self.wake()
        return queued

    # --- sending (on its own thread, with its own store) ----------------------------------

    def backoff(self, attempts: int) -> timedelta:
        """The wait before try ``attempts + 1``."""
        s = self.section
        return timedelta(seconds=min(s.retry_max_s, s.retry_min_s * 2 ** min(attempts, 30)))

    def send_one(self, store: Store, row: OutboxRow) -> str:
        """One delivery attempt of one message; the new state."""
        now = self._now()
        code: str | None = None
        error: str | None
        if not row.message:
            state, error = "refused", "the message could not be built from the session"
        else:
            try:
                ack = exchange(
                    self.section.host, self.section.port, row.message, self.section.timeout_s
                )
                code, error = ack.code, ack.text or None
                if ack.control_id != control_id_of(row.message):
                    state, error = "pending", f"ACK for {ack.control_id!r}, not this message"
                else:
                    state = "accepted" if ack.accepted else "refused"
            except MllpError as exc:
                state, error = "pending", str(exc)
        next_try = now + self.backoff(row.attempts)
        store.message_result(
            row.session_id, state=state, ack_code=code, error=error, next_try_at=next_try, now=now
        )
        log_at = logging.INFO if state == "accepted" else logging.WARNING
        log.log(log_at, "%s: %s (%s) %s", row.session_id, state, code, error or "")
        return state

    def send_due(self, store: Store) -> int:
        """Try every message that is due; how many were tried."""
        rows = store.due_messages(self._now())
        for row in rows:
            if self._stop.is_set():
                break
            self.send_one(store, row)
        return len(rows)

    def wake(self) -> None:
        """Look at the outbox now."""
        self._wake.set()

    def start(self) -> None:
        """Start the sending thread."""
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the sending thread."""
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        store = Store(self.db_path)
        try:
            while not self._stop.is_set():
                self.send_due(store)
                self._wake.wait(1.0)
                self._wake.clear()
        finally:
            store.close()
