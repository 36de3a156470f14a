"""The core's inbox: every adapter message in arrival order, with a lane ahead of it for the
few commands that must never wait behind a flood (an emergency, an alarm acknowledged).

Adapters call ``put`` from their own threads; the core thread calls ``get``. A command in the
urgent lane may overtake commands that arrived before it: only verbs whose effect does not
depend on what came before them ride there.
"""

from __future__ import annotations

import queue
import threading
from collections import deque

from controller.events import CommandReceived, InboxMessage

URGENT_VERBS = frozenset({"emergency", "alarm_ack", "alarm_silence", "call_ack"})
"""Commands handled before anything else waiting (a flood of bad commands never delays them)."""


class Inbox:
    """A thread-safe inbox with an urgent lane; ``get`` raises ``queue.Empty`` on timeout."""

    def __init__(self) -> None:
        self._urgent: deque[InboxMessage] = deque()
        self._normal: deque[InboxMessage] = deque()
        self._ready = threading.Condition()

    def put(self, message: InboxMessage) -> None:
        """Queue a message (never blocks); an urgent command goes ahead of the rest."""
        urgent = isinstance(message, CommandReceived) and message.verb in URGENT_VERBS
        with self._ready:
            (self._urgent if urgent else self._normal).append(message)
            self._ready.notify()

    def get(self, timeout: float | None = None) -> InboxMessage:
        """The next message, urgent ones first; ``queue.Empty`` if none came in ``timeout``."""
        with self._ready:
            if not self._ready.wait_for(lambda: self._urgent or self._normal, timeout):
                raise queue.Empty
            return (self._urgent or self._normal).popleft()

    def qsize(self) -> int:
        """How many messages wait."""
        with self._ready:
            return len(self._urgent) + len(self._normal)
