"""The one core thread: take an inbox message, let the room act, repeat."""

from __future__ import annotations

import logging
import queue
import time
from collections.abc import Callable

from controller.errors import JournalError
from controller.events import InboxMessage, Shutdown
from controller.ports import Clock
from controller.room import Room

log = logging.getLogger("roomd.core")

MAX_WAIT_S = 1.0
"""The loop wakes at least this often (real seconds), so the watchdog only hears a live loop."""


class CoreLoop:
    """Runs the room on the calling thread until a Shutdown message arrives."""

    def __init__(
        self,
        room: Room,
        inbox: queue.SimpleQueue[InboxMessage] | queue.Queue[InboxMessage],
        clock: Clock,
        *,
        alive: Callable[[], None] | None = None,
    ) -> None:
        self._room = room
        self._inbox = inbox
        self._clock = clock
        self._alive = alive or (lambda: None)

    def run(self) -> None:
        """Handle messages and timers until shut down; a journal failure is fatal."""
        failures = 0
        while True:
            wait = self._clock.real_seconds(self._room.next_deadline() - self._clock.monotonic())
            try:
                message = self._inbox.get(timeout=min(max(wait, 0.0), MAX_WAIT_S))
            except queue.Empty:
                message = None
            if isinstance(message, Shutdown):
                return
            started = time.monotonic()
            try:
                if message is None:
                    self._room.tick()
                else:
                    self._room.handle(message)
            except JournalError:
                raise  # without its journal the room must not pretend to work: systemd restarts it
            except Exception:  # one bad message must not take the room down
                failures += 1
                # A fault that repeats every turn must not flood the log (and fill the disk).
                if failures <= 5 or failures % 1000 == 0:
                    log.exception("core failed handling %r (failure %d)", message, failures)
            else:
                failures = 0
            took = time.monotonic() - started
            if took > 0.5:
                log.warning("core loop took %.3f s on %r", took, type(message).__name__)
            self._alive()
