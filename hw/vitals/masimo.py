"""Masimo Rad-8 / Radical-7 / Rad-97 serial output, "ASCII 1" (one text line per second).

A line looks like::

    01/05/26 09:00:00 SN=0000084590 SPO2=098% BPM=072 PI=03.60% SPCO=--.-% SPMET=--.-%
    DESAT=-- PIDELTA=+-- ALARM=0000 EXC=000800

(on one line, CR LF). Models differ in which fields they send, their widths and whether a
``%`` follows, so fields are found by key, never by position. ``---`` means no value. ``EXC``
is a hexadecimal bit set of exceptions; see ``EXC_QUALITY`` and docs/vitals.md.
"""

from __future__ import annotations

import re
from datetime import datetime

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

MAX_LINE = 512
"""A longer line is not ASCII 1 (or two lines ran together): dropped."""

EXC_QUALITY: dict[int, Quality] = {
    0x001: "no_sensor",  # no sensor connected
    0x002: "no_sensor",  # defective sensor
    0x080: "no_sensor",  # unrecognised sensor
    0x020: "sensor_off",  # sensor off the patient
    0x008: "searching",  # pulse search
    0x010: "artifact",  # interference
    0x040: "artifact",  # too much ambient light
    0x400: "artifact",  # low signal IQ
    # 0x004 low perfusion: the numbers are still valid (PI shows it), so it stays "ok".
}
"""Masimo exception bits → quality. Bits not listed (e.g. 0x800) do not affect quality."""

_TIMESTAMP = re.compile(r"\d\d/\d\d/\d\d \d\d:\d\d:\d\d")
_FIELD = re.compile(r"([A-Z][A-Z0-9]*)=(\S*)")
_INT = re.compile(r"\+?(\d{1,3})%?")
_FLOAT = re.compile(r"(\d{1,3}(?:\.\d{1,3})?)%?")
_DASHES = re.compile(r"[-+]*-[-.+]*%?")


class _BadLine(Exception):
    pass


def exc_quality(exc: int) -> Quality:
    """The quality that a Masimo ``EXC`` bit set means (worst condition wins)."""
    return worst([q for bit, q in EXC_QUALITY.items() if exc & bit])


def _int_value(text: str) -> int | None:
    if _DASHES.fullmatch(text):
        return None
    m = _INT.fullmatch(text)
    if m is None:
        raise _BadLine(text)
    return int(m.group(1))


def _float_value(text: str) -> float | None:
    if _DASHES.fullmatch(text):
        return None
    m = _FLOAT.fullmatch(text)
    if m is None:
        raise _BadLine(text)
    return float(m.group(1))


def parse_line(line: str) -> OxReading | None:
    """One ASCII 1 line → a reading, or ``None`` if it is not a usable ASCII 1 line."""
    stamps = list(_TIMESTAMP.finditer(line))
    if not stamps:
        return None
    # Start at the last time stamp: whatever precedes it is the tail of garbage.
    body = line[stamps[-1].end() :]
    fields: dict[str, str] = {}
    for key, value in _FIELD.findall(body):
        if key in fields:
            return None  # two lines ran together
        fields[key] = value
    if "SPO2" not in fields or "BPM" not in fields:
        return None
    try:
        spo2 = _int_value(fields["SPO2"])
        hr = _int_value(fields["BPM"])
        pi = _float_value(fields["PI"]) if "PI" in fields else None
        exc = int(fields.get("EXC", "0"), 16)
    except (_BadLine, ValueError):
        return None
    quality = exc_quality(exc)
    spo2, hr = plausible_spo2(spo2), plausible_hr(hr)
    if quality in UNTRUSTED:
        spo2 = hr = None
        pi = None
    elif spo2 is None and hr is None:
        quality = "searching"
    return OxReading(spo2=spo2, hr=hr, pi=pi, quality=quality)


class MasimoParser(LineParser):
    """Incremental ASCII 1 parser: bytes in, readings out; resynchronises on line ends."""

    def __init__(self) -> None:
        super().__init__(parse_line, MAX_LINE)


class MasimoAscii(OximeterDriver[MasimoParser]):
    """A Masimo Rad-8 / Radical-7 / Rad-97 set to ASCII 1 serial output."""

    source = "masimo_ascii"

    def _make_parser(self) -> MasimoParser:
        return MasimoParser()


def encode_line(reading: OxReading, now: datetime) -> bytes:
    """The ASCII 1 line a Rad-8 sends for ``reading`` at ``now`` (the simulated monitor)."""
    stamp = now.strftime("%m/%d/%y %H:%M:%S")
    spo2 = "---" if reading.spo2 is None else f"{reading.spo2:03d}"
    hr = "---" if reading.hr is None else f"{reading.hr:03d}"
    pi = "--.--" if reading.pi is None else f"{reading.pi:05.2f}"
    # The first exception bit that means this quality (0 for "ok").
    exc = next((bit for bit, q in EXC_QUALITY.items() if q == reading.quality), 0)
    alarm = "0001" if reading.spo2 is not None and reading.spo2 < 90 else "0000"
    return (
        f"{stamp} SN=0000084590 SPO2={spo2}% BPM={hr} PI={pi}% SPCO=--.-% SPMET=--.-% "
        f"DESAT=-- PIDELTA=+-- ALARM={alarm} EXC={exc:06X}\r\n"
    ).encode()


add_oximeter("masimo_ascii", MasimoAscii, encoder=lambda: encode_line)
