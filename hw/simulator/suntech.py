"""A simulated SunTech Advantage NIBP module behind a pty, answering the host's frames."""

from __future__ import annotations

import os
import select
import threading
import time

from controller.ports import Clock
from hw.simulator.patient import SimulatedPatient
from hw.simulator.pty import SimDevice
from hw.vitals import suntech_frames as suntech

# Host command byte → command length (the byte itself included); the rest are one byte.
_HOST_COMMAND_LEN = {0x79: 3, 0x17: 3, 0x0C: 4, 0x04: 2, 0x86: 4, 0x81: 5}


class SimulatedNibpModule(SimDevice):
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
            # Logged before it is answered: whoever saw the answer finds the command logged.
            with self._received:
                self.commands.append(frame)
                self._received.notify_all()
            self._command(frame[1:-1])

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
