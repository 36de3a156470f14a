"""The room's lights behind the ``Lighting`` port: perceptual fades on gpiozero PWM, RGB(W)
channels, kernel hardware PWM (``/sys/class/pwm``) or DMX through an ENTTEC DMX USB Pro.

A level is *perceived* brightness (CIE 1931 lightness, 0..1); it becomes a PWM duty through
the CIE curve, so a fade that moves evenly in level looks even, and the dim end, where the eye
is most sensitive, gets the finest duty steps. A colour is a hue picked on a screen (sRGB,
0..255); only its proportions count, brightness is the level's job.

Fades run on the lighting's own thread at ``rate_hz`` (100 by default). ``Lighting.step(now)``
is the whole of one tick, so tests drive it directly with a fake clock.
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

from controller.clock import SystemClock
from controller.config import LightingSection
from controller.events import DeviceChanged
from controller.ports import Clock, Emit
from hw.dmx import DmxOutput, SerialFactory
from hw.stepper import Waiter, real_wait, run_steps

log = logging.getLogger(__name__)

Colour = tuple[float, float, float]
Layout = Literal["mono", "rgb", "rgbw"]
"""Block until the event is set or ``timeout`` real seconds pass (``None``: no timeout)."""

WHITE: Colour = (255.0, 255.0, 255.0)
DEVICE = "lighting"
KAPPA = 24389 / 27  # CIE's exact constant (903.3 rounded leaves a kink at L* = 8)


def lightness_to_duty(level: float) -> float:
    """The luminance (PWM duty 0..1) that looks like lightness ``level`` (0..1), CIE 1931."""
    lstar = max(0.0, min(1.0, level)) * 100.0
    if lstar <= 8.0:
        return lstar / KAPPA
    return ((lstar + 16.0) / 116.0) ** 3


def duty_to_lightness(duty: float) -> float:
    """The inverse of :func:`lightness_to_duty`."""
    y = max(0.0, min(1.0, duty))
    if y <= 8.0 / KAPPA:
        return y * KAPPA / 100.0
    return (116.0 * y ** (1.0 / 3.0) - 16.0) / 100.0


def srgb_to_linear(c: float) -> float:
    """Linear light (0..1) for an sRGB component (0..1)."""
    return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4


def linear_to_srgb(c: float) -> float:
    """The inverse of :func:`srgb_to_linear`."""
    return c * 12.92 if c <= 0.0031308 else 1.055 * c ** (1.0 / 2.4) - 0.055


@dataclass(frozen=True)
class LightState:
    """Where the lights are: perceived ``level`` 0..1 and an sRGB ``colour`` (0..255 each)."""

    level: float
    colour: Colour = WHITE


@dataclass(frozen=True)
class Fade:
    """A fade from ``start`` to ``end`` over ``duration`` seconds, even in perceived level."""

    start: LightState
    end: LightState
    duration: float

    def at(self, elapsed: float) -> LightState:
        """The state ``elapsed`` seconds into the fade."""
        if self.duration <= 0 or elapsed >= self.duration:
            return self.end
        f = max(0.0, elapsed / self.duration)
        s, e = self.start, self.end
        r, g, b = (a + (z - a) * f for a, z in zip(s.colour, e.colour, strict=True))
        return LightState(s.level + (e.level - s.level) * f, (r, g, b))

    def level_at(self, elapsed: float) -> float:
        """The perceived level ``elapsed`` seconds into the fade."""
        return self.at(elapsed).level

    def done(self, elapsed: float) -> bool:
        """Whether the fade has reached its end ``elapsed`` seconds in."""
        return elapsed >= self.duration


def layout_for(channels: int) -> Layout:
    """The channel layout for a number of colour channels (1, 3 or 4)."""
    layouts: dict[int, Layout] = {1: "mono", 3: "rgb", 4: "rgbw"}
    if channels not in layouts:
        raise ValueError(f"lights need 1, 3 (RGB) or 4 (RGBW) channels, got {channels}")
    return layouts[channels]


def channel_duties(state: LightState, layout: Layout) -> tuple[float, ...]:
    """The PWM duty (0..1) of each channel for ``state``."""
    y = lightness_to_duty(state.level)
    if layout == "mono":
        return (y,)
    peak = max(state.colour)
    if peak <= 0:
        return (0.0,) * (3 if layout == "rgb" else 4)
    # Normalised to the brightest component: the colour sets the hue, the level the brightness.
    r, g, b = (y * srgb_to_linear(max(0.0, c) / peak) for c in state.colour)
    if layout == "rgb":
        return (r, g, b)
    w = min(r, g, b)  # the white emitter takes the part all three have in common
    return (r - w, g - w, b - w, w)


def state_from_duties(duties: Sequence[float], layout: Layout) -> LightState:
    """The state that :func:`channel_duties` would map to ``duties`` (for read-back)."""
    if layout == "mono":
        return LightState(duty_to_lightness(duties[0]))
    lin = list(duties[:3])
    if layout == "rgbw":
        lin = [c + duties[3] for c in lin]
    y = max(lin)
    if y <= 0:
        return LightState(0.0)
    r, g, b = (255.0 * linear_to_srgb(c / y) for c in lin)
    return LightState(duty_to_lightness(y), (r, g, b))


class LightOutput(Protocol):
    """Hardware that turns channel duties into light. Faults raise ``OSError``."""

    layout: Layout
    refresh_s: float | None

    def open(self) -> None:
        """Make the output usable (again)."""

    def write(self, duties: Sequence[float]) -> None:
        """Set every channel's duty (0..1)."""

    def read_back(self) -> list[float] | None:
        """The duties the hardware holds now, or ``None`` if it cannot tell."""

    def close(self) -> None:
        """Release the output."""


class PwmOutput:
    """LED channels on gpiozero ``PWMLED`` pins: one dimmable channel, or RGB/RGBW.

    With the ``mono`` layout every pin gets the same duty (several strings, one level).
    """

    refresh_s: float | None = None

    def __init__(
        self,
        pins: Sequence[int],
        layout: Layout = "mono",
        *,
        pin_factory: Any = None,
        frequency: float = 1000.0,
    ) -> None:
        from gpiozero import PWMLED

        if not pins or (layout != "mono" and layout_for(len(pins)) != layout):
            raise ValueError(f"pins: {list(pins)} do not make a {layout} light")
        self.layout: Layout = layout
        self.leds: list[Any] = []
        try:
            for pin in pins:
                self.leds.append(PWMLED(pin, frequency=frequency, pin_factory=pin_factory))
        except Exception:
            self.close()
            raise

    def open(self) -> None:
        """Nothing to do: GPIO pins do not come and go."""

    def write(self, duties: Sequence[float]) -> None:
        """Set each pin's duty."""
        values = [duties[0]] * len(self.leds) if self.layout == "mono" else duties
        for led, duty in zip(self.leds, values, strict=True):
            led.value = max(0.0, min(1.0, duty))

    def read_back(self) -> list[float] | None:
        """The pins' duties (zero after a restart: the pins start low)."""
        values = [float(led.value) for led in self.leds]
        return values[:1] if self.layout == "mono" else values

    def close(self) -> None:
        """Release the pins (the lights go dark)."""
        for led in self.leds:
            led.close()


class SysfsPwmOutput:
    """Kernel hardware PWM channels under ``/sys/class/pwm/pwmchipN`` (``chip``).

    Hardware PWM has no software jitter, so it holds the dimmest levels steady. The channels
    stay enabled at their duty when roomd stops, and a restart reads them back.
    """

    refresh_s: float | None = None

    def __init__(
        self,
        chip: str | Path,
        channels: Sequence[int],
        *,
        period_ns: int = 400_000,
        export_timeout_s: float = 2.0,
    ) -> None:
        self.chip = Path(chip)
        self.channels = list(channels)
        self.layout: Layout = layout_for(len(self.channels))
        # 2.5 kHz: above the IEEE 1789 no-effect flicker limit for full-depth modulation.
        self.period_ns = period_ns
        self.export_timeout_s = export_timeout_s

    @staticmethod
    def _read_int(path: Path) -> int:
        try:
            return int(path.read_text().strip() or 0)
        except ValueError:
            return 0

    def open(self) -> None:
        """Export and configure each channel, keeping the duty it already has."""
        for ch in self.channels:
            d = self.chip / f"pwm{ch}"
            if not d.is_dir():
                (self.chip / "export").write_text(f"{ch}\n")
                # The kernel creates pwmN asynchronously and udev then fixes its permissions.
                deadline = time.monotonic() + self.export_timeout_s
                while not (d / "duty_cycle").exists():
                    if time.monotonic() >= deadline:
                        raise OSError(f"{d} did not appear after export")
                    time.sleep(0.005)
            period = self._read_int(d / "period")
            if period != self.period_ns:
                duty = self._read_int(d / "duty_cycle")
                fraction = duty / period if period > 0 else 0.0
                if duty > self.period_ns:  # the kernel refuses a period shorter than the duty
                    (d / "duty_cycle").write_text("0\n")
                (d / "period").write_text(f"{self.period_ns}\n")
                (d / "duty_cycle").write_text(f"{round(fraction * self.period_ns)}\n")
            if (d / "enable").read_text().strip() != "1":
                (d / "enable").write_text("1\n")

    def write(self, duties: Sequence[float]) -> None:
        """Set each channel's duty cycle in nanoseconds."""
        for ch, duty in zip(self.channels, duties, strict=True):
            ns = round(max(0.0, min(1.0, duty)) * self.period_ns)
            (self.chip / f"pwm{ch}" / "duty_cycle").write_text(f"{ns}\n")

    def read_back(self) -> list[float] | None:
        """Each channel's duty as a fraction of its period."""
        out = []
        for ch in self.channels:
            d = self.chip / f"pwm{ch}"
            period = self._read_int(d / "period")
            on = (d / "enable").read_text().strip() == "1"
            out.append(self._read_int(d / "duty_cycle") / period if on and period else 0.0)
        return out

    def close(self) -> None:
        """Leave the channels as they are: the room stays lit across a restart."""


class NullOutput:
    """No lights configured (e.g. DMX without a port): accepts and drops every write."""

    layout: Layout = "mono"
    refresh_s: float | None = None

    def open(self) -> None:
        """Nothing to open."""

    def write(self, duties: Sequence[float]) -> None:
        """Drop the write."""

    def read_back(self) -> list[float] | None:
        """Nothing to read."""
        return None

    def close(self) -> None:
        """Nothing to close."""


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

        Returns the clock seconds until the next tick is needed (0: at the step rate) or
        ``None`` when there is nothing to do until ``set_scene``.
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
            return 0.0
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
    serial_factory: SerialFactory | None = None,
    clock: Clock | None = None,
    start: bool = True,
) -> Lighting:
    """Build the lights ``[hardware.lighting]`` describes.

    ``dmx`` with an empty ``port`` and no ``serial_factory`` has no lights: the device is
    reported ``absent``. Under ``--simulate``, pass a ``serial_factory`` that opens the
    simulated widget's pty.
    """
    output: LightOutput
    if section.driver == "pwm":
        output = PwmOutput(section.pins, "mono", pin_factory=pin_factory)
    elif section.driver == "rgb":
        output = PwmOutput(section.pins, layout_for(len(section.pins)), pin_factory=pin_factory)
    elif section.driver == "sysfs_pwm":
        output = SysfsPwmOutput(section.pwm_chip, section.channels)
    elif section.port or serial_factory is not None:
        output = DmxOutput(section.port, section.dmx_channels, serial_factory)
    else:
        emit(DeviceChanged(device=DEVICE, status="absent", detail="dmx driver without a port"))
        return Lighting(NullOutput(), lambda _msg: None, clock=clock, start=start)
    return Lighting(output, emit, clock=clock, start=start)
