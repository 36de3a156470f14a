"""Clocks for the core: the system's (optionally scaled) and a fake one for tests."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from controller.ports import Clock


class SystemClock:
    """Real time, optionally running ``time_scale`` times faster (simulation only).

    Scaled time is anchored (``anchor`` = a real instant and the scaled instant it maps to,
    kept in the journal) so that scaled timestamps stay continuous across restarts: a
    restart's downtime is scaled too.
    """

    def __init__(
        self, time_scale: float = 1.0, anchor: tuple[datetime, datetime] | None = None
    ) -> None:
        if time_scale <= 0:
            raise ValueError("time_scale must be positive")
        self.time_scale = time_scale
        self._mono0 = time.monotonic()
        real = datetime.now(UTC)
        self.anchor = anchor or (real, real)

    def monotonic(self) -> float:
        """Session seconds on a clock that never steps."""
        return self._mono0 + (time.monotonic() - self._mono0) * self.time_scale

    def now(self) -> datetime:
        """The current (scaled) UTC time."""
        real = datetime.now(UTC)
        if self.time_scale == 1.0:
            return real
        anchor_real, anchor_scaled = self.anchor
        return anchor_scaled + (real - anchor_real) * self.time_scale

    def real_seconds(self, session_seconds: float) -> float:
        """Real seconds that ``session_seconds`` of session time take."""
        return session_seconds / self.time_scale


class FakeClock:
    """A clock that moves only when told to (Trio's ``MockClock`` is the model)."""

    def __init__(self, start: datetime | None = None, monotonic: float = 1000.0) -> None:
        self._now = start or datetime(2026, 1, 5, 9, 0, 0, tzinfo=UTC)
        self._mono = monotonic

    def monotonic(self) -> float:
        """Fake session seconds."""
        return self._mono

    def now(self) -> datetime:
        """Fake UTC time."""
        return self._now

    def real_seconds(self, session_seconds: float) -> float:
        """Fake time runs at real speed when it runs at all."""
        return session_seconds

    def advance(self, seconds: float) -> None:
        """Move both clocks forward by ``seconds``."""
        if seconds < 0:
            raise ValueError("time only moves forward")
        self._mono += seconds
        self._now += timedelta(seconds=seconds)

    def step_wall(self, seconds: float) -> None:
        """Step only the wall clock (NTP correcting it), leaving monotonic time alone."""
        self._now += timedelta(seconds=seconds)


def mono_at(clock: Clock, ts: datetime) -> float:
    """The monotonic reading that corresponds to UTC ``ts`` (for past events after a restart)."""
    return clock.monotonic() - (clock.now() - ts).total_seconds()
