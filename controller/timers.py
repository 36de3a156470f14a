"""Named deadlines on the injected clock.

A timer is set by the UTC time it is due (so the same code restores timers from the journal's
timestamps after a restart) and kept as a monotonic deadline (so a wall-clock step while the room
runs moves nothing).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from controller.ports import Clock


class Timers:
    """The core's pending deadlines, by name."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._deadlines: dict[str, float] = {}

    def set_at(self, name: str, due: datetime) -> None:
        """Fire ``name`` at UTC time ``due`` (at once if it is already past)."""
        delay = (due - self._clock.now()).total_seconds()
        self._deadlines[name] = self._clock.monotonic() + delay

    def set_in(self, name: str, seconds: float) -> datetime:
        """Fire ``name`` in ``seconds``; return the UTC time it is due."""
        self._deadlines[name] = self._clock.monotonic() + seconds
        return self._clock.now() + timedelta(seconds=seconds)

    def cancel(self, *names: str) -> None:
        """Forget the named timers (unknown names are fine)."""
        for name in names:
            self._deadlines.pop(name, None)

    def pending(self, name: str) -> bool:
        """Whether ``name`` is set."""
        return name in self._deadlines

    def remaining(self, name: str) -> float | None:
        """Seconds until ``name`` fires, or None when it is not set."""
        deadline = self._deadlines.get(name)
        return None if deadline is None else deadline - self._clock.monotonic()

    def due_at(self, name: str) -> datetime | None:
        """The UTC time ``name`` is due, as the clock reads now."""
        left = self.remaining(name)
        return None if left is None else self._clock.now() + timedelta(seconds=left)

    def pop_next_due(self) -> str | None:
        """Remove and return the earliest timer whose deadline has passed, if any."""
        if not self._deadlines:
            return None
        name = min(self._deadlines, key=self._deadlines.__getitem__)
        if self._deadlines[name] > self._clock.monotonic():
            return None
        del self._deadlines[name]
        return name

    def next_deadline(self) -> float | None:
        """The earliest monotonic deadline, if any."""
        return min(self._deadlines.values(), default=None)

    def clear(self) -> None:
        """Forget every timer."""
        self._deadlines.clear()
