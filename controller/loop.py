"""The one core thread: take an inbox message, let the room act, repeat."""

from __future__ import annotations

import logging
import queue
import time
from collections.abc import Callable

from controller.errors import JournalError
from controller.events import InboxMessage, Shutdown
from controller.inbox import Inbox
from controller.ports import Annunciator, Clock
from controller.room import Room
from controller.stall import StallWatch
from controller.storage import StorageError

log = logging.getLogger("roomd.core")

MAX_WAIT_S = 1.0
"""The loop wakes at least this often (real seconds), so the watchdog only hears a live loop."""


class CoreLoop:
    """Runs the room on the calling thread until a Shutdown message arrives.

    A storage fault does not stop it: the room goes on monitoring and alarming while its
    events wait for the disk; the loop says so to systemd (``STATUS``) and sounds the buzzer's
    failure pattern whenever no alarm or call pattern is sounding.
    """

    def __init__(
        self,
        room: Room,
        inbox: Inbox | queue.SimpleQueue[InboxMessage] | queue.Queue[InboxMessage],
        clock: Clock,
        *,
        alive: Callable[[], None] | None = None,
        notify: Callable[[str], None] | None = None,
        annunciator: Annunciator | None = None,
    ) -> None:
        self._room = room
        self._inbox = inbox
        self._clock = clock
        self._alive = alive or (lambda: None)
        self._stalls = StallWatch()
        self._notify = notify or (lambda message: None)
        self._annunciator = annunciator
        self._fault_said: str | None = None
        self._failure_sounding = False

    def run(self) -> None:
        """Handle messages and timers until shut down."""
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
                gap = self._stalls.turn(started)
                if gap is not None:  # the process did not run: the record must say so
                    self._room.log.emit("loop_stalled", {"gap_s": gap})
                if message is None:
                    self._room.tick()
                else:
                    self._room.handle(message)
            except StorageError as exc:
                # The disk, not the room, failed: the room stays up, loud, and tries again.
                self._room.log.storage_error(exc)
            except JournalError:
                raise  # a journal that is wrong (not a disk fault): systemd restarts the room
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
            self._signal_storage()
            try:
                self._alive()
            except Exception:  # telling systemd must never stop the room
                log.exception("the watchdog notification failed")

    def _signal_storage(self) -> None:
        """Say a storage fault to systemd, and sound it when nothing else sounds."""
        fault = self._room.log.storage_fault
        said = str(fault) if fault is not None else None
        try:
            if said != self._fault_said:
                room = self._room.config.room.id
                if fault is not None:
                    self._notify(f"STATUS=room {room}: STORAGE FAULT: {fault}")
                    log.critical("storage fault: %s", fault)
                else:
                    self._notify(f"STATUS=room {room}: {self._room.phase}")
                    log.warning("storage restored: the held events are journaled")
                self._fault_said = said
            if self._annunciator is None:
                return
            # The room's own alarm and call patterns take the buzzer when they sound.
            quiet = self._room.annunciation.pattern == "off"
            if fault is not None and quiet and not self._failure_sounding:
                self._annunciator.annunciate("failure")
                self._failure_sounding = True
            elif (fault is None or not quiet) and self._failure_sounding:
                if fault is None:
                    self._annunciator.annunciate(self._room.annunciation.pattern)
                self._failure_sounding = False
        except Exception:  # the signal must never stop the room
            log.exception("signalling the storage fault failed")
