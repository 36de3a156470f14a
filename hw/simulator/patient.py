"""The simulated patient: vitals that follow a ketamine session on the injected clock.

Under ``--simulate`` the session's clock drives the curve, so ``--time-scale`` speeds it up;
``incident()`` applies the physiological incidents (desaturation, hypertension, recover).
"""

from __future__ import annotations

import math
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass

from controller.ports import Clock


@dataclass(frozen=True)
class Vitals:
    """The simulated patient's true values at one instant."""

    spo2: int
    hr: int
    pi: float
    sys: int
    dia: int

    @property
    def map(self) -> int:
        """Mean arterial pressure, the usual one-third estimate."""
        return round(self.dia + (self.sys - self.dia) / 3)


def ketamine_effect(minutes: float | None) -> float:
    """0..1: the haemodynamic effect ``minutes`` after the infusion started.

    Rises smoothly to a peak at 40 min (the end of a standard infusion) and returns to
    baseline over the following 90 min; 0 before the infusion or when none was started.
    """
    if minutes is None or minutes <= 0:
        return 0.0
    if minutes <= 40:
        return math.sin(math.pi / 2 * minutes / 40)
    if minutes <= 130:
        return 0.5 * (1 + math.cos(math.pi * (minutes - 40) / 90))
    return 0.0


class SimulatedPatient:
    """A patient whose vitals follow a ketamine session plus whatever incident is running."""

    def __init__(
        self,
        clock: Clock,
        *,
        baseline: tuple[int, int, int] = (122, 78, 70),
        seed: int | None = None,
    ) -> None:
        self._clock = clock
        self.baseline_sys, self.baseline_dia, self.baseline_hr = baseline
        self._infusion_t0: float | None = None
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self.desaturating = False
        self.hypertensive = False
        self._watchers: list[Callable[[], None]] = []

    def watch(self, changed: Callable[[], None]) -> None:
        """Call ``changed()`` after every incident (a monitor then samples at once)."""
        self._watchers.append(changed)

    def set_infusion_started(self, monotonic_ts: float | None) -> None:
        """Anchor the session: the infusion started at ``monotonic_ts`` (clock.monotonic())."""
        self._infusion_t0 = monotonic_ts

    def minutes_since_infusion(self) -> float | None:
        """Session minutes since the infusion started (``None`` before it)."""
        if self._infusion_t0 is None:
            return None
        return (self._clock.monotonic() - self._infusion_t0) / 60.0

    def incident(self, kind: str) -> None:
        """Apply a physiological incident (desaturation, hypertension) or ``recover``."""
        with self._lock:
            if kind == "desaturation":
                self.desaturating = True
            elif kind == "hypertension":
                self.hypertensive = True
            elif kind == "recover":
                self.desaturating = self.hypertensive = False
        for changed in self._watchers:
            changed()

    def vitals(self) -> Vitals:
        """The patient's values now (with a little beat-to-beat noise)."""
        effect = ketamine_effect(self.minutes_since_infusion())
        with self._lock:
            noise = self._rng.randint(-1, 1)
            sys = self.baseline_sys + 15 * effect + noise
            dia = self.baseline_dia + 10 * effect + noise
            hr = self.baseline_hr + 6 * effect + self._rng.randint(-1, 1)
            spo2 = self._rng.choice((97, 97, 98, 98, 98, 99)) - (1 if effect > 0.5 else 0)
            spo2 = max(96, min(99, spo2))
            if self.desaturating:
                spo2, hr = 85 + self._rng.randint(0, 1), hr + 15
            if self.hypertensive:
                sys, dia, hr = sys + 70, dia + 37, hr + 10
            pi = round(3.2 + self._rng.uniform(-0.2, 0.2), 2)
        return Vitals(spo2=round(spo2), hr=round(hr), pi=pi, sys=round(sys), dia=round(dia))
