"""DMX512 output through an ENTTEC DMX USB Pro (or a compatible widget) over pyserial: the
``dmx`` light driver.

The widget takes framed messages on its USB serial port; label 6 ("Output Only Send DMX
Packet") replaces the universe it transmits. The widget keeps transmitting the last universe
by itself, so the lights hold their level if roomd stops or restarts.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from typing import Annotated, Protocol

from pydantic import AfterValidator, Field

from controller.drivers import DriverSettings
from hw.lighting.curve import Layout, layout_for
from hw.lighting.output import LIGHTS, Absent, OutputOptions, makes_a_light

START_OF_MESSAGE = 0x7E
END_OF_MESSAGE = 0xE7
LABEL_SEND_DMX = 6
UNIVERSE_SIZE = 512
DMX_START_CODE = 0x00
MAX_DATA = 600
"""The longest data part of any widget message (the API's limit)."""
FRAME_SIZE = 4 + 1 + UNIVERSE_SIZE + 1
"""Bytes in one label-6 message carrying a full universe (518)."""


class SerialLike(Protocol):
    """The part of ``serial.Serial`` the DMX output uses."""

    def write(self, data: bytes) -> int | None:
        """Write ``data``; raise ``OSError`` (``SerialException``) when the port is gone."""
        ...

    def close(self) -> None:
        """Close the port."""
        ...


SerialFactory = Callable[[str], SerialLike]
"""Open a serial port by name (``serial.Serial`` with the widget's settings by default)."""


def open_enttec(port: str) -> SerialLike:
    """Open an ENTTEC DMX USB Pro's serial port the way the widget expects."""
    import serial  # imported lazily so the package imports where pyserial is missing

    # The widget's FTDI bridge ignores the baud rate; the write timeout is what matters: a
    # wedged adapter must surface as a fault instead of hanging the fader thread.
    port_obj: SerialLike = serial.Serial(port, baudrate=57600, timeout=0, write_timeout=1.0)
    return port_obj


def enttec_frame(universe: bytes | bytearray) -> bytes:
    """The label-6 message that makes the widget transmit ``universe`` (512 slot values)."""
    if len(universe) != UNIVERSE_SIZE:
        raise ValueError(f"a DMX universe has {UNIVERSE_SIZE} slots, got {len(universe)}")
    length = 1 + UNIVERSE_SIZE  # the data begins with the DMX start code
    return (
        bytes((START_OF_MESSAGE, LABEL_SEND_DMX, length & 0xFF, length >> 8, DMX_START_CODE))
        + bytes(universe)
        + bytes((END_OF_MESSAGE,))
    )


def split_messages(buffer: bytes) -> tuple[list[tuple[int, bytes]], bytes]:
    """Parse widget messages from ``buffer``: ``[(label, data), ...]`` and the unparsed rest.

    For a simulated widget reading what the driver sends. Bytes before a start-of-message are
    skipped, as the widget does, so a reader that joins mid-stream finds the next message.
    """
    messages: list[tuple[int, bytes]] = []
    i = 0
    while True:
        start = buffer.find(START_OF_MESSAGE, i)
        if start < 0 or len(buffer) - start < 5:
            return messages, buffer[start:] if start >= 0 else b""
        length = buffer[start + 2] | buffer[start + 3] << 8
        end = start + 4 + length
        if length > MAX_DATA:
            i = start + 1  # no widget message is that long: a false start
            continue
        if len(buffer) <= end:
            return messages, buffer[start:]
        if buffer[end] == END_OF_MESSAGE:
            messages.append((buffer[start + 1], bytes(buffer[start + 4 : end])))
            i = end + 1
        else:
            i = start + 1  # not a message after all: resynchronise on the next 0x7E


def to_dmx_value(duty: float) -> int:
    """A channel value 0..255 for an output fraction 0..1 (rounded, clamped)."""
    return max(0, min(255, round(duty * 255)))


class DmxOutput:
    """A light output whose channels are DMX slots sent through an ENTTEC DMX USB Pro.

    ``channels`` are 1-based DMX addresses: one for a dimmer, three or four for an RGB/RGBW
    fixture (in that order). Every write sends the whole universe, unused slots at zero.
    """

    refresh_s: float | None = 1.0
    """Resend the universe this often while idle: it re-primes a widget that was power-cycled
    and is how an unplugged adapter is noticed when no fade is running."""

    def __init__(
        self, port: str, channels: Sequence[int], serial_factory: SerialFactory | None = None
    ) -> None:
        for ch in channels:
            if not 1 <= ch <= UNIVERSE_SIZE:
                raise ValueError(f"dmx_channels: {ch} is not a DMX address (1..512)")
        self.port = port
        self.layout: Layout = layout_for(len(channels))
        self._addresses = list(channels)
        self._open = serial_factory or open_enttec
        self._serial: SerialLike | None = None
        self._universe = bytearray(UNIVERSE_SIZE)

    def open(self) -> None:
        """Open the widget's port (again); raise ``OSError`` if it is not there."""
        self.close()
        self._serial = self._open(self.port)

    def write(self, duties: Sequence[float]) -> None:
        """Send the universe with these channel levels; raise ``OSError`` on a fault."""
        if self._serial is None:
            raise OSError(f"DMX port {self.port!r} is not open")
        for address, duty in zip(self._addresses, duties, strict=True):
            self._universe[address - 1] = to_dmx_value(duty)
        self._serial.write(enttec_frame(self._universe))

    def read_back(self) -> list[float] | None:
        """Unknown: the widget cannot report what it is transmitting."""
        return None

    def close(self) -> None:
        """Close the port; the widget keeps transmitting the last universe."""
        port, self._serial = self._serial, None
        if port is not None:
            # Closing an unplugged adapter may fail; it is gone either way.
            with contextlib.suppress(OSError):
                port.close()


class DmxSettings(DriverSettings):
    """``dmx``: the widget's serial port (empty: no lights) and the fixture's DMX addresses."""

    port: str = ""
    dmx_channels: Annotated[
        list[Annotated[int, Field(ge=1, le=UNIVERSE_SIZE)]], AfterValidator(makes_a_light)
    ] = Field(default_factory=lambda: [1, 2, 3])


def _build(settings: DmxSettings, options: OutputOptions) -> DmxOutput:
    if not settings.port and options.serial_factory is None:
        raise Absent("dmx driver without a port")
    return DmxOutput(settings.port, settings.dmx_channels, options.serial_factory)


LIGHTS.add("dmx", _build, DmxSettings)
