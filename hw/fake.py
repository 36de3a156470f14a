"""Fakes of the room's hardware ports, for the core's tests (gpiozero ships MockFactory alike).

Each records what the core asked of it and has simulation verbs that act like the device.
"""

from __future__ import annotations

from controller.events import CallHeld, CallPressed, NibpCompleted, NibpFailed
from controller.models import NibpReading
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
