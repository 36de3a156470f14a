"""The simulated patient and the simulated serial devices behind pseudo-terminals.

Under ``--simulate`` each absent serial device is replaced by one of these: it speaks the real
device's format into a pty, and the real driver reads it through pyserial. The patient's
vitals follow a plausible ketamine session driven by the injected clock, so ``--time-scale``
speeds the session up; scripted incidents exercise alarms and the drivers' error paths.
"""

from __future__ import annotations

import contextlib
import math
import os
import random
import select
import shutil
import tempfile
import threading
import time
import tty
from collections.abc import Callable
from dataclasses import dataclass

from controller.ports import Clock
from hw.vitals import nonin, suntech

INCIDENTS = ("desaturation", "hypertension", "sensor_off", "unplug", "garbage", "recover")
"""Incident kinds the simulated room accepts (the contract's ``sim/incident``)."""

OXIMETER_FORMATS = ("masimo_ascii", "nonin_ascii", "nonin_df2", "nonin_df7")

# Host command byte → command length (the byte itself included); the rest are one byte.
_HOST_COMMAND_LEN = {0x79: 3, 0x17: 3, 0x0C: 4, 0x04: 2, 0x86: 4, 0x81: 5}


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


class _Pty:
    """A pseudo-terminal whose slave is always reached through one stable symlink.

    ``unplug()`` closes the pty (a reader's next read fails) and removes the link; ``plug()``
    opens a fresh pty behind the same link, so a driver reconnects by reopening the path.
    """

    def __init__(self, name: str) -> None:
        self._dir = tempfile.mkdtemp(prefix="roomd-sim-")
        self.path = os.path.join(self._dir, name)
        self.master: int | None = None
        self._slave: int | None = None
        self.lock = threading.Lock()
        self.plug()

    def plug(self) -> None:
        with self.lock:
            if self.master is not None:
                return
            master, slave = os.openpty()
            tty.setraw(slave)  # binary frames must pass untouched (no CR/LF translation, echo)
            os.set_blocking(master, False)
            # Keep our slave end open: the pty stays alive between driver reconnects.
            self.master, self._slave = master, slave
            tmp = self.path + ".new"
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            os.symlink(os.ttyname(slave), tmp)
            os.replace(tmp, self.path)

    def unplug(self) -> None:
        with self.lock:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)
            for fd in (self.master, self._slave):
                if fd is not None:
                    with contextlib.suppress(OSError):
                        os.close(fd)
            self.master = self._slave = None

    @property
    def plugged(self) -> bool:
        return self.master is not None

    def write(self, data: bytes) -> None:
        with self.lock:
            if self.master is None:
                return
            # Nobody reading: the pty buffer fills and the device's output is simply lost.
            with contextlib.suppress(BlockingIOError, OSError):
                os.write(self.master, data)

    def close(self) -> None:
        self.unplug()
        shutil.rmtree(self._dir, ignore_errors=True)


class _SimDevice:
    """What both simulated devices share: a pty, a thread, device-level incidents."""

    def __init__(self, name: str, patient: SimulatedPatient, seed: int | None) -> None:
        self.patient = patient
        self._pty = _Pty(name)
        self._stop = threading.Event()
        self._rng = random.Random(seed)
        self._garbage_pending = False
        self._thread: threading.Thread | None = None

    @property
    def port_path(self) -> str:
        """The path a driver opens (a symlink to the current pty)."""
        return self._pty.path

    @property
    def plugged(self) -> bool:
        """Whether the device is 'connected' (its pty exists)."""
        return self._pty.plugged

    def incident(self, kind: str) -> None:
        """Apply a scripted incident: see ``INCIDENTS``."""
        if kind not in INCIDENTS:
            raise ValueError(f"unknown incident {kind!r}; kinds are {', '.join(INCIDENTS)}")
        self.patient.incident(kind)
        if kind == "unplug":
            self._pty.unplug()
        elif kind == "garbage":
            self._garbage_pending = True
        elif kind == "recover":
            self._garbage_pending = False
            self._pty.plug()

    def _start(self, target: Callable[[], None], name: str) -> None:
        self._thread = threading.Thread(target=target, name=name, daemon=True)
        self._thread.start()

    def _take_garbage(self) -> bytes:
        if not self._garbage_pending:
            return b""
        self._garbage_pending = False
        return self._rng.randbytes(64)

    def close(self) -> None:
        """Stop the thread and remove the pty."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2.0)
        self._pty.close()


class SimulatedOximeter(_SimDevice):
    """A pulse oximeter writing ``format`` (a driver name) into a pty about once a second."""

    def __init__(
        self,
        format: str,
        clock: Clock,
        *,
        patient: SimulatedPatient | None = None,
        period_s: float = 1.0,
        seed: int | None = None,
    ) -> None:
        if format not in OXIMETER_FORMATS:
            raise ValueError(f"unknown oximeter format {format!r}")
        super().__init__("oximeter", patient or SimulatedPatient(clock, seed=seed), seed)
        self.format = format
        self._clock = clock
        self.period_s = period_s
        self.sensor_off = False
        self._phase = 0.0
        self._start(self._run, f"sim-oximeter-{format}")

    def incident(self, kind: str) -> None:
        """Apply a scripted incident: see ``INCIDENTS``."""
        super().incident(kind)
        if kind == "sensor_off":
            self.sensor_off = True
        elif kind == "recover":
            self.sensor_off = False

    def _run(self) -> None:
        while not self._stop.wait(self.period_s):
            if self._pty.plugged:
                self._pty.write(self._take_garbage() + self.output())

    def output(self) -> bytes:
        """One second of the monitor's output for the patient's current state."""
        v = self.patient.vitals()
        if self.format == "masimo_ascii":
            return self._masimo(v)
        if self.format == "nonin_ascii":
            return self._nonin_ascii(v)
        if self.format == "nonin_df7":
            return self._df7(v)
        return self._df2(v)

    def _masimo(self, v: Vitals) -> bytes:
        stamp = self._clock.now().strftime("%m/%d/%y %H:%M:%S")
        if self.sensor_off:
            values, exc = "SPO2=---% BPM=--- PI=--.--%", 0x020
        else:
            values, exc = f"SPO2={v.spo2:03d}% BPM={v.hr:03d} PI={v.pi:05.2f}%", 0
        alarm = "0001" if v.spo2 < 90 and not self.sensor_off else "0000"
        return (
            f"{stamp} SN=0000084590 {values} SPCO=--.-% SPMET=--.-% DESAT=-- PIDELTA=+-- "
            f"ALARM={alarm} EXC={exc:06X}\r\n"
        ).encode()

    def _nonin_ascii(self, v: Vitals) -> bytes:
        if self.sensor_off:
            return b"SPO2=--- HR=---\r\n"
        return f"SPO2={v.spo2:03d} HR={v.hr:03d}\r\n".encode()

    def _df2(self, v: Vitals) -> bytes:
        # Three packets = one second. Finger out: out of track, values missing.
        hr, spo2 = (nonin.HR_MISSING, nonin.SPO2_MISSING) if self.sensor_off else (v.hr, v.spo2)
        status = nonin.STATUS_ALWAYS | (nonin.STATUS_OOT if self.sensor_off else 0x02)
        values = {0: (hr >> 7) & 0x03, 1: hr & 0x7F, 2: spo2 & 0x7F}
        out = bytearray()
        for _ in range(3):
            for i in range(nonin.FRAMES_PER_PACKET):
                self._phase += 2 * math.pi * (v.hr / 60) / 75
                pleth = 0 if self.sensor_off else int(128 + 100 * math.sin(self._phase))
                head = bytes((0x01, status | (nonin.STATUS_SYNC if i == 0 else 0), pleth))
                head += bytes((values.get(i, 0),))
                out += head + bytes((nonin.df2_checksum(head),))
        return bytes(out)

    def _df7(self, v: Vitals) -> bytes:
        # As DF2, with a 16-bit pleth and every HR/SpO2 variant in its frame.
        hr, spo2 = (nonin.HR_MISSING, nonin.SPO2_MISSING) if self.sensor_off else (v.hr, v.spo2)
        status = nonin.STATUS_ALWAYS | (nonin.STATUS_OOT if self.sensor_off else 0x02)
        values = {nonin.DF7_SREV: 0x10, nonin.DF7_STAT2: 0}
        for msb, lsb in (nonin.DF7_HR, nonin.DF7_E_HR, nonin.DF7_HR_D, nonin.DF7_E_HR_D):
            values[msb], values[lsb] = (hr >> 7) & 0x03, hr & 0x7F
        for i in (nonin.DF7_SPO2, nonin.DF7_SPO2_D, nonin.DF7_SPO2_FAST, nonin.DF7_SPO2_BB):
            values[i] = spo2 & 0x7F
        values[nonin.DF7_E_SPO2] = values[nonin.DF7_E_SPO2_D] = spo2 & 0x7F
        out = bytearray()
        for _ in range(3):
            for i in range(nonin.FRAMES_PER_PACKET):
                self._phase += 2 * math.pi * (v.hr / 60) / 75
                pleth = 0 if self.sensor_off else int(32768 + 25000 * math.sin(self._phase))
                head = bytes(
                    (status | (nonin.STATUS_SYNC if i == 0 else 0), pleth >> 8, pleth & 0xFF)
                )
                head += bytes((values.get(i, 0),))
                out += head + bytes((sum(head) & 0xFF,))
        return bytes(out)


class SimulatedNibpModule(_SimDevice):
    """A SunTech Advantage module answering host frames on its pty.

    A measurement takes ``measure_session_s`` of session time (so ``--time-scale`` shortens
    it), then the module reports 'executed' and answers 'get BP data' with the patient's BP.
    """

    def __init__(
        self,
        clock: Clock,
        *,
        patient: SimulatedPatient | None = None,
        measure_session_s: float = 30.0,
        seed: int | None = None,
    ) -> None:
        super().__init__("nibp", patient or SimulatedPatient(clock, seed=seed), seed)
        self._clock = clock
        self.measure_session_s = measure_session_s
        self._done_at: float | None = None
        self._last = bytes(21)
        self._next_error = 0
        self.commands: list[bytes] = []
        self._received = threading.Condition()
        self._buf = bytearray()
        self._start(self._run, "sim-nibp")

    def fail_next(self, code: int) -> None:
        """Make the next measurement end with module error ``code`` (e.g. 87, a leak)."""
        self._next_error = code

    def wait_for_command(self, frame: bytes, count: int = 1, timeout: float = 5.0) -> bool:
        """Wait until the module has received ``frame`` ``count`` times (for tests/demos)."""
        with self._received:
            return self._received.wait_for(lambda: self.commands.count(frame) >= count, timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            master = self._pty.master
            if master is None:
                self._buf.clear()
                self._stop.wait(0.05)
                continue
            try:
                ready, _, _ = select.select([master], [], [], 0.05)
                data = os.read(master, 256) if ready else b""
            except OSError:  # unplugged under us, or no reader on the other side yet
                self._stop.wait(0.05)
                data = b""
            if data:
                self._on_bytes(data)
            if self._done_at is not None and time.monotonic() >= self._done_at:
                self._done_at = None
                self._finish()

    def _on_bytes(self, data: bytes) -> None:
        self._buf.extend(data)
        while self._buf:
            start = self._buf.find(suntech.HOST_START)
            if start < 0:
                self._buf.clear()
                return
            del self._buf[:start]
            if len(self._buf) < 2:
                return
            size = 2 + _HOST_COMMAND_LEN.get(self._buf[1], 1)
            if len(self._buf) < size:
                return
            frame = bytes(self._buf[:size])
            if sum(frame) & 0xFF:
                del self._buf[:1]
                continue
            del self._buf[:size]
            self._command(frame[1:-1])
            with self._received:
                self.commands.append(frame)
                self._received.notify_all()

    def _reply(self, data: bytes) -> None:
        self._pty.write(self._take_garbage() + suntech.module_frame(data))

    def _command(self, cmd: bytes) -> None:
        if cmd == bytes((0x20,)):
            if self._done_at is not None:
                self._reply(b"B")
                return
            self._reply(b"O")
            delay = max(0.02, self._clock.real_seconds(self.measure_session_s))
            self._done_at = time.monotonic() + delay
        elif cmd == bytes((0x79, 0x01, 0x00)):
            self._done_at = None
            self._reply(b"A")
            self._reply(b"K")
        elif cmd == bytes((0x79, 0x03, 0x00)):
            self._reply(self._last)
        elif cmd == bytes((0x79, 0x05, 0x00)):
            self._reply(bytes((0, 0)))
        else:
            self._reply(b"N")

    def _finish(self) -> None:
        v = self.patient.vitals()
        data = bytearray(21)
        for offset, value in ((0, v.sys), (2, v.dia), (14, v.hr), (16, v.map)):
            data[offset : offset + 2] = value.to_bytes(2, "little")
        data[18] = self._next_error
        if self._next_error:
            data[0:4] = bytes(4)
        self._next_error = 0
        self._last = bytes(data)
        self._reply(b"K")
