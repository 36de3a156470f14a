"""Nonin ASCII lines and data format 2 packets, built from the formats' descriptions."""

from __future__ import annotations

import pytest
from conftest import df2_frame, df2_packet

from hw.vitals.common import OxReading
from hw.vitals.nonin import NoninAsciiParser, NoninDf2Parser

# --- ASCII ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (b"SPO2=097 HR=072\r\n", OxReading(97, 72, None, "ok")),
        (b"SPO2=100 HR=145\r\n", OxReading(100, 145, None, "ok")),
        (b"SPO2=095* HR=071*\r\n", OxReading(95, 71, None, "ok")),  # event marker
        (b"SPO2=--- HR=---\r\n", OxReading(None, None, None, "searching")),
        (b"SPO2=--- HR=064\r\n", OxReading(None, 64, None, "ok")),
    ],
)
def test_ascii_golden_lines(line: bytes, expected: OxReading) -> None:
    assert NoninAsciiParser().feed(line) == [expected]


@pytest.mark.parametrize(
    "line", [b"SPO2=0X7 HR=072", b"SPO2=097", b"HR=072 SPO2=", b"SPO2=097 HR=072 junk"]
)
def test_ascii_bad_lines(line: bytes) -> None:
    parser = NoninAsciiParser()
    assert parser.feed(line + b"\r\n") == []
    assert parser.bad_frames == 1


def test_ascii_split_and_noise() -> None:
    parser = NoninAsciiParser()
    out = parser.feed(b"\xff\x00SPO2=0")
    out += parser.feed(b"96 HR=0")
    out += parser.feed(b"80\r\nSPO2=098 HR=081\n")
    assert [(r.spo2, r.hr) for r in out] == [(96, 80), (98, 81)]


def test_ascii_printable_noise_before_the_line() -> None:
    assert NoninAsciiParser().feed(b"HR=5 SPO2=1 SPO2=097 HR=072\r\n")[0].spo2 == 97


# --- DF2 -----------------------------------------------------------------------------------


def test_df2_golden_packet() -> None:
    assert NoninDf2Parser().feed(df2_packet(hr=72, spo2=97)) == [OxReading(97, 72, None, "ok")]


def test_df2_hr_above_127_uses_the_high_bits() -> None:
    [reading] = NoninDf2Parser().feed(df2_packet(hr=200, spo2=95))
    assert reading.hr == 200


def test_df2_first_frame_literal_bytes() -> None:
    # HR 200 = 0b1_1001000: msb 0x01, lsb 0x48; frame 0 is 01 81 64 01 E7.
    assert df2_packet(hr=200, spo2=95)[:5] == bytes.fromhex("01816401e7")


def test_df2_missing_values() -> None:
    [reading] = NoninDf2Parser().feed(df2_packet(hr=511, spo2=127))
    assert reading == OxReading(None, None, None, "searching")


@pytest.mark.parametrize(
    ("status", "quality", "kept"),
    [
        (0x40, "no_sensor", False),  # SNSD
        (0x10, "searching", False),  # OOT
        (0x08, "artifact", False),  # SNSA: unusable data
        (0x20, "artifact", True),  # ARTF: one odd beat, numbers still the monitor's
        (0x06, "ok", True),  # perfusion colour bits
        (0x60, "no_sensor", False),
    ],
)
def test_df2_status_bits(status: int, quality: str, kept: bool) -> None:
    [reading] = NoninDf2Parser().feed(df2_packet(hr=72, spo2=97, status=status))
    assert reading.quality == quality
    assert (reading.spo2, reading.hr) == ((97, 72) if kept else (None, None))


def test_df2_starts_at_the_next_packet_when_joining_mid_stream() -> None:
    parser = NoninDf2Parser()
    stream = df2_packet(70, 96)[37:] + df2_packet(71, 97)
    assert parser.feed(stream) == [OxReading(97, 71, None, "ok")]


def test_df2_bad_checksum_loses_that_packet_only() -> None:
    parser = NoninDf2Parser()
    bad = bytearray(df2_packet(70, 96))
    bad[4 + 5 * 3] ^= 0x01  # frame 3's check byte
    out = parser.feed(bytes(bad) + df2_packet(71, 97))
    assert out == [OxReading(97, 71, None, "ok")]
    assert parser.bad_frames >= 1


def test_df2_short_packet_is_not_glued_to_the_next() -> None:
    parser = NoninDf2Parser()
    out = parser.feed(df2_packet(70, 96)[: 5 * 10] + df2_packet(71, 97))
    assert out == [OxReading(97, 71, None, "ok")]
    assert parser.bad_frames == 1


def test_df2_frame_needs_status_bit_7() -> None:
    assert NoninDf2Parser().feed(df2_frame(0x01, 0, 0) * 30) == []


def test_df2_byte_by_byte() -> None:
    parser = NoninDf2Parser()
    out = []
    for b in df2_packet(88, 99) * 2:
        out += parser.feed(bytes((b,)))
    assert out == [OxReading(99, 88, None, "ok")] * 2
