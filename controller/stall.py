"""Stalls of the core loop: the gaps, on the monotonic clock, between two of its turns.

The loop turns at least every ``loop.MAX_WAIT_S``; a longer gap means the process did not run
(SIGSTOP, a starved CPU, swapping) and heard, decided and published nothing meanwhile. The
clinic saw the room silent for that long, so the record says so as a ``loop_stalled`` event.
"""

from __future__ import annotations

STALL_S = 5.0
"""A gap between turns longer than this is a stall (the loop wakes at least every second)."""


class StallWatch:
    """Fed the monotonic time at each turn; answers the gap when it was a stall."""

    def __init__(self, threshold_s: float = STALL_S) -> None:
        if threshold_s <= 0:
            raise ValueError("threshold_s must be positive")
        self.threshold_s = threshold_s
        self._last: float | None = None

    def turn(self, now: float) -> float | None:
        """Note a turn at monotonic ``now``; the gap since the last turn if over the threshold."""
        last, self._last = self._last, now
        if last is None:
            return None
        gap = now - last
        return round(gap, 3) if gap > self.threshold_s else None
