"""The simulated SunTech module answering host frames on its pty."""

from __future__ import annotations

import serial

from controller.clock import FakeClock
from hw.simulator import SimulatedNibpModule, simulated_nibp
from hw.vitals.suntech import ModuleFrameParser, decode_result
from hw.vitals.suntech_frames import host_frame


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


def test_the_daemon_gets_a_module_for_suntech_and_none_for_manual() -> None:
    clock = FakeClock()
    assert simulated_nibp("manual", clock, None) is None
    sim = simulated_nibp("suntech", clock, None)
    try:
        assert isinstance(sim, SimulatedNibpModule) and sim.plugged
    finally:
        assert sim is not None
        sim.close()
