"""The simulated oximeter: every registered protocol's monitor, through its own encoder;
an incident written at once."""

from __future__ import annotations

from typing import Any

import pytest
import serial

from controller.clock import FakeClock
from hw.simulator import SimulatedPatient, simulated_oximeter
from hw.simulator.oximeter import SimulatedOximeter
from hw.vitals.masimo import MasimoParser
from hw.vitals.nonin import NoninAsciiParser, NoninDf2Parser


@pytest.mark.parametrize(
    ("fmt", "parser"),
    [
        ("masimo_ascii", MasimoParser),
        ("nonin_ascii", NoninAsciiParser),
        ("nonin_df2", NoninDf2Parser),
    ],
)
def test_output_is_the_real_format(fmt: str, parser: type) -> None:
    sim = SimulatedOximeter(fmt, FakeClock(), period_s=3600, seed=2)
    try:
        [reading] = parser().feed(sim.output())[-1:]
        assert reading.quality == "ok" and 96 <= reading.spo2 <= 99
        sim.incident("sensor_off")
        [off] = parser().feed(sim.output())[-1:]
        assert off.quality != "ok" and off.spo2 is None
    finally:
        sim.close()


def test_the_daemon_gets_the_configured_drivers_monitor() -> None:
    clock = FakeClock()
    sim = simulated_oximeter("nonin_df2", clock, SimulatedPatient(clock, seed=1), 3600)
    assert sim is not None
    try:
        assert sim.format == "nonin_df2"
        assert len(NoninDf2Parser().feed(sim.output())) == 3  # three packets a second
    finally:
        sim.close()


def test_a_driver_without_a_simulated_monitor_is_refused_plainly(
    throwaway_oximeter: str,
) -> None:
    clock = FakeClock()
    assert simulated_oximeter(throwaway_oximeter, clock, SimulatedPatient(clock), 1.0) is None
    with pytest.raises(ValueError, match=f"the {throwaway_oximeter} oximeter driver has no"):
        SimulatedOximeter(throwaway_oximeter, clock)


def test_an_incident_is_written_at_once_not_at_the_next_sample() -> None:
    sim = SimulatedOximeter("masimo_ascii", FakeClock(), period_s=3600, seed=3)
    port = serial.Serial(sim.port_path, 9600, timeout=2.0)  # bounded; the period is an hour
    try:
        sim.patient.incident("desaturation")  # as the daemon's sim/incident does
        readings: list[Any] = []
        while not readings:
            data = port.read_until(b"\n")
            assert data, "no sample within 2 s of the incident"
            readings += MasimoParser().feed(data)
        assert readings[-1].spo2 <= 86
    finally:
        port.close()
        sim.close()
