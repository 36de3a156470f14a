"""What every oximeter driver shares: the parsed reading and the serial-backed driver."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar, Generic, TypeVar

from controller.drivers import DriverSettings
from controller.events import VitalsArrived
from controller.models import Quality, VitalsSample
from controller.ports import Clock, Emit
from hw.vitals.serial_port import FrameParser, SerialFactory, SerialReader

# Most severe first: when a monitor reports several conditions, the worst one is the quality.
QUALITY_ORDER: tuple[Quality, ...] = ("no_sensor", "sensor_off", "searching", "artifact", "ok")

UNTRUSTED: frozenset[Quality] = frozenset({"no_sensor", "sensor_off", "searching"})
"""Qualities under which a monitor's numbers are never passed on (they would be stale)."""


def worst(qualities: list[Quality]) -> Quality:
    """The most severe of ``qualities`` (``ok`` when empty)."""
    if not qualities:
        return "ok"
    return min(qualities, key=QUALITY_ORDER.index)


@dataclass(frozen=True)
class OxReading:
    """One oximeter reading as a parser understood it; ``None`` = no valid value."""

    spo2: int | None
    hr: int | None
    pi: float | None
    quality: Quality


def plausible_spo2(value: int | None) -> int | None:
    """``value`` if it can be a saturation (0..100 %), else ``None``."""
    return value if value is not None and 0 <= value <= 100 else None


def plausible_hr(value: int | None) -> int | None:
    """``value`` if it can be a pulse rate (1..350 bpm), else ``None``."""
    return value if value is not None and 0 < value <= 350 else None


class LineParser:
    """Incremental parser of a monitor's text lines: bytes in, readings out.

    Resynchronises on line ends; a line longer than ``max_line`` or holding a control or
    8-bit byte is counted bad and dropped, and the next whole line is read again.
    """

    def __init__(self, parse_line: Callable[[str], OxReading | None], max_line: int) -> None:
        self._parse_line = parse_line
        self._max_line = max_line
        self._buf = bytearray()
        self._discarding = False
        self.bad_frames = 0

    def reset(self) -> None:
        """Forget a partial line."""
        self._buf.clear()
        self._discarding = False

    def feed(self, data: bytes) -> list[OxReading]:
        """Consume bytes; return the readings of the lines they completed."""
        out: list[OxReading] = []
        for byte in data:
            if byte in (0x0A, 0x0D):
                self._end_line(out)
            elif 0x20 <= byte <= 0x7E or byte == 0x09:
                if self._discarding:
                    continue
                if len(self._buf) >= self._max_line:
                    self.bad_frames += 1
                    self._discarding = True
                else:
                    self._buf.append(byte)
            else:
                # A control or 8-bit byte never occurs in these lines: what came before it is
                # corrupt. Start afresh after it; a remainder alone never forms a valid line
                # (it lacks the line's start), and a whole line after noise is still read.
                if self._buf and not self._discarding:
                    self.bad_frames += 1
                self.reset()
        return out

    def _end_line(self, out: list[OxReading]) -> None:
        if self._discarding:
            pass  # already counted when it overflowed or was corrupted
        elif self._buf.strip():
            reading = self._parse_line(self._buf.decode("ascii"))
            if reading is None:
                self.bad_frames += 1
            else:
                out.append(reading)
        self.reset()


P = TypeVar("P", bound=FrameParser[OxReading])


class OximeterDriver(Generic[P]):
    """A pulse oximeter on a serial port, reporting ``VitalsArrived`` and ``DeviceChanged``.

    ``settings`` are the driver's own config keys (the model it registered), if it has any.
    """

    source: ClassVar[str] = "oximeter"

    def __init__(
        self,
        port: str,
        baud: int,
        emit: Emit,
        clock: Clock,
        *,
        settings: DriverSettings | None = None,
        serial_factory: SerialFactory | None = None,
        backoff_initial: float = 0.5,
        backoff_max: float = 5.0,
    ) -> None:
        self.settings = settings
        self._emit = emit
        self._clock = clock
        self.parser: P = self._make_parser()
        self.reader: SerialReader[OxReading] = SerialReader(
            port,
            baud,
            device="oximeter",
            emit=emit,
            parser=self.parser,
            on_frame=self._on_reading,
            on_open=self._on_open,
            serial_factory=serial_factory,
            backoff_initial=backoff_initial,
            backoff_max=backoff_max,
            name=f"oximeter-{self.source}",
        )

    def _make_parser(self) -> P:
        raise NotImplementedError

    def start(self) -> None:
        """Open the port and start reading (returns at once; results arrive via ``emit``)."""
        self.reader.start()

    def close(self) -> None:
        """Stop reading and close the port (bounded wait)."""
        self.reader.close()

    @property
    def bad_frames(self) -> int:
        """Frames dropped as corrupt since start."""
        return self.reader.bad_frames

    def _on_open(self) -> None:
        """The port (re)opened: nothing from before may carry over."""

    def _on_reading(self, reading: OxReading) -> None:
        self._emit(
            VitalsArrived(
                sample=VitalsSample(
                    ts=self._clock.now(),
                    spo2=reading.spo2,
                    hr=reading.hr,
                    pi=reading.pi,
                    source=self.source,
                    quality=reading.quality,
                )
            )
        )
