"""SunTech Advantage OEM NIBP module (9600 8N1).

Host → module: ``0x3A cmd… CK``. Module → host: ``0x3E LEN data… CK`` where LEN counts the
whole frame. CK makes the byte sum of the whole frame 0 mod 256. A measurement goes:

1. host ``3A 20 CK`` (start adult) → module ``3E 04 'O' CK`` (received);
2. module ``3E 04 'K' CK`` when the cycle is over (executed);
3. host ``3A 79 03 00 CK`` (get BP data) → module ``3E 18 <21 bytes> CK``: systolic (0-1),
   diastolic (2-3), HR (14-15), MAP (16-17) as little-endian 16-bit, error code (18).

Abort is ``3A 79 01 00 CK`` (module: ``'A'`` then ``'K'``). Details we could not confirm from
the manual are listed as assumptions in docs/vitals.md.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from controller.drivers import DriverSettings
from controller.events import NibpCompleted, NibpFailed
from controller.models import NibpReading
from controller.ports import Clock, Emit
from hw.vitals.registry import SimulatedDevice, add_nibp
from hw.vitals.serial_port import SerialFactory, SerialReader
from hw.vitals.suntech_frames import (
    ABORT,
    ACK_BUSY,
    ACK_ERRORS,
    ACK_EXECUTED,
    ACK_RECEIVED,
    GET_BP_DATA,
    MAX_MODULE_FRAME,
    MIN_MODULE_FRAME,
    MODULE_START,
    RESULT_LEN,
    START_ADULT,
)

log = logging.getLogger(__name__)

ERROR_CODES: dict[int, str] = {
    1: "weak_signal",
    2: "erratic_signal",
    3: "out_of_range",
    4: "measurement_timeout",
    85: "pneumatic_blockage",
    86: "terminated",
    87: "leak",  # inflate timeout, air leak or loose cuff
    88: "safety_timeout",
    89: "overpressure",
    90: "hardware_fault",  # power supply out of range or other hardware problem
    91: "autozero_failure",  # safety override / auto-zero out of range
    97: "transducer_out_of_range",
    99: "calibration_failure",  # EEPROM calibration data
}
"""Module error codes (the result's byte 18) → the readable code sent as ``NibpFailed``."""


class ModuleFrameParser:
    """Incremental parser of module frames: bytes in, each frame's data (LEN..CK exclusive) out."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self.bad_frames = 0

    def reset(self) -> None:
        """Forget a partial frame."""
        self._buf.clear()

    def feed(self, data: bytes) -> list[bytes]:
        """Consume bytes; return the data of every complete, valid frame."""
        out: list[bytes] = []
        buf = self._buf
        buf.extend(data)
        while buf:
            start = buf.find(MODULE_START)
            if start < 0:
                self.bad_frames += 1
                buf.clear()
                break
            if start:
                self.bad_frames += 1
                del buf[:start]
            if len(buf) < 2:
                break
            length = buf[1]
            if not MIN_MODULE_FRAME <= length <= MAX_MODULE_FRAME:
                self.bad_frames += 1
                del buf[:1]
                continue
            if len(buf) < length:
                # Either a frame still arriving or a false start byte in noise: if a whole
                # valid frame already follows, the start was false.
                later = self._next_valid(buf)
                if later is None:
                    break
                self.bad_frames += 1
                del buf[:later]
                continue
            if sum(buf[:length]) & 0xFF:
                self.bad_frames += 1
                del buf[:1]
                continue
            out.append(bytes(buf[2 : length - 1]))
            del buf[:length]
        return out

    @staticmethod
    def _next_valid(buf: bytearray) -> int | None:
        pos = buf.find(MODULE_START, 1)
        while pos >= 0 and pos + 1 < len(buf):
            length = buf[pos + 1]
            end = pos + length
            fits = MIN_MODULE_FRAME <= length <= MAX_MODULE_FRAME and end <= len(buf)
            if fits and not sum(buf[pos:end]) & 0xFF:
                return pos
            pos = buf.find(MODULE_START, pos + 1)
        return None


@dataclass(frozen=True)
class BpResult:
    """The module's answer to 'get BP data'."""

    sys: int
    dia: int
    map: int
    hr: int | None
    error: int


def decode_result(data: bytes) -> BpResult | None:
    """The BP data frame's fields, or ``None`` if ``data`` is not one."""
    if len(data) != RESULT_LEN - 3:
        return None

    def u16(i: int) -> int:
        return data[i] | (data[i + 1] << 8)

    hr = u16(14)
    return BpResult(
        sys=u16(0), dia=u16(2), map=u16(16), hr=hr if 0 < hr < 350 else None, error=data[18]
    )


def error_name(code: int) -> str:
    """The readable ``NibpFailed`` code for a module error code."""
    return ERROR_CODES.get(code, f"module_error_{code}")


@dataclass(frozen=True)
class SuntechTimeouts:
    """How long (real seconds) the driver waits for each step before reporting ``timeout``."""

    ack: float = 5.0
    measurement: float = 180.0
    result: float = 5.0


class SuntechNibp:
    """The SunTech Advantage module as the core's ``Nibp`` port.

    ``start_measurement()`` and ``abort()`` return at once; the reading arrives later as
    ``NibpCompleted`` or ``NibpFailed`` through ``emit``, from the reader thread.
    """

    source = "suntech"

    def __init__(
        self,
        port: str,
        baud: int,
        emit: Emit,
        clock: Clock,
        *,
        settings: DriverSettings | None = None,
        serial_factory: SerialFactory | None = None,
        timeouts: SuntechTimeouts | None = None,
        backoff_initial: float = 0.5,
        backoff_max: float = 5.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self._emit = emit
        self._clock = clock
        self._timeouts = timeouts or SuntechTimeouts()
        # The module's cycle runs in real time, whatever the session's time scale.
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._state = "idle"  # idle | starting | measuring | fetching
        self._deadline = 0.0
        # The module closes every abort with 'A' then 'K'. A 'K' owed to an abort is not the
        # end of a measurement started since (a quick abort-and-start would otherwise fetch
        # an empty result and lose the new measurement); owed until the ack timeout.
        self._abort_acks = 0
        self._abort_acks_until = 0.0
        self.parser = ModuleFrameParser()
        self.reader: SerialReader[bytes] = SerialReader(
            port,
            baud,
            device="nibp",
            emit=emit,
            parser=self.parser,
            on_frame=self._on_frame,
            on_open=self._forget_aborts,
            on_lost=self._on_lost,
            on_tick=self._on_tick,
            serial_factory=serial_factory,
            backoff_initial=backoff_initial,
            backoff_max=backoff_max,
            name="nibp-suntech",
        )

    # --- the Nibp port ----------------------------------------------------------------------

    def start(self) -> None:
        """Open the port and start the reader thread."""
        self.reader.start()

    def close(self) -> None:
        """Stop the reader thread and close the port (bounded wait)."""
        self.reader.close()

    @property
    def state(self) -> str:
        """Where the current measurement is: idle, starting, measuring or fetching."""
        return self._state

    def start_measurement(self) -> None:
        """Start an adult measurement; the result arrives as NibpCompleted or NibpFailed."""
        with self._lock:
            if not self.reader.connected:
                self._emit(NibpFailed(code="device_unavailable"))
                return
            if self._state != "idle":
                log.info("nibp: measurement already in progress; start ignored")
                return
            self._to("starting", self._timeouts.ack)
        self.reader.write(START_ADULT)

    def abort(self) -> None:
        """Abort a measurement in progress (the module deflates the cuff)."""
        with self._lock:
            self._state = "idle"
            self._send_abort()

    # --- reader thread ----------------------------------------------------------------------

    def _send_abort(self) -> None:
        # Under the lock: the abort is queued before any start that follows it.
        self._abort_acks += 1
        self._abort_acks_until = self._monotonic() + self._timeouts.ack
        self.reader.write(ABORT)

    def _abort_ack(self) -> bool:
        """Whether a 'K' closes an abort still owed one (and count it off)."""
        if self._abort_acks and self._monotonic() > self._abort_acks_until:
            self._abort_acks = 0  # the module never closed them: stop waiting
        if not self._abort_acks:
            return False
        self._abort_acks -= 1
        return True

    def _forget_aborts(self) -> None:
        with self._lock:
            self._abort_acks = 0

    def _to(self, state: str, timeout: float) -> None:
        self._state = state
        self._deadline = self._monotonic() + timeout

    def _fail(self, code: str) -> None:
        self._state = "idle"
        self._emit(NibpFailed(code=code))

    def _on_frame(self, data: bytes) -> None:
        with self._lock:
            if len(data) == 1:
                self._on_ack(data[0])
            elif len(data) == RESULT_LEN - 3 and self._state == "fetching":
                self._on_result(data)

    def _on_ack(self, code: int) -> None:
        if code == ACK_EXECUTED and self._abort_ack():
            return
        if code == ACK_RECEIVED and self._state == "starting":
            self._to("measuring", self._timeouts.measurement)
        elif code == ACK_EXECUTED and self._state == "measuring":
            # Only after 'O': a 'K' in "starting" closes an earlier command (e.g. an abort).
            self._to("fetching", self._timeouts.result)
            self.reader.write(GET_BP_DATA)
        elif code == ACK_BUSY and self._state == "starting":
            self._fail("busy")
        elif code in ACK_ERRORS and self._state != "idle":
            self._fail(ACK_ERRORS[code])

    def _on_result(self, data: bytes) -> None:
        result = decode_result(data)
        if result is None:
            return
        if result.error:
            self._fail(error_name(result.error))
            return
        if not (0 < result.dia < result.map < result.sys <= 300):
            self._fail("invalid_reading")
            return
        self._state = "idle"
        self._emit(
            NibpCompleted(
                reading=NibpReading(
                    ts=self._clock.now(),
                    sys=result.sys,
                    dia=result.dia,
                    map=result.map,
                    hr=result.hr,
                    source=self.source,
                )
            )
        )

    def _on_tick(self) -> float | None:
        """The step's watchdog: seconds until its deadline (None when idle); past it, the
        measurement fails with ``timeout``."""
        with self._lock:
            if self._state == "idle":
                return None
            left = self._deadline - self._monotonic()
            if left > 0:
                return left
            was_measuring = self._state == "measuring"
            self._fail("timeout")
            if was_measuring:
                self._send_abort()  # never leave a cuff inflated on a silent module
            return None

    def _on_lost(self) -> None:
        with self._lock:
            self._abort_acks = 0
            if self._state != "idle":
                self._fail("device_lost")


def simulated_module(clock: Clock, patient: Any) -> SimulatedDevice:
    """A simulated Advantage module behind a pty, measuring ``patient``."""
    from hw.simulator.suntech import SimulatedNibpModule  # a pty responder, only to simulate

    return SimulatedNibpModule(clock, patient=patient)


add_nibp("suntech", SuntechNibp, simulator=simulated_module)
