"""Nonin ASCII lines and data format 2 and 7 packets, built from the formats' descriptions."""

from __future__ import annotations

import pytest
from conftest import df2_frame, df2_packet

from controller.clock import FakeClock
from hw.simulator import SimulatedOximeter
from hw.vitals.common import OxReading
from hw.vitals.nonin import NoninAsciiParser, NoninDf2Parser, NoninDf7, NoninDf7Parser

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


# --- DF7 -----------------------------------------------------------------------------------
# Frame: STATUS PLETH_MSB PLETH_LSB FLOAT CHK; CHK = sum of the first four mod 256; STATUS
# bit 7 always set, bit 0 on the packet's first frame; FLOAT < 128. FLOAT by frame (0-based):
# 0/1 HR msb/lsb, 2 SpO2, 3 SREV, 7 STAT2, 8 SpO2-D, 9 SpO2 fast, 10 SpO2 beat-to-beat,
# 13/14 E-HR msb/lsb, 15 E-SpO2, 16 E-SpO2-D, 19/20 HR-D msb/lsb, 21/22 E-HR-D msb/lsb.


def df7_frame(status: int, pleth: int, value: int) -> bytes:
    """One DF7 frame from its fields."""
    head = bytes((status, pleth >> 8, pleth & 0xFF, value))
    return head + bytes((sum(head) & 0xFF,))


def df7_packet(
    hr: int,
    spo2: int,
    status: int = 0x80,
    *,
    extra: dict[int, int] | None = None,
    pleth: int = 0x1234,
) -> bytes:
    """A 25-frame DF7 packet: SYNC on frame 0, 4-beat HR in frames 0/1, SpO2 in frame 2."""
    floats = [(hr >> 7) & 0x03, hr & 0x7F, spo2 & 0x7F] + [0] * 22
    for i, value in (extra or {}).items():
        floats[i] = value
    return b"".join(
        df7_frame(status | (0x01 if i == 0 else 0) | 0x80, (pleth + 37 * i) & 0xFFFF, floats[i])
        for i in range(25)
    )


def test_df7_golden_packet() -> None:
    assert NoninDf7Parser().feed(df7_packet(hr=72, spo2=97)) == [OxReading(97, 72, None, "ok")]


def test_df7_first_frame_literal_bytes() -> None:
    # HR 200 = 0b1_1001000: msb 0x01, lsb 0x48; pleth 0x1234; CHK 0x81+0x12+0x34+0x01 = 0xC8.
    packet = df7_packet(hr=200, spo2=95)
    assert packet[:5] == bytes.fromhex("81123401c8")
    # frame 1: pleth 0x1259, HR lsb 0x48; CHK 0x80+0x12+0x59+0x48 = 0x133 → 0x33.
    assert packet[5:10] == bytes.fromhex("8012594833")
    [reading] = NoninDf7Parser().feed(packet)
    assert (reading.hr, reading.spo2) == (200, 95)


def test_df7_all_variants_and_16_bit_pleth() -> None:
    extra = {
        3: 0x12,  # SREV
        7: 0x20,  # STAT2 (SPA)
        8: 96,  # SpO2-D
        9: 95,  # SpO2 fast
        10: 94,  # SpO2 beat to beat
        13: 0x01,  # E-HR msb → 128 + 2 = 130
        14: 0x02,
        15: 93,  # E-SpO2
        16: 92,  # E-SpO2-D
        19: 0x00,  # HR-D 75
        20: 75,
        21: 0x03,  # E-HR-D msb → 384 + 1 = 385 (out of range: only the raw value is kept)
        22: 0x01,
    }
    parser = NoninDf7Parser()
    [reading] = parser.feed(df7_packet(hr=72, spo2=97, extra=extra, pleth=0xFF00))
    assert reading == OxReading(97, 72, None, "ok")  # the 4-beat standard values are passed on
    p = parser.last_packet
    assert p is not None
    assert (p.hr, p.spo2, p.srev, p.stat2) == (72, 97, 0x12, 0x20)
    assert (p.spo2_d, p.spo2_fast, p.spo2_bb) == (96, 95, 94)
    assert (p.e_hr, p.e_spo2, p.e_spo2_d) == (130, 93, 92)
    assert (p.hr_d, p.e_hr_d) == (75, 385)
    assert p.pleth[0] == 0xFF00 and p.pleth[24] == (0xFF00 + 37 * 24) & 0xFFFF  # wraps
    assert p.status == 0x81


@pytest.mark.parametrize(
    ("hr", "spo2", "expected"),
    [
        (511, 127, OxReading(None, None, None, "searching")),
        (511, 97, OxReading(97, None, None, "ok")),
        (72, 127, OxReading(None, 72, None, "ok")),
        (400, 101, OxReading(None, None, None, "searching")),  # implausible → null
    ],
)
def test_df7_missing_values(hr: int, spo2: int, expected: OxReading) -> None:
    assert NoninDf7Parser().feed(df7_packet(hr=hr, spo2=spo2)) == [expected]


@pytest.mark.parametrize(
    ("status", "quality", "kept"),
    [
        (0x40, "no_sensor", False),  # SNSD
        (0x10, "searching", False),  # OOT
        (0x08, "artifact", False),  # SNSA: unusable data
        (0x20, "artifact", True),  # ARTF
        (0x02, "ok", True),  # GPRF
        (0x06, "ok", True),  # YPRF (perfusion colour bits do not affect quality)
        (0x04, "ok", True),  # RPRF
        (0x58, "no_sensor", False),
    ],
)
def test_df7_status_bits(status: int, quality: str, kept: bool) -> None:
    [reading] = NoninDf7Parser().feed(df7_packet(hr=72, spo2=97, status=status))
    assert reading.quality == quality
    assert (reading.spo2, reading.hr) == ((97, 72) if kept else (None, None))


def test_df7_status_bit_in_one_frame_counts_for_the_packet() -> None:
    packet = bytearray(df7_packet(hr=72, spo2=97))
    packet[5 * 17 : 5 * 18] = df7_frame(0x80 | 0x40, 0x1234, 0)  # SNSD in frame 17 only
    assert NoninDf7Parser().feed(bytes(packet))[0].quality == "no_sensor"


def test_df7_bad_checksum_loses_that_packet_only() -> None:
    parser = NoninDf7Parser()
    bad = bytearray(df7_packet(70, 96))
    bad[4 + 5 * 3] ^= 0x01  # frame 3's check byte
    out = parser.feed(bytes(bad) + df7_packet(71, 97) + df7_packet(72, 98))
    assert out == [OxReading(97, 71, None, "ok"), OxReading(98, 72, None, "ok")]
    assert parser.bad_frames >= 1


@pytest.mark.parametrize(
    ("offset", "byte"),
    [(0, 0x01), (3, 0x80)],  # STATUS without bit 7; FLOAT with bit 7 (checksum fixed up)
)
def test_df7_frame_shape_is_checked(offset: int, byte: int) -> None:
    frame = bytearray(df7_frame(0x81, 0x1234, 72))
    frame[offset] = byte
    frame[4] = sum(frame[:4]) & 0xFF
    packet = bytes(frame) + df7_packet(72, 97)[5:]
    parser = NoninDf7Parser()
    assert parser.feed(packet) == []
    assert parser.bad_frames >= 1


def test_df7_short_packet_is_not_glued_to_the_next() -> None:
    parser = NoninDf7Parser()
    out = parser.feed(df7_packet(70, 96)[: 5 * 10] + df7_packet(71, 97))
    assert out == [OxReading(97, 71, None, "ok")]
    assert parser.bad_frames == 1


def test_df7_starts_at_the_next_packet_when_joining_mid_stream() -> None:
    stream = df7_packet(70, 96)[37:] + df7_packet(71, 97)
    assert NoninDf7Parser().feed(stream) == [OxReading(97, 71, None, "ok")]


def test_df7_resyncs_after_garbage() -> None:
    parser = NoninDf7Parser()
    garbage = bytes((i * 97 + 13) & 0xFF for i in range(200))
    out = parser.feed(df7_packet(70, 96) + garbage + df7_packet(71, 97) + df7_packet(72, 98))
    assert out[0] == OxReading(96, 70, None, "ok")
    assert out[-2:] == [OxReading(97, 71, None, "ok"), OxReading(98, 72, None, "ok")]
    assert parser.bad_frames >= 1


def test_df7_byte_by_byte_and_reset() -> None:
    parser = NoninDf7Parser()
    out = []
    for b in df7_packet(88, 99) * 2:
        out += parser.feed(bytes((b,)))
    assert out == [OxReading(99, 88, None, "ok")] * 2
    parser.feed(df7_packet(70, 96)[:60])
    parser.reset()
    assert parser.feed(df7_packet(70, 96)[60:] + df7_packet(71, 97)) == [
        OxReading(97, 71, None, "ok")
    ]


def test_df7_simulator_writes_format_7() -> None:
    sim = SimulatedOximeter("nonin_df7", FakeClock(), period_s=3600, seed=2)
    try:
        parser = NoninDf7Parser()
        readings = parser.feed(sim.output())
        assert len(readings) == 3 and parser.bad_frames == 0
        assert readings[-1].quality == "ok" and 96 <= (readings[-1].spo2 or 0) <= 99
        p = parser.last_packet
        assert p is not None and p.e_hr == p.hr_d == p.hr and p.e_spo2 == p.spo2
        assert max(p.pleth) > 255  # the 16-bit pleth is used
        sim.incident("sensor_off")
        off = parser.feed(sim.output())
        assert off[-1] == OxReading(None, None, None, "searching")
    finally:
        sim.close()


def test_df7_driver_is_registered() -> None:
    from hw.vitals import OXIMETERS

    assert OXIMETERS["nonin_df7"].driver is NoninDf7
    assert NoninDf7.source == "nonin_df7"
