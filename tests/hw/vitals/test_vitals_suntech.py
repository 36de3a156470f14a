"""SunTech Advantage frames: host commands, module frames, results and error codes."""

from __future__ import annotations

import pytest
from conftest import suntech_module, suntech_result

from hw.vitals.suntech import ModuleFrameParser, decode_result, error_name


def test_parser_acks_and_result() -> None:
    parser = ModuleFrameParser()
    stream = suntech_module(b"O") + suntech_module(b"K") + suntech_result(128, 82, 97, 74)
    frames = parser.feed(stream)
    assert frames[:2] == [b"O", b"K"]
    result = decode_result(frames[2])
    assert result is not None
    assert (result.sys, result.dia, result.map, result.hr, result.error) == (128, 82, 97, 74, 0)


def test_result_16_bit_little_endian() -> None:
    [data] = ModuleFrameParser().feed(suntech_result(0x0102, 0x0080, 0x00C0, 60))
    result = decode_result(data)
    assert result is not None and (result.sys, result.dia, result.map) == (258, 128, 192)


def test_error_result() -> None:
    [data] = ModuleFrameParser().feed(suntech_result(0, 0, 0, 0, error=87))
    result = decode_result(data)
    assert result is not None and error_name(result.error) == "leak"


@pytest.mark.parametrize(
    ("code", "name"),
    [
        (1, "weak_signal"),
        (2, "erratic_signal"),
        (3, "out_of_range"),
        (4, "measurement_timeout"),
        (85, "pneumatic_blockage"),
        (86, "terminated"),
        (87, "leak"),
        (88, "safety_timeout"),
        (89, "overpressure"),
        (90, "hardware_fault"),
        (97, "transducer_out_of_range"),
        (200, "module_error_200"),
    ],
)
def test_error_names(code: int, name: str) -> None:
    assert error_name(code) == name


def test_bad_checksum_dropped_next_frame_read() -> None:
    parser = ModuleFrameParser()
    bad = bytearray(suntech_result(120, 80, 93, 70))
    bad[5] ^= 0xFF
    frames = parser.feed(bytes(bad) + suntech_module(b"K"))
    assert frames == [b"K"]
    assert parser.bad_frames >= 1


def test_false_start_byte_with_long_length_does_not_swallow_a_frame() -> None:
    parser = ModuleFrameParser()
    assert parser.feed(b"\x3e\x40\x01\x02" + suntech_module(b"K")) == [b"K"]


def test_split_anywhere() -> None:
    stream = suntech_module(b"O") + suntech_result(130, 85, 100, 66)
    for cut in range(len(stream) + 1):
        parser = ModuleFrameParser()
        frames = parser.feed(stream[:cut]) + parser.feed(stream[cut:])
        assert len(frames) == 2 and frames[0] == b"O"


def test_decode_result_refuses_other_frames() -> None:
    assert decode_result(b"K") is None
