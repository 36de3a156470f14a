"""Masimo ASCII 1: golden lines from Rad-8, Radical-7 and Rad-97 style output."""

from __future__ import annotations

import pytest

from hw.vitals.common import OxReading
from hw.vitals.masimo import MasimoParser, exc_quality, parse_line

RAD97 = (
    b"01/05/26 09:00:00 SN=0000084590 SPO2=098% BPM=072 PI=03.60% SPCO=--.-% SPMET=--.-% "
    b"DESAT=-- PIDELTA=+-- ALARM=0000 EXC=000800\r\n"
)
RAD8 = b"01/05/26 09:00:01 SN=----------- SPO2=097% BPM=068 PI=1.23% ALARM=0000 EXC=000000\r\n"
RADICAL7_NO_PCT = b"01/05/26 09:00:02 SN=1234 SPO2=99 BPM=101 PI=10.5 EXC=000\r\n"


def parse_all(data: bytes) -> list[OxReading]:
    return MasimoParser().feed(data)


def test_rad97_line_by_key() -> None:
    assert parse_all(RAD97) == [OxReading(spo2=98, hr=72, pi=3.6, quality="ok")]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (RAD8, OxReading(spo2=97, hr=68, pi=1.23, quality="ok")),
        (RADICAL7_NO_PCT, OxReading(spo2=99, hr=101, pi=10.5, quality="ok")),
        # fields in another order, extra fields: still found by key
        (
            b"01/05/26 09:00:03 BPM=060 EXC=000000 PVI=12 SPO2=096% SPHB=13.1\r\n",
            OxReading(spo2=96, hr=60, pi=None, quality="ok"),
        ),
    ],
)
def test_other_models(line: bytes, expected: OxReading) -> None:
    assert parse_all(line) == [expected]


def test_dashes_mean_no_value_and_searching() -> None:
    line = b"01/05/26 09:00:00 SN=1 SPO2=---% BPM=--- PI=--.--% ALARM=0000 EXC=000000\r\n"
    assert parse_all(line) == [OxReading(spo2=None, hr=None, pi=None, quality="searching")]


@pytest.mark.parametrize(
    ("exc", "quality", "values_kept"),
    [
        ("000001", "no_sensor", False),
        ("000002", "no_sensor", False),
        ("000080", "no_sensor", False),
        ("000020", "sensor_off", False),
        ("000008", "searching", False),
        ("000010", "artifact", True),
        ("000040", "artifact", True),
        ("000400", "artifact", True),
        ("000004", "ok", True),  # low perfusion: valid numbers, PI shows it
        ("000800", "ok", True),  # a bit we do not map
        ("000029", "no_sensor", False),  # worst condition wins
        ("000418", "searching", False),
    ],
)
def test_exc_bits(exc: str, quality: str, values_kept: bool) -> None:
    line = f"01/05/26 09:00:00 SPO2=098% BPM=072 PI=03.60% ALARM=0000 EXC={exc}\r\n".encode()
    [reading] = parse_all(line)
    assert reading.quality == quality
    if values_kept:
        assert (reading.spo2, reading.hr, reading.pi) == (98, 72, 3.6)
    else:
        # The monitor may still print its last numbers: they must never pass as current.
        assert (reading.spo2, reading.hr, reading.pi) == (None, None, None)


def test_exc_quality_function() -> None:
    assert exc_quality(0) == "ok"
    assert exc_quality(0x020 | 0x010) == "sensor_off"


def test_byte_by_byte_and_cr_only_endings() -> None:
    parser = MasimoParser()
    out = []
    for b in RAD97.replace(b"\r\n", b"\r") + RAD8:
        out += parser.feed(bytes((b,)))
    assert [r.spo2 for r in out] == [98, 97]
    assert parser.bad_frames == 0


def test_printable_garbage_prefix_is_ignored() -> None:
    # noise that reached the line before its time stamp (SPO2=12 must not be taken)
    assert parse_all(b"SPO2=12 BPM=3 xx" + RAD97)[0].spo2 == 98


def test_control_bytes_drop_the_line_and_next_line_is_read() -> None:
    parser = MasimoParser()
    corrupted = RAD97[:40] + b"\x00\xff" + RAD97[42:]
    assert parser.feed(corrupted + RAD8) == [OxReading(spo2=97, hr=68, pi=1.23, quality="ok")]
    assert parser.bad_frames >= 1


def test_whole_line_right_after_binary_noise_is_read() -> None:
    parser = MasimoParser()
    assert [r.spo2 for r in parser.feed(b"\x00\xfe\x13zz" + RAD97)] == [98]


@pytest.mark.parametrize(
    "line",
    [
        b"01/05/26 09:00:00 SPO2=9X8% BPM=072 EXC=000000",  # corrupted digit
        b"01/05/26 09:00:00 SPO2=098% EXC=000000",  # no BPM
        b"SPO2=098% BPM=072 EXC=000000",  # no time stamp: not ASCII 1
        b"01/05/26 09:00:00 SPO2=098% BPM=072 EXC=00ZZ00",  # bad hex
        b"01/05/26 09:00:00 SPO2=098% BPM=072 SPO2=097% BPM=070",  # two lines ran together
    ],
)
def test_bad_lines_are_counted_not_parsed(line: bytes) -> None:
    parser = MasimoParser()
    assert parser.feed(line + b"\r\n") == []
    assert parser.bad_frames == 1
    assert parse_line(line.decode()) is None


def test_implausible_values_are_null() -> None:
    line = b"01/05/26 09:00:00 SPO2=180% BPM=000 EXC=000000\r\n"
    assert parse_all(line) == [OxReading(spo2=None, hr=None, pi=None, quality="searching")]


def test_overlong_line_is_dropped() -> None:
    parser = MasimoParser()
    assert parser.feed(b"A" * 2000 + b"\r\n" + RAD8) == [
        OxReading(spo2=97, hr=68, pi=1.23, quality="ok")
    ]
    assert parser.bad_frames == 1
