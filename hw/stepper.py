"""The thread loop the room's timed outputs share (lights, call-button hold, buzzer).

Each device keeps its work in ``step(now) -> seconds until the next step, or None``, which
tests call directly on a fake clock; this loop only calls it and waits.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from controller.ports import Clock

log = logging.getLogger("roomd.hw")

Waiter = Callable[[threading.Event, float | None], object]
"""Wait on the event for at most the timeout (None: until set); injectable for tests."""


def real_wait(event: threading.Event, timeout: float | None) -> object:
    """Wait on the wall clock."""
    return event.wait(timeout)


def run_steps(
    step: Callable[[float], float | None],
    *,
    clock: Clock,
    wake: threading.Event,
    waiter: Waiter,
    closed: Callable[[], bool],
    min_wait_s: float,
    what: str,
) -> None:
    """Call ``step`` until ``closed()``; sleep as it asks (at least ``min_wait_s``) or until
    ``wake`` is set. A failing step is logged and retried a second later: a device fault
    must not end the device's thread."""
    while not closed():
        wake.clear()
        try:
            delay = step(clock.monotonic())
        except Exception:
            log.exception("%s step failed", what)
            delay = 1.0
        if closed():
            break
        waiter(wake, None if delay is None else max(min_wait_s, clock.real_seconds(delay)))
