"""SunTech Advantage frames: the golden bytes of host commands and module frames."""

from __future__ import annotations

from conftest import suntech_module

from hw.vitals import suntech_frames as suntech


def test_host_frames_golden_bytes() -> None:
    assert bytes.fromhex("3a20a6") == suntech.START_ADULT
    assert bytes.fromhex("3a7901004c") == suntech.ABORT
    assert bytes.fromhex("3a7903004a") == suntech.GET_BP_DATA
    for frame in (suntech.START_ADULT, suntech.ABORT, suntech.GET_BP_DATA):
        assert sum(frame) % 256 == 0


def test_module_frame_golden_bytes() -> None:
    assert suntech.module_frame(b"O") == bytes.fromhex("3e044f6f")
    assert suntech_module(b"K") == suntech.module_frame(b"K")
