"""A simulated pulse oximeter: any registered oximeter driver's monitor, behind a pty.

It writes what the driver's own encoder (registered with the driver, ``hw.vitals.registry``)
makes of the patient's vitals, so a new protocol brings its simulated monitor with it.
"""

from __future__ import annotations

from controller.ports import Clock
from hw.simulator.patient import SimulatedPatient
from hw.simulator.pty import SimDevice
from hw.vitals.common import OxReading
from hw.vitals.registry import OXIMETERS, OxEncoder


def encoder_for(driver: str) -> OxEncoder:
    """A fresh encoder for oximeter driver ``driver``; ``ValueError`` if it has none."""
    make = OXIMETERS[driver].encoder
    if make is None:
        raise ValueError(f"the {driver} oximeter driver has no simulated monitor")
    return make()


class SimulatedOximeter(SimDevice):
    """A pulse oximeter writing ``format`` (a driver name) into a pty about once a second.

    An incident is written at once, as an extra sample: a test or bench that desaturates the
    patient measures the room, not a wait for the next sample period.
    """

    def __init__(
        self,
        format: str,
        clock: Clock,
        *,
        patient: SimulatedPatient | None = None,
        period_s: float = 1.0,
        seed: int | None = None,
    ) -> None:
        self._encode = encoder_for(format)
        super().__init__("oximeter", patient or SimulatedPatient(clock, seed=seed), seed)
        self.format = format
        self._clock = clock
        self.period_s = period_s
        self.sensor_off = False
        self.patient.watch(self._wake.set)
        self._start(self._run, f"sim-oximeter-{format}")

    def incident(self, kind: str) -> None:
        """Apply a scripted incident: see ``INCIDENTS``."""
        super().incident(kind)
        if kind == "sensor_off":
            self.sensor_off = True
        elif kind == "recover":
            self.sensor_off = False
        self._wake.set()  # (the patient's incidents wake it through ``watch``)

    def _run(self) -> None:
        while self._nap(self.period_s):
            if self._pty.plugged:
                self._pty.write(self._take_garbage() + self.output())

    def output(self) -> bytes:
        """One second of the monitor's output for the patient's current state."""
        if self.sensor_off:
            reading = OxReading(spo2=None, hr=None, pi=None, quality="sensor_off")
        else:
            v = self.patient.vitals()
            reading = OxReading(spo2=v.spo2, hr=v.hr, pi=v.pi, quality="ok")
        return self._encode(reading, self._clock.now())
