"""The simulated patient and the simulated serial devices behind pseudo-terminals.

Under ``--simulate`` each absent serial device is replaced by one of these: it speaks the real
device's format into a pty, and the real driver reads it through pyserial. The patient's
vitals follow a plausible ketamine session driven by the injected clock, so ``--time-scale``
speeds the session up; scripted incidents exercise alarms and the drivers' error paths.

The patient is ``patient``, the pty plumbing ``pty``; a simulated device is found through its
driver's registration (``hw.vitals.registry``), so each protocol brings its own.
"""

from __future__ import annotations

from controller.ports import Clock
from hw.simulator.oximeter import SimulatedOximeter
from hw.simulator.patient import SimulatedPatient, Vitals, ketamine_effect
from hw.simulator.pty import INCIDENTS
from hw.simulator.suntech import SimulatedNibpModule
from hw.vitals.registry import NIBPS, OXIMETERS, SimulatedDevice


def simulated_oximeter(
    driver: str, clock: Clock, patient: SimulatedPatient, period_s: float
) -> SimulatedOximeter | None:
    """The simulated monitor for oximeter driver ``driver``; ``None`` if it declares none."""
    if OXIMETERS[driver].encoder is None:
        return None
    return SimulatedOximeter(driver, clock, patient=patient, period_s=period_s)


def simulated_nibp(
    driver: str, clock: Clock, patient: SimulatedPatient | None
) -> SimulatedDevice | None:
    """The simulated module for NIBP driver ``driver``; ``None`` if it has none (``manual``)."""
    make = NIBPS[driver].simulator
    return None if make is None else make(clock, patient)


__all__ = [
    "INCIDENTS",
    "SimulatedNibpModule",
    "SimulatedOximeter",
    "SimulatedPatient",
    "Vitals",
    "ketamine_effect",
    "simulated_nibp",
    "simulated_oximeter",
]
