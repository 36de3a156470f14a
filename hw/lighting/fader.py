"""The room's lights behind the ``Lighting`` port: fades on the lighting's own thread, over
whichever output the configured driver builds.

A fade is written as often as a visible change needs: every ``LEVEL_STEP`` of perceived
level (or of a colour component), at most ``rate_hz`` times a second (100 by default). A
one-minute dimming then costs a few writes a second instead of a hundred, and when nothing
fades the thread sleeps until ``set_scene`` wakes it. ``Lighting.step(now)`` is the whole of
one tick, so tests drive it directly with a fake clock.
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
from collections.abc import Callable
from typing import Any

from controller.clock import SystemClock
from controller.config import LightingSection
from controller.events import DeviceChanged
from controller.ports import Clock, Emit
from hw.lighting.curve import WHITE, Colour, Fade, LightState, channel_duties, state_from_duties
from hw.lighting.output import LIGHTS, Absent, LightOutput, NullOutput, OutputOptions
from hw.stepper import Waiter, real_wait, run_steps

log = logging.getLogger(__name__)

DEVICE = "lighting"

LEVEL_STEP = 0.001
"""The change of perceived level (a tenth of a CIE lightness unit, far below the smallest
difference an eye sees) or of an sRGB component (as a fraction of 255) worth a write."""


def step_interval(fade: Fade) -> float:
    """Clock seconds between writes of ``fade``: the time it takes to move one ``LEVEL_STEP``
    (a fade moves evenly in level and in colour; 0 for a fade that does not move)."""
    if fade.duration <= 0:
        return 0.0
    moves = [abs(fade.end.level - fade.start.level)]
    moves += [abs(z - a) / 255.0 for a, z in zip(fade.start.colour, fade.end.colour, strict=True)]
    fastest = max(moves) / fade.duration
    return LEVEL_STEP / fastest if fastest > 0 else fade.duration


class Lighting:
    """The ``Lighting`` port over one output: fades on a thread, faults reported, never raised.

    ``set_scene`` only records the new fade and wakes the thread, so it never blocks the core.
    A fault (``OSError`` from the output, e.g. the DMX adapter unplugged) emits
    ``DeviceChanged("lighting", "lost")`` once; the thread reopens the output with backoff and
    emits ``"ok"`` when a write succeeds again. Fades keep their schedule during an outage.
    """

    def __init__(
        self,
        output: LightOutput,
        emit: Emit,
        *,
        clock: Clock | None = None,
        waiter: Waiter | None = None,
        rate_hz: float = 100.0,
        backoff_s: tuple[float, float] = (0.5, 10.0),
        start: bool = True,
    ) -> None:
        if rate_hz < 50:
            raise ValueError("rate_hz below 50 makes dim fades visibly step")
        self.output = output
        self._emit = emit
        self._clock: Clock = clock or SystemClock()
        self._waiter = waiter or real_wait
        self.period = 1.0 / rate_hz
        self._backoff_min, self._backoff_max = backoff_s
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._settled = threading.Event()
        self._fade: Fade | None = None
        self.scene: str | None = None
        self._status: str | None = None
        self._up = False
        self._written: tuple[float, ...] | None = None
        self._backoff = self._backoff_min
        self._t0 = self._written_at = self._retry_at = 0.0
        self._closed = False
        self._thread: threading.Thread | None = None
        self._connect(self._clock.monotonic())
        if start:
            self._thread = threading.Thread(target=self._run, name="roomd-lighting", daemon=True)
            self._thread.start()

    def set_scene(
        self, scene: str, level: float, colour: tuple[int, int, int] | None, fade_s: float
    ) -> None:
        """Fade to ``level`` (0..1) and ``colour`` over ``fade_s`` seconds (0: at once)."""
        level = 0.0 if math.isnan(level) else max(0.0, min(1.0, float(level)))
        with self._lock:
            now = self._clock.monotonic()
            current = self._fade.at(now - self._t0) if self._fade is not None else None
            hue: Colour
            if colour is not None:
                r, g, b = (float(max(0, min(255, c))) for c in colour)
                hue = (r, g, b)
            else:
                hue = current.colour if current is not None else WHITE
            target = LightState(level, hue)
            if current is None or not fade_s > 0:
                # Nothing to fade from (state unknown), or an emergency: go there at once.
                self._fade = Fade(target, target, 0.0)
            else:
                self._fade = Fade(current, target, float(fade_s))
            self._t0 = now
            self.scene = scene
            self._settled.clear()
        self._wake.set()

    def wait_settled(self, timeout: float) -> bool:
        """Wait until the current fade is finished and written; ``False`` on timeout."""
        return self._settled.wait(timeout)

    def step(self, now: float) -> float | None:
        """Do one tick at clock time ``now``: reconnect if due, write the fade's state.

        Returns the clock seconds until the next tick is needed (0: at the step rate, as fast
        as ``rate_hz``) or ``None`` when there is nothing to do until ``set_scene``.
        """
        if not self._up and (now < self._retry_at or not self._connect(now)):
            return max(0.0, self._retry_at - now)
        with self._lock:
            fade, t0 = self._fade, self._t0
        if fade is None:
            return None
        state = fade.at(now - t0)
        duties = channel_duties(state, self.output.layout)
        refresh = self.output.refresh_s
        due = refresh is not None and now - self._written_at >= refresh
        if duties != self._written or due:
            try:
                self.output.write(duties)
            except Exception as exc:  # whatever the driver raises, the fader must live on
                self._fault(now, exc)
                return max(0.0, self._retry_at - now)
            self._written, self._written_at = duties, now
            self._set_status("ok")
        if not fade.done(now - t0):
            # The next visible step, but never past the fade's end (written on time).
            return min(step_interval(fade), t0 + fade.duration - now)
        with self._lock:
            if self._fade is fade:
                self._settled.set()
        if refresh is not None:
            return max(0.0, self._written_at + refresh - now)
        return None

    def _connect(self, now: float) -> bool:
        try:
            self.output.open()
            held = self.output.read_back() if self._fade is None else None
        except Exception as exc:
            self._fault(now, exc)
            return False
        self._up = True
        self._backoff = self._backoff_min
        self._written = None  # the hardware may hold anything now: write on the next tick
        if held is not None:
            with self._lock:
                if self._fade is None:
                    here = state_from_duties(held, self.output.layout)
                    self._fade, self._t0 = Fade(here, here, 0.0), now
        if self._fade is None:
            self._set_status("ok")  # nothing to write yet; the port opened, that will do
        return True

    def _fault(self, now: float, exc: BaseException) -> None:
        if self._status != "lost":
            log.warning("lighting output failed: %s", exc)
        self._up = False
        with contextlib.suppress(Exception):  # it failed already; closing is a courtesy
            self.output.close()
        self._retry_at = now + self._backoff
        self._backoff = min(self._backoff * 2, self._backoff_max)
        self._set_status("lost", str(exc))

    def _set_status(self, status: str, detail: str = "") -> None:
        if status != self._status:
            self._status = status
            self._emit(DeviceChanged(device=DEVICE, status=status, detail=detail))

    def _run(self) -> None:
        run_steps(
            self.step,
            clock=self._clock,
            wake=self._wake,
            waiter=self._waiter,
            closed=lambda: self._closed,
            min_wait_s=self.period,
            what="lighting",
        )

    def close(self) -> None:
        """Stop the fader thread and release the output."""
        self._closed = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
        with contextlib.suppress(Exception):
            self.output.close()


def make_lighting(
    section: LightingSection,
    emit: Emit,
    *,
    pin_factory: Any = None,
    serial_factory: Callable[[str], Any] | None = None,
    clock: Clock | None = None,
    start: bool = True,
) -> Lighting:
    """Build the lights ``[hardware.lighting]`` describes, with the driver it names.

    A driver whose settings name no hardware (``dmx`` with an empty ``port`` and no
    ``serial_factory``) gives no lights: the device is reported ``absent``. Under
    ``--simulate``, pass a ``serial_factory`` that opens the simulated widget's pty.
    """
    build = LIGHTS[section.driver]
    try:
        output = build(section.driver_settings(), OutputOptions(pin_factory, serial_factory))
    except Absent as exc:
        emit(DeviceChanged(device=DEVICE, status="absent", detail=str(exc)))
        return Lighting(NullOutput(), lambda _msg: None, clock=clock, start=start)
    return Lighting(output, emit, clock=clock, start=start)
