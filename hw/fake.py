"""Fakes of the room's hardware ports, for the core's tests (gpiozero ships MockFactory alike).

Each records what the core asked of it and has simulation verbs that act like the device.
"""

from __future__ import annotations

import threading

from controller.events import (
    CallHeld,
    CallPressed,
    DeviceChanged,
    NibpCompleted,
    NibpFailed,
    VitalsArrived,
)
from controller.models import NibpReading, VitalsSample
from controller.ports import Annunciation, Clock, Emit, LampMode


class FakeLighting:
    """Records every scene set on it."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, float, tuple[int, int, int] | None, float]] = []

    def set_scene(
        self, scene: str, level: float, colour: tuple[int, int, int] | None, fade_s: float
    ) -> None:
        """Record the scene."""
        self.calls.append((scene, level, colour, fade_s))

    @property
    def level(self) -> float:
        """The level last asked for."""
        return self.calls[-1][1] if self.calls else 0.0


class FakeCallButton:
    """A call button and its lamp: ``press()`` and ``hold()`` act like the patient/clinician."""

    def __init__(self, emit: Emit) -> None:
        self._emit = emit
        self.lamp: LampMode = "off"
        self.lamp_history: list[LampMode] = []

    def set_lamp(self, mode: LampMode) -> None:
        """Record the lamp mode."""
        self.lamp = mode
        self.lamp_history.append(mode)

    def press(self) -> None:
        """The patient presses the button."""
        self._emit(CallPressed())

    def hold(self) -> None:
        """A clinician holds the button at the bedside to clear the call."""
        self._emit(CallHeld())


class FakeAnnunciator:
    """Records every annunciation pattern."""

    def __init__(self) -> None:
        self.pattern: Annunciation = "off"
        self.history: list[Annunciation] = []

    def annunciate(self, pattern: Annunciation) -> None:
        """Record the pattern."""
        self.pattern = pattern
        self.history.append(pattern)


class FakeNibp:
    """A commandable NIBP module: ``finish()`` or ``fail()`` completes a measurement."""

    def __init__(self, emit: Emit, clock: Clock, source: str = "fake") -> None:
        self._emit = emit
        self._clock = clock
        self._source = source
        self.measuring = False
        self.started = 0
        self.aborted = 0

    def start_measurement(self) -> None:
        """Begin a measurement."""
        self.measuring = True
        self.started += 1

    def abort(self) -> None:
        """Abort the measurement."""
        self.measuring = False
        self.aborted += 1

    def finish(self, sys: int = 122, dia: int = 78, hr: int | None = 72) -> NibpReading:
        """Complete the measurement with a reading."""
        self.measuring = False
        reading = NibpReading(
            ts=self._clock.now(),
            sys=sys,
            dia=dia,
            map=round((sys + 2 * dia) / 3),
            hr=hr,
            source=self._source,
        )
        self._emit(NibpCompleted(reading))
        return reading

    def fail(self, code: str = "weak_signal") -> None:
        """Complete the measurement with an error."""
        self.measuring = False
        self._emit(NibpFailed(code))


class SimulatedOximeter:
    """A stand-in oximeter for ``--simulate``: a 1 Hz thread of plausible samples.

    Incidents (``incident(kind)``) change what it reports: desaturation, sensor_off, unplug
    (reports the device lost and goes quiet), recover.
    """

    def __init__(self, emit: Emit, clock: Clock, *, interval_s: float = 1.0) -> None:
        self._emit = emit
        self._clock = clock
        self._interval = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.mode = "normal"
        self._n = 0

    def start(self) -> None:
        """Begin reporting."""
        self._emit(DeviceChanged("oximeter", "ok"))
        self._thread = threading.Thread(target=self._run, name="sim-oximeter", daemon=True)
        self._thread.start()

    def incident(self, kind: str) -> None:
        """Change what the simulated patient and sensor do."""
        if kind == "unplug":
            self._emit(DeviceChanged("oximeter", "lost", "simulated unplug"))
        elif kind == "recover" and self.mode == "unplug":
            self._emit(DeviceChanged("oximeter", "ok"))
        self.mode = "normal" if kind == "recover" else kind

    def sample(self) -> VitalsSample | None:
        """The next sample (None while unplugged)."""
        self._n += 1
        wobble = (self._n % 5) - 2
        now = self._clock.now()
        if self.mode == "unplug":
            return None
        if self.mode == "sensor_off":
            return VitalsSample(ts=now, source="simulated", quality="sensor_off")
        spo2 = 84 + wobble % 2 if self.mode == "desaturation" else 97 + (wobble > 0)
        return VitalsSample(ts=now, spo2=spo2, hr=72 + wobble, pi=2.4, source="simulated")

    def close(self) -> None:
        """Stop reporting."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            sample = self.sample()
            if sample is not None:
                self._emit(VitalsArrived(sample))


class SimulatedNibp(FakeNibp):
    """A stand-in NIBP module for ``--simulate`` that completes each measurement by itself."""

    def __init__(self, emit: Emit, clock: Clock, *, delay_s: float = 1.0) -> None:
        super().__init__(emit, clock, source="simulated")
        self._delay = delay_s
        self.hypertension = False

    def start_measurement(self) -> None:
        """Begin a measurement that finishes after the delay (real seconds)."""
        super().start_measurement()
        timer = threading.Timer(self._delay, self._complete)
        timer.daemon = True
        timer.start()

    def _complete(self) -> None:
        if self.measuring:
            if self.hypertension:
                self.finish(192, 114, 96)
            else:
                self.finish(124 + self.started % 7, 78 + self.started % 5, 72)
