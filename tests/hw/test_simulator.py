"""The simulated patient's session curve and the simulated devices' ptys and incidents."""

from __future__ import annotations

import os

import pytest
import serial

from controller.clock import FakeClock
from hw.simulator import (
    SimulatedNibpModule,
    SimulatedOximeter,
    SimulatedPatient,
    ketamine_effect,
)
from hw.vitals.masimo import MasimoParser
from hw.vitals.nonin import NoninAsciiParser, NoninDf2Parser
from hw.vitals.suntech import ModuleFrameParser, decode_result, host_frame


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


def test_unplug_removes_the_path_and_recover_restores_it() -> None:
    sim = SimulatedOximeter("masimo_ascii", FakeClock(), period_s=3600)
    try:
        sim.incident("unplug")
        assert not os.path.exists(sim.port_path) and not sim.plugged
        with pytest.raises(serial.SerialException):
            serial.Serial(sim.port_path, 9600)
        sim.incident("recover")
        assert os.path.exists(sim.port_path) and sim.plugged
        assert os.path.realpath(sim.port_path).startswith("/dev/pts/")
    finally:
        sim.close()
    assert not os.path.exists(os.path.dirname(sim.port_path))


def test_garbage_is_written_once_then_lines_resume() -> None:
    sim = SimulatedOximeter("nonin_ascii", FakeClock(), period_s=0.02, seed=5)
    port = serial.Serial(sim.port_path, 9600, timeout=0.2)
    try:
        parser = NoninAsciiParser()
        sim.incident("garbage")
        readings: list[object] = []
        while len(readings) < 3:
            data = port.read(64)
            assert data, "the simulator stopped writing"
            readings += parser.feed(data)
        assert parser.bad_frames >= 1  # the random burst was there and was dropped
    finally:
        port.close()
        sim.close()


def test_unknown_incident_is_refused() -> None:
    sim = SimulatedOximeter("nonin_ascii", FakeClock(), period_s=3600)
    try:
        with pytest.raises(ValueError, match="unknown incident"):
            sim.incident("fire")
    finally:
        sim.close()


def test_nibp_module_answers_host_frames() -> None:
    clock = FakeClock()
    sim = SimulatedNibpModule(clock, measure_session_s=0.05, seed=3)
    port = serial.Serial(sim.port_path, 9600, timeout=0.2)
    parser = ModuleFrameParser()

    def next_frame() -> bytes:
        frames: list[bytes] = []
        while not frames:
            data = port.read(1)
            assert data, "no answer from the simulated module"
            frames = parser.feed(data + port.read(port.in_waiting))
        return frames[0]

    try:
        port.write(host_frame(0x20))
        assert next_frame() == b"O"
        assert next_frame() == b"K"  # after the short simulated cycle
        port.write(host_frame(0x79, 0x03, 0x00))
        result = decode_result(next_frame())
        assert result is not None and result.error == 0 and result.dia < result.map < result.sys
        port.write(host_frame(0x79, 0x01, 0x00))
        assert next_frame() == b"A"
        port.write(b"\x3a\x20\x00")  # bad checksum: ignored
        port.write(host_frame(0x99))
        assert next_frame() in (b"K", b"N")
    finally:
        port.close()
        sim.close()
