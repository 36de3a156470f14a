"""The simulated patient's session curve and incidents, on a FakeClock."""

from __future__ import annotations

import pytest

from controller.clock import FakeClock
from hw.simulator.patient import SimulatedPatient, ketamine_effect


def test_effect_curve_peaks_at_40_min_and_is_gone_by_130() -> None:
    assert ketamine_effect(None) == 0 and ketamine_effect(-5) == 0
    assert ketamine_effect(40) == pytest.approx(1.0)
    assert ketamine_effect(20) < ketamine_effect(39) < 1.0
    assert ketamine_effect(85) == pytest.approx(0.5)
    assert ketamine_effect(130) == pytest.approx(0.0, abs=1e-9) and ketamine_effect(200) == 0


def test_patient_follows_the_injected_clock() -> None:
    clock = FakeClock()
    patient = SimulatedPatient(clock, seed=7)
    base = patient.vitals()
    assert patient.minutes_since_infusion() is None
    patient.set_infusion_started(clock.monotonic())
    clock.advance(40 * 60)
    assert patient.minutes_since_infusion() == pytest.approx(40)
    peak = patient.vitals()
    assert 12 <= peak.sys - base.sys <= 18 and 7 <= peak.dia - base.dia <= 13
    assert 3 <= peak.hr - base.hr <= 9
    clock.advance(100 * 60)  # 2 h 20 after the start: back to baseline
    late = patient.vitals()
    assert abs(late.sys - base.sys) <= 2
    for _ in range(200):
        assert 96 <= patient.vitals().spo2 <= 99


def test_patient_incidents() -> None:
    patient = SimulatedPatient(FakeClock(), seed=1)
    patient.incident("desaturation")
    assert patient.vitals().spo2 <= 86
    patient.incident("hypertension")
    v = patient.vitals()
    assert v.sys >= 180 and v.dia >= 110
    patient.incident("recover")
    v = patient.vitals()
    assert v.spo2 >= 96 and v.sys < 140


def test_watchers_hear_of_every_incident() -> None:
    patient = SimulatedPatient(FakeClock(), seed=1)
    heard: list[bool] = []
    patient.watch(lambda: heard.append(patient.desaturating))
    patient.incident("desaturation")
    patient.incident("recover")
    assert heard == [True, False]  # called after the change
