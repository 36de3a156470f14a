"""Local annunciation on a buzzer: a distinct pattern per priority (the ``Annunciator`` port).

The patterns follow the shape of IEC 60601-1-8's auditory alarm signals, so that anyone who
has worked near monitors tells them apart: high is the ten-pulse "3 + 2, 3 + 2" burst, medium
three pulses, low a single pulse; a call is a soft double chirp; a failure of the room
controller is continuous. An active (fixed-pitch) buzzer cannot give the standard's pitch
and harmonics: the rhythm carries the priority.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any

from controller.clock import SystemClock
from controller.ports import Annunciation, Clock
from hw.stepper import Waiter, real_wait, run_steps

log = logging.getLogger(__name__)

EDGE_S = 1e-6
"""Times this close to a pattern edge count as at the edge."""

"""Block until the event is set or ``timeout`` real seconds pass (``None``: no timeout)."""


@dataclass(frozen=True)
class Pattern:
    """A rhythm: ``(on, seconds)`` segments, repeated or, if not, ending in the last state."""

    segments: tuple[tuple[bool, float], ...]
    repeat: bool = True

    @property
    def period(self) -> float:
        """Seconds of one pass through the segments."""
        return sum(seconds for _, seconds in self.segments)

    def state_at(self, elapsed: float) -> tuple[bool, float | None]:
        """Whether the buzzer sounds ``elapsed`` seconds in, and seconds until that changes."""
        period = self.period
        if not self.repeat and elapsed >= period - EDGE_S:
            return self.segments[-1][0], None
        t = elapsed % period if self.repeat and period > 0 else elapsed
        start = 0.0
        for on, seconds in self.segments:
            # Within EDGE_S of an edge counts as past it: clock rounding must not leave a
            # caller waiting a zero-length time forever.
            if t < start + seconds - EDGE_S:
                return on, start + seconds - t
            start += seconds
        return self.segments[0][0], self.segments[0][1] + period - t  # wrapping round


def pulses(count: int, on_s: float, gap_s: float) -> tuple[tuple[bool, float], ...]:
    """``count`` pulses of ``on_s`` seconds with ``gap_s`` between them (none after)."""
    out: list[tuple[bool, float]] = []
    for i in range(count):
        if i:
            out.append((False, gap_s))
        out.append((True, on_s))
    return tuple(out)


_HIGH_HALF = (*pulses(3, 0.15, 0.1), (False, 0.35), *pulses(2, 0.15, 0.1))

PATTERNS: dict[str, Pattern] = {
    "high": Pattern((*_HIGH_HALF, (False, 1.0), *_HIGH_HALF, (False, 4.0))),
    "medium": Pattern((*pulses(3, 0.2, 0.2), (False, 6.0))),
    "low": Pattern((*pulses(1, 0.25, 0.0), (False, 15.0))),
    "call": Pattern((*pulses(2, 0.06, 0.12), (False, 8.0))),
    "failure": Pattern(((True, 1.0),), repeat=False),
}
"""The rhythm of every annunciation but ``off``."""


class Buzzer:
    """A gpiozero ``Buzzer`` sounding the pattern it was last told, on its own thread.

    ``step(now)`` is the whole of the thread's work, so tests with a fake clock call it.
    """

    def __init__(
        self,
        pin: int,
        pin_factory: Any = None,
        *,
        clock: Clock | None = None,
        waiter: Waiter | None = None,
        start: bool = True,
    ) -> None:
        from gpiozero import Buzzer as GpioBuzzer

        self._clock: Clock = clock or SystemClock()
        self._waiter = waiter or real_wait
        self.device: Any = GpioBuzzer(pin, pin_factory=pin_factory)
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._closed = False
        self.pattern: Annunciation = "off"
        self._t0 = 0.0
        self._thread: threading.Thread | None = None
        if start:
            self._thread = threading.Thread(target=self._run, name="roomd-buzzer", daemon=True)
            self._thread.start()

    def annunciate(self, pattern: Annunciation) -> None:
        """Sound ``pattern`` until told otherwise (``off`` stops it)."""
        if pattern != "off" and pattern not in PATTERNS:
            log.warning("unknown annunciation %r ignored", pattern)
            return
        with self._lock:
            if pattern == self.pattern:
                return  # restarting would break the rhythm a listener is following
            self.pattern, self._t0 = pattern, self._clock.monotonic()
        self._wake.set()

    def step(self, now: float) -> float | None:
        """Set the buzzer for clock time ``now``; return clock seconds until the next change."""
        with self._lock:
            name, t0 = self.pattern, self._t0
        if name == "off":
            on, delay = False, None
        else:
            on, delay = PATTERNS[name].state_at(now - t0)
        if on != self.device.is_active:
            self.device.value = on
        return delay

    def _run(self) -> None:
        run_steps(
            self.step,
            clock=self._clock,
            wake=self._wake,
            waiter=self._waiter,
            closed=lambda: self._closed,
            min_wait_s=EDGE_S,
            what="buzzer",
        )

    def close(self) -> None:
        """Silence the buzzer, stop its thread and release the pin."""
        if self._closed:
            return
        self._closed = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
        self.device.off()
        self.device.close()
