"""Each driver through the real serial path: pyserial on a pseudo-terminal.

Unplug closes the pty (the driver's read fails); replug opens a new pty behind the same path,
and the driver must reconnect by itself. Waits are bounded waits for thread I/O only.
"""

from __future__ import annotations

import contextlib
import os
import select
import threading
import time
from typing import Any

import pytest
from conftest import WAIT, Inbox, df2_packet, raw_pty, suntech_module, suntech_result

from controller.clock import FakeClock
from controller.config import NibpSection, OximeterSection
from controller.events import DeviceChanged, NibpCompleted, NibpFailed, VitalsArrived
from hw.simulator import SimulatedNibpModule, SimulatedOximeter
from hw.vitals import make_nibp, make_oximeter
from hw.vitals.nonin import NoninDf2
from hw.vitals.serial_port import open_serial
from hw.vitals.suntech import SuntechNibp, SuntechTimeouts

FAST: dict[str, Any] = {"backoff_initial": 0.02, "backoff_max": 0.1}


def is_status(status: str):  # type: ignore[no-untyped-def]
    return lambda m: isinstance(m, DeviceChanged) and m.status == status


def is_sample(m: object) -> bool:
    return isinstance(m, VitalsArrived)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def oximeter_section(fmt: str) -> OximeterSection:
    return OximeterSection(driver=fmt)


@pytest.mark.parametrize("fmt", ["masimo_ascii", "nonin_ascii", "nonin_df2", "nonin_df7"])
def test_oximeter_reads_unplug_replug(fmt: str, clock: FakeClock, inbox: Inbox) -> None:
    sim = SimulatedOximeter(fmt, clock, period_s=0.02, seed=3)
    driver = make_oximeter(
        oximeter_section(fmt),
        inbox.emit,
        clock,
        port=sim.port_path,
        **FAST,
    )
    assert driver is not None
    try:
        driver.start()
        inbox.wait_for(is_status("ok"))
        sample = inbox.wait_for(is_sample).sample
        assert sample.source == fmt and sample.quality == "ok"
        assert 96 <= sample.spo2 <= 99 and 60 <= sample.hr <= 80

        sim.incident("unplug")
        inbox.wait_for(is_status("lost"))
        sim.incident("recover")
        inbox.wait_for(is_status("ok"))
        inbox.wait_for(is_sample)

        # Values are never stale: after sensor_off the very next sample carries no numbers.
        sim.incident("sensor_off")
        off = inbox.wait_for(lambda m: is_sample(m) and m.sample.quality != "ok").sample
        assert off.spo2 is None and off.hr is None
        sim.incident("recover")
        inbox.wait_for(lambda m: is_sample(m) and m.sample.quality == "ok")

        sim.incident("garbage")
        for _ in range(3):  # readings keep coming after a burst of noise
            assert inbox.wait_for(is_sample).sample.quality == "ok"
    finally:
        driver.close()
        sim.close()
    assert not driver.reader.alive


def test_df2_raw_pty_no_stale_half_packet_after_reconnect(clock: FakeClock, inbox: Inbox) -> None:
    """A packet cut by the unplug is never completed with bytes from the new connection."""
    link = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"roomd-test-df2-{os.getpid()}")
    with raw_pty() as (master, path):
        os.symlink(path, link)
        driver = NoninDf2(link, 9600, inbox.emit, clock, **FAST)
        try:
            driver.start()
            inbox.wait_for(is_status("ok"))
            os.write(master, df2_packet(70, 96))
            assert inbox.wait_for(is_sample).sample.hr == 70
            os.write(master, df2_packet(71, 97)[:60])  # half a packet, then the cable goes
            os.close(master)
            inbox.wait_for(is_status("lost"))
            os.unlink(link)
        except BaseException:
            driver.close()
            raise
    with raw_pty() as (master2, path2):
        try:
            os.symlink(path2, link)
            inbox.wait_for(is_status("ok"))
            os.write(master2, df2_packet(72, 98)[60:] + df2_packet(73, 99))
            # the first sample after the reconnect is the new packet, not 71 or a 71/72 mix
            sample = inbox.wait_for(is_sample).sample
            assert (sample.hr, sample.spo2) == (73, 99)
        finally:
            driver.close()
            with contextlib.suppress(FileNotFoundError):
                os.unlink(link)


def make_suntech(sim: SimulatedNibpModule, inbox: Inbox, clock: FakeClock) -> SuntechNibp:
    nibp = make_nibp(NibpSection(), inbox.emit, clock, port=sim.port_path, **FAST)
    assert nibp is not None
    nibp.start()
    inbox.wait_for(is_status("ok"))
    return nibp


def test_suntech_measurement_error_and_replug(clock: FakeClock, inbox: Inbox) -> None:
    sim = SimulatedNibpModule(clock, measure_session_s=0.05, seed=1)
    nibp = make_suntech(sim, inbox, clock)
    try:
        nibp.start_measurement()
        reading = inbox.wait_for(lambda m: isinstance(m, NibpCompleted)).reading
        assert reading.source == "suntech" and reading.ts == clock.now()
        assert 110 <= reading.sys <= 140 and 70 <= reading.dia <= 90
        assert reading.dia < reading.map < reading.sys
        assert sim.commands[:2] == [bytes.fromhex("3a20a6"), bytes.fromhex("3a7903004a")]

        sim.patient.incident("hypertension")
        nibp.start_measurement()
        assert inbox.wait_for(lambda m: isinstance(m, NibpCompleted)).reading.sys >= 180
        sim.patient.incident("recover")

        sim.fail_next(1)
        nibp.start_measurement()
        assert inbox.wait_for(lambda m: isinstance(m, NibpFailed)).code == "weak_signal"

        sim.incident("unplug")
        inbox.wait_for(is_status("lost"))
        nibp.start_measurement()
        assert inbox.wait_for(lambda m: isinstance(m, NibpFailed)).code == "device_unavailable"
        sim.incident("recover")
        inbox.wait_for(is_status("ok"))
        nibp.start_measurement()
        assert isinstance(inbox.wait_for(lambda m: isinstance(m, NibpCompleted)), NibpCompleted)
    finally:
        nibp.close()
        sim.close()


def test_suntech_abort_and_unplug_mid_measurement(clock: FakeClock, inbox: Inbox) -> None:
    sim = SimulatedNibpModule(clock, measure_session_s=60.0)  # never finishes by itself
    nibp = make_suntech(sim, inbox, clock)
    try:
        start, abort = bytes.fromhex("3a20a6"), bytes.fromhex("3a7901004c")
        nibp.start_measurement()
        assert sim.wait_for_command(start)
        nibp.abort()
        assert nibp.state == "idle"
        assert sim.wait_for_command(abort)
        nibp.start_measurement()
        assert sim.wait_for_command(start, count=2)  # accepted again after the abort
        inbox_seen = len(inbox.seen)
        sim.incident("unplug")
        # The abort's late K is owed to the abort, not taken as the new measurement's end
        # (what once showed here as an invalid_reading first): the unplug is the failure.
        assert inbox.wait_for(lambda m: isinstance(m, NibpFailed)).code == "device_lost"
        assert not any(isinstance(m, NibpCompleted) for m in inbox.seen[inbox_seen:])
    finally:
        nibp.close()
        sim.close()


def test_suntech_silent_module_times_out(clock: FakeClock, inbox: Inbox) -> None:
    """The watchdog fires at its deadline: the reader sleeps in its read until then (no
    polling while idle), and a start wakes it to send the command and arm the deadline."""
    ports: list[Any] = []

    def factory(port: str, baud: int, timeout: float | None) -> Any:
        ports.append(open_serial(port, baud, timeout))
        return ports[-1]

    with raw_pty() as (master, path):
        nibp = SuntechNibp(
            path,
            9600,
            inbox.emit,
            clock,
            timeouts=SuntechTimeouts(ack=0.3),
            serial_factory=factory,
            **FAST,
        )
        try:
            nibp.start()
            inbox.wait_for(is_status("ok"))
            assert ports[0].timeout is None  # idle: the read waits for bytes, with no deadline
            started = time.monotonic()
            nibp.start_measurement()
            assert inbox.wait_for(lambda m: isinstance(m, NibpFailed)).code == "timeout"
            took = time.monotonic() - started
            assert 0.3 <= took < 0.3 + WAIT / 5, took  # at the deadline, not a poll after it
            assert os.read(master, 64).startswith(bytes.fromhex("3a20a6"))
        finally:
            nibp.close()
        # close() cut short the read that had no deadline (the port stayed open and silent).
        assert not nibp.reader.alive


def test_suntech_a_late_abort_ack_is_not_the_end_of_the_next_measurement(
    clock: FakeClock, inbox: Inbox
) -> None:
    """Start, abort, start again at once: the module's answers to the first two ('O', then
    'A' 'K') may come after the second start. The abort's 'K' must not be taken for the end
    of the new measurement (the driver would fetch an empty result and lose it)."""
    start, abort, get = (bytes.fromhex(h) for h in ("3a20a6", "3a7901004c", "3a7903004a"))

    def sent(master: int, frame: bytes) -> None:
        assert select.select([master], [], [], WAIT)[0], f"{frame.hex()} was never sent"
        assert os.read(master, len(frame)) == frame

    with raw_pty() as (master, path):
        nibp = SuntechNibp(path, 9600, inbox.emit, clock, **FAST)
        try:
            nibp.start()
            inbox.wait_for(is_status("ok"))
            nibp.start_measurement()
            sent(master, start)
            nibp.abort()
            sent(master, abort)
            nibp.start_measurement()
            sent(master, start)
            ack = b"".join(suntech_module(c) for c in (b"O", b"A", b"K", b"O"))
            os.write(master, ack)
            until = time.monotonic() + WAIT
            while nibp.state != "measuring" and time.monotonic() < until:
                threading.Event().wait(0.01)  # the reader takes the acks in (bounded wait)
            # Nothing is fetched: the measurement is still going on.
            assert not select.select([master], [], [], 0.5)[0]
            assert nibp.state == "measuring"
            os.write(master, suntech_module(b"K"))  # now it is over
            sent(master, get)
            os.write(master, suntech_result(121, 79, 93, 66))
            reading = inbox.wait_for(lambda m: isinstance(m, (NibpCompleted, NibpFailed)))
            assert isinstance(reading, NibpCompleted), reading
            assert (reading.reading.sys, reading.reading.dia) == (121, 79)
        finally:
            nibp.close()


def test_factories() -> None:
    clock = FakeClock()
    assert make_oximeter(OximeterSection(), print, clock) is None  # no port: absent
    assert make_nibp(NibpSection(driver="manual", port="/dev/ttyUSB1"), print, clock) is None
    assert (
        type(make_oximeter(OximeterSection(driver="nonin_df2", port="/x"), print, clock)).__name__
        == "NoninDf2"
    )
