"""Nonin pulse oximeters: the ASCII line format and binary data format 2 (DF2).

ASCII: ``SPO2=097 HR=072`` CR LF about once a second; ``---`` means no value; a trailing ``*``
marks a value sent during an event (alarm or marginal signal): the value is still the
monitor's own and is passed on.

DF2: 75 frames a second of five bytes ``01 STATUS PLETH FLOAT CHK`` (CHK = sum of the first
four bytes mod 256; STATUS bit 7 always set, bit 0 set on the first frame of a 25-frame
packet). The FLOAT byte carries a different value in each frame of the packet: frame 0 the
heart rate's high bits, frame 1 its low bits, frame 2 the SpO2. HR 511 and SpO2 127 mean
"missing". See docs/vitals.md for the status-bit → quality mapping.

DF7: the same 75 frames a second and 25-frame packets, but five bytes
``STATUS PLETH_MSB PLETH_LSB FLOAT CHK`` (no start byte; a 16-bit pleth; FLOAT always < 128).
STATUS, the checksum and the HR/SpO2 positions of frames 0-2 are as in DF2; further frames
carry the extended (8-beat), display-formatted, fast and beat-to-beat variants.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, Protocol, TypeVar

from controller.models import Quality
from hw.vitals.common import (
    UNTRUSTED,
    LineParser,
    OximeterDriver,
    OxReading,
    plausible_hr,
    plausible_spo2,
    worst,
)
from hw.vitals.registry import add_oximeter
from hw.vitals.serial_port import FrameParser

# --- ASCII ---------------------------------------------------------------------------------

MAX_LINE = 128
_ASCII_LINE = re.compile(r"SPO2=\s*(\d{1,3}|-{1,3})(\*?)\s+HR=\s*(\d{1,3}|-{1,3})(\*?)\s*")


def parse_ascii_line(line: str) -> OxReading | None:
    """One ``SPO2=XXX HR=YYY`` line → a reading, or ``None`` if it is not one."""
    start = line.rfind("SPO2=")
    if start < 0:
        return None
    m = _ASCII_LINE.fullmatch(line[start:])  # anything before the last SPO2= is noise
    if m is None:
        return None
    spo2 = None if m.group(1).startswith("-") else plausible_spo2(int(m.group(1)))
    hr = None if m.group(3).startswith("-") else plausible_hr(int(m.group(3)))
    # The format gives no reason for a missing value; "searching" is the honest minimum.
    quality: Quality = "searching" if spo2 is None and hr is None else "ok"
    return OxReading(spo2=spo2, hr=hr, pi=None, quality=quality)


class NoninAsciiParser(LineParser):
    """Incremental Nonin ASCII parser: bytes in, readings out; resynchronises on line ends."""

    def __init__(self) -> None:
        super().__init__(parse_ascii_line, MAX_LINE)


class NoninAscii(OximeterDriver[NoninAsciiParser]):
    """A Nonin oximeter sending its ASCII line format."""

    source = "nonin_ascii"

    def _make_parser(self) -> NoninAsciiParser:
        return NoninAsciiParser()


# --- Data format 2 -------------------------------------------------------------------------

FRAME_LEN = 5
FRAMES_PER_PACKET = 25
HR_MISSING = 511
SPO2_MISSING = 127

STATUS_ALWAYS = 0x80
STATUS_SNSD = 0x40  # sensor disconnected (not connected, or inoperable)
STATUS_ARTF = 0x20  # artifact: a beat did not match the current pulse interval
STATUS_OOT = 0x10  # out of track: no consecutive good pulses
STATUS_SNSA = 0x08  # sensor alarm: the sensor gives unusable data
STATUS_GPRF = 0x02  # green perfusion: a good pulse signal
STATUS_SYNC = 0x01  # first frame of a packet

DF2_QUALITY: tuple[tuple[int, Quality, bool], ...] = (
    (STATUS_SNSD, "no_sensor", False),
    (STATUS_OOT, "searching", False),
    (STATUS_SNSA, "artifact", False),
    (STATUS_ARTF, "artifact", True),
)
"""Status bit → (quality, whether the numbers may still be passed on)."""


@dataclass(frozen=True)
class Df2Frame:
    """One valid five-byte DF2 frame."""

    status: int
    pleth: int
    value: int


def df2_checksum(first_four: bytes | bytearray) -> int:
    """The DF2 frame check byte: the sum of the first four bytes mod 256."""
    return sum(first_four) & 0xFF


def df2_reading(frames: list[Df2Frame]) -> OxReading:
    """The reading one complete 25-frame packet carries."""
    hr_raw = ((frames[0].value & 0x03) << 7) | (frames[1].value & 0x7F)
    spo2_raw = frames[2].value & 0x7F
    status = 0
    for frame in frames:
        status |= frame.status
    return packet_reading(hr_raw, spo2_raw, status)


def packet_reading(hr_raw: int, spo2_raw: int, status: int) -> OxReading:
    """A DF2/DF7 packet's reading: raw HR and SpO2, and its STATUS bytes OR-ed together."""
    hr = None if hr_raw == HR_MISSING else plausible_hr(hr_raw)
    spo2 = None if spo2_raw == SPO2_MISSING else plausible_spo2(spo2_raw)
    found = [(q, keep) for bit, q, keep in DF2_QUALITY if status & bit]
    quality = worst([q for q, _ in found])
    if quality in UNTRUSTED or any(not keep for _, keep in found):
        spo2 = hr = None
    elif spo2 is None and hr is None:
        quality = "searching"
    return OxReading(spo2=spo2, hr=hr, pi=None, quality=quality)


class _Frame(Protocol):
    @property
    def status(self) -> int: ...


_F = TypeVar("_F", bound=_Frame)


class _PacketParser(Generic[_F]):
    """Incremental parser of 5-byte frames grouped in 25-frame packets (DF2, DF7).

    A frame that fails its check, or a packet cut short, loses that packet only: the parser
    slides byte by byte to the next valid frame and waits for the next packet start.
    """

    def __init__(self) -> None:
        self._buf = bytearray()
        self._packet: list[_F] | None = None
        self._sliding = False
        self.bad_frames = 0

    def reset(self) -> None:
        """Forget partial frames and packets."""
        self._buf.clear()
        self._packet = None
        self._sliding = False

    def feed(self, data: bytes) -> list[OxReading]:
        """Consume bytes; return the readings of the packets they completed."""
        out: list[OxReading] = []
        buf = self._buf
        buf.extend(data)
        pos = 0
        while len(buf) - pos >= FRAME_LEN:
            frame = self._decode(bytes(buf[pos : pos + FRAME_LEN]))
            if frame is not None:
                self._sliding = False
                self._frame(frame, out)
                pos += FRAME_LEN
            else:
                if not self._sliding:
                    self._sliding = True
                    self.bad_frames += 1
                    self._packet = None  # a frame is missing: this packet is lost
                pos += 1
        del buf[:pos]
        return out

    def _frame(self, frame: _F, out: list[OxReading]) -> None:
        if frame.status & STATUS_SYNC:
            if self._packet is not None:
                self.bad_frames += 1  # the previous packet was cut short
            self._packet = [frame]
        elif self._packet is not None:
            self._packet.append(frame)
        if self._packet is not None and len(self._packet) == FRAMES_PER_PACKET:
            out.append(self._reading(self._packet))
            self._packet = None

    def _decode(self, chunk: bytes) -> _F | None:
        """The frame in ``chunk``, or None when it fails the format's checks."""
        raise NotImplementedError

    def _reading(self, packet: list[_F]) -> OxReading:
        """The reading of one complete packet."""
        raise NotImplementedError


class NoninDf2Parser(_PacketParser[Df2Frame]):
    """Incremental DF2 parser: bytes in, one reading per complete packet out."""

    def _decode(self, chunk: bytes) -> Df2Frame | None:
        if chunk[0] == 0x01 and chunk[1] & STATUS_ALWAYS and df2_checksum(chunk[:4]) == chunk[4]:
            return Df2Frame(status=chunk[1], pleth=chunk[2], value=chunk[3])
        return None

    def _reading(self, packet: list[Df2Frame]) -> OxReading:
        return df2_reading(packet)


_P = TypeVar("_P", bound=FrameParser[OxReading])


class _PacketDriver(OximeterDriver[_P]):
    """A Nonin oximeter sending three packets a second (DF2, DF7).

    One sample a second is passed on, and at once whenever the quality changes (a sensor
    coming off must not wait).
    """

    packets_per_sample = 3
    _count = 0
    _last_quality: Quality | None = None

    def _on_open(self) -> None:
        # The first packet after a (re)connect is passed on at once.
        self._count = 0
        self._last_quality = None

    def _on_reading(self, reading: OxReading) -> None:
        changed = reading.quality != self._last_quality
        self._count += 1
        if changed or self._count >= self.packets_per_sample:
            self._count = 0
            self._last_quality = reading.quality
            super()._on_reading(reading)


class NoninDf2(_PacketDriver[NoninDf2Parser]):
    """A Nonin oximeter (e.g. OEM III, Xpod) in data format 2.

    Three packets arrive per second; one sample a second is passed on, and at once whenever
    the quality changes (a sensor coming off must not wait).
    """

    source = "nonin_df2"

    def _make_parser(self) -> NoninDf2Parser:
        self._count = 0
        self._last_quality = None
        return NoninDf2Parser()


# --- Data format 7 -------------------------------------------------------------------------

DF7_VALUE_MAX = 0x7F  # the FLOAT byte never has bit 7 set

# FLOAT byte positions in a DF7 packet (0-based frame index). Pulse rates are 9 bits: the
# MSB frame's bits 0-1 are PR8-PR7, the LSB frame's bits 0-6 are PR6-PR0.
DF7_HR = (0, 1)  # 4-beat average
DF7_SPO2 = 2  # 4-beat average
DF7_SREV = 3  # oximeter firmware revision
DF7_STAT2 = 7
DF7_SPO2_D = 8  # 4-beat average, formatted for display
DF7_SPO2_FAST = 9
DF7_SPO2_BB = 10  # beat to beat, no averaging
DF7_E_HR = (13, 14)  # 8-beat extended average
DF7_E_SPO2 = 15
DF7_E_SPO2_D = 16
DF7_HR_D = (19, 20)
DF7_E_HR_D = (21, 22)


@dataclass(frozen=True)
class Df7Frame:
    """One valid five-byte DF7 frame."""

    status: int
    pleth: int  # 16 bits
    value: int


@dataclass(frozen=True)
class Df7Packet:
    """Everything one 25-frame DF7 packet carries; values raw (511 / 127 = missing)."""

    status: int  # the frames' STATUS bytes OR-ed together
    pleth: tuple[int, ...]
    hr: int
    spo2: int
    e_hr: int
    e_spo2: int
    hr_d: int
    spo2_d: int
    e_hr_d: int
    e_spo2_d: int
    spo2_fast: int
    spo2_bb: int
    srev: int
    stat2: int


def df7_packet(frames: list[Df7Frame]) -> Df7Packet:
    """Decode one complete 25-frame DF7 packet."""
    v = [f.value for f in frames]

    def rate(pos: tuple[int, int]) -> int:
        return ((v[pos[0]] & 0x03) << 7) | (v[pos[1]] & 0x7F)

    status = 0
    for frame in frames:
        status |= frame.status
    return Df7Packet(
        status=status,
        pleth=tuple(f.pleth for f in frames),
        hr=rate(DF7_HR),
        spo2=v[DF7_SPO2],
        e_hr=rate(DF7_E_HR),
        e_spo2=v[DF7_E_SPO2],
        hr_d=rate(DF7_HR_D),
        spo2_d=v[DF7_SPO2_D],
        e_hr_d=rate(DF7_E_HR_D),
        e_spo2_d=v[DF7_E_SPO2_D],
        spo2_fast=v[DF7_SPO2_FAST],
        spo2_bb=v[DF7_SPO2_BB],
        srev=v[DF7_SREV],
        stat2=v[DF7_STAT2],
    )


def df7_reading(frames: list[Df7Frame]) -> OxReading:
    """The reading one complete packet carries: the 4-beat HR and SpO2, as DF2 reports."""
    packet = df7_packet(frames)
    return packet_reading(packet.hr, packet.spo2, packet.status)


class NoninDf7Parser(_PacketParser[Df7Frame]):
    """Incremental DF7 parser: bytes in, one reading per complete packet out.

    A frame is valid when STATUS has bit 7 set, FLOAT has bit 7 clear and CHK is the sum of
    the first four bytes mod 256. As in DF2, a bad frame or a packet cut short loses that
    packet only: the parser slides byte by byte to the next valid frame and waits for the
    next packet start (STATUS bit 0).
    """

    def __init__(self) -> None:
        super().__init__()
        self.last_packet: Df7Packet | None = None

    def _decode(self, chunk: bytes) -> Df7Frame | None:
        status, msb, lsb, value, chk = chunk
        valid = status & STATUS_ALWAYS and value <= DF7_VALUE_MAX
        if valid and (status + msb + lsb + value) & 0xFF == chk:
            return Df7Frame(status=status, pleth=(msb << 8) | lsb, value=value)
        return None

    def _reading(self, packet: list[Df7Frame]) -> OxReading:
        decoded = self.last_packet = df7_packet(packet)
        return packet_reading(decoded.hr, decoded.spo2, decoded.status)


class NoninDf7(_PacketDriver[NoninDf7Parser]):
    """A Nonin oximeter (e.g. OEM III, Xpod, WristOx2 3150, Onyx II 9560) in data format 7.

    Passed on like DF2: one packet in three, every quality change at once, and the first
    packet after a reconnect.
    """

    source = "nonin_df7"

    def _make_parser(self) -> NoninDf7Parser:
        self._count = 0
        self._last_quality = None
        return NoninDf7Parser()


# --- the simulated monitor -----------------------------------------------------------------


def encode_ascii_line(reading: OxReading, now: datetime) -> bytes:
    """The ASCII line a Nonin sends for ``reading`` (the simulated monitor)."""
    spo2 = "---" if reading.spo2 is None else f"{reading.spo2:03d}"
    hr = "---" if reading.hr is None else f"{reading.hr:03d}"
    return f"SPO2={spo2} HR={hr}\r\n".encode()


STATUS_OF: dict[Quality, int] = {
    "ok": STATUS_GPRF,
    "artifact": STATUS_ARTF,
    "searching": STATUS_OOT,
    "sensor_off": STATUS_OOT,  # a Nonin cannot tell a sensor off the finger: out of track
    "no_sensor": STATUS_SNSD,
}
"""The STATUS bit a simulated Nonin sets for a quality."""


class _PacketEncoder:
    """One second (three packets) of a Nonin packet format, with a pleth wave at the HR."""

    def __init__(self) -> None:
        self._phase = 0.0

    def __call__(self, reading: OxReading, now: datetime) -> bytes:
        """Three packets showing ``reading``."""
        hr = HR_MISSING if reading.hr is None else reading.hr
        spo2 = SPO2_MISSING if reading.spo2 is None else reading.spo2
        status = STATUS_ALWAYS | STATUS_OF[reading.quality]
        values = self._values(hr, spo2)
        out = bytearray()
        for _ in range(3):
            for i in range(FRAMES_PER_PACKET):
                wave = None
                if reading.hr is not None:
                    self._phase += 2 * math.pi * (reading.hr / 60) / 75
                    wave = math.sin(self._phase)
                sync = STATUS_SYNC if i == 0 else 0
                head = self._head(status | sync, wave, values.get(i, 0))
                out += head + bytes((df2_checksum(head),))
        return bytes(out)

    def _values(self, hr: int, spo2: int) -> dict[int, int]:
        """The FLOAT byte of each frame index (the rest are 0)."""
        raise NotImplementedError

    def _head(self, status: int, wave: float | None, value: int) -> bytes:
        """A frame's first four bytes; ``wave`` -1..1 (``None``: no pulse, a flat pleth)."""
        raise NotImplementedError


class Df2Encoder(_PacketEncoder):
    """A simulated Nonin in data format 2."""

    def _values(self, hr: int, spo2: int) -> dict[int, int]:
        return {0: (hr >> 7) & 0x03, 1: hr & 0x7F, 2: spo2 & 0x7F}

    def _head(self, status: int, wave: float | None, value: int) -> bytes:
        pleth = 0 if wave is None else int(128 + 100 * wave)
        return bytes((0x01, status, pleth, value))


class Df7Encoder(_PacketEncoder):
    """A simulated Nonin in data format 7: a 16-bit pleth, every HR/SpO2 variant filled."""

    def _values(self, hr: int, spo2: int) -> dict[int, int]:
        values = {DF7_SREV: 0x10, DF7_STAT2: 0}
        for msb, lsb in (DF7_HR, DF7_E_HR, DF7_HR_D, DF7_E_HR_D):
            values[msb], values[lsb] = (hr >> 7) & 0x03, hr & 0x7F
        for i in (DF7_SPO2, DF7_SPO2_D, DF7_SPO2_FAST, DF7_SPO2_BB, DF7_E_SPO2, DF7_E_SPO2_D):
            values[i] = spo2 & 0x7F
        return values

    def _head(self, status: int, wave: float | None, value: int) -> bytes:
        pleth = 0 if wave is None else int(32768 + 25000 * wave)
        return bytes((status, pleth >> 8, pleth & 0xFF, value))


add_oximeter("nonin_ascii", NoninAscii, encoder=lambda: encode_ascii_line)
add_oximeter("nonin_df2", NoninDf2, encoder=Df2Encoder)
add_oximeter("nonin_df7", NoninDf7, encoder=Df7Encoder)
