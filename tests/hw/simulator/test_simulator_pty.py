"""A simulated device's pty: a stable path, unplug and replug, garbage, refused incidents."""

from __future__ import annotations

import os

import pytest
import serial

from controller.clock import FakeClock
from hw.simulator import SimulatedOximeter
from hw.vitals.nonin import NoninAsciiParser


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
