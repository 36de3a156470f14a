"""The ``dmx`` driver: ENTTEC frames through a real pseudo-terminal."""

from __future__ import annotations

from typing import Any

import pytest

from controller.config import LightingSection
from hw.lighting import make_lighting
from hw.lighting.curve import lightness_to_duty, srgb_to_linear
from hw.lighting.dmx import FRAME_SIZE, DmxOutput, enttec_frame, split_messages
from hw.lighting.fader import Lighting

WAIT = 5.0


def expected_frame(slots: dict[int, int]) -> bytes:
    universe = [0] * 512
    for address, value in slots.items():
        universe[address - 1] = value
    return bytes([0x7E, 0x06, 0x01, 0x02, 0x00, *universe, 0xE7])


def test_enttec_frame_layout() -> None:
    universe = bytes(range(256)) * 2
    frame = enttec_frame(universe)
    assert len(frame) == FRAME_SIZE == 518
    assert frame[:5].hex(" ") == "7e 06 01 02 00"  # label 6, length 513 LSB first, start code
    assert frame[5:-1] == universe and frame[-1] == 0xE7
    with pytest.raises(ValueError):
        enttec_frame(b"\x00" * 24)


def test_split_messages_for_a_simulated_widget() -> None:
    universe = bytes(range(256)) * 2
    frame = enttec_frame(universe)
    messages, rest = split_messages(b"\x01\x7e\x02" + frame + frame[:100])
    assert messages == [(6, b"\x00" + universe)]  # noise and a false start skipped
    assert rest == frame[:100]
    assert split_messages(rest + frame[100:]) == ([(6, b"\x00" + universe)], b"")
    assert split_messages(b"\x00\x01") == ([], b"")


def test_dmx_frames_on_the_wire(dmx_widget: Any, room_clock: Any, emitted: Any) -> None:
    section = LightingSection(driver="dmx", port=dmx_widget.path, dmx_channels=[10, 11, 12])
    lights = make_lighting(section, emitted, clock=room_clock, start=False)
    try:
        assert emitted.statuses("lighting") == ["ok"]  # the port opened
        assert not dmx_widget.pending()  # nothing known to send yet
        lights.set_scene("x", 1.0, (255, 0, 128), 0)
        lights.step(room_clock.monotonic())
        blue = round(255 * srgb_to_linear(128 / 255))
        assert dmx_widget.read(FRAME_SIZE) == expected_frame({10: 255, 11: 0, 12: blue})
        lights.set_scene("y", 0.5, (255, 255, 255), 0)
        lights.step(room_clock.monotonic())
        v = round(255 * lightness_to_duty(0.5))
        assert dmx_widget.read(FRAME_SIZE) == expected_frame({10: v, 11: v, 12: v})
        # Idle: the universe is re-sent every second, not at the fade rate.
        assert lights.step(room_clock.monotonic()) == pytest.approx(1.0)
        assert not dmx_widget.pending()
        room_clock.advance(1.0)
        lights.step(room_clock.monotonic())
        assert dmx_widget.read(FRAME_SIZE) == expected_frame({10: v, 11: v, 12: v})
    finally:
        lights.close()


def test_dmx_unplug_is_lost_once_then_ok_after_replug(
    dmx_widget: Any, room_clock: Any, emitted: Any
) -> None:
    out = DmxOutput(dmx_widget.path, [1])
    lights = Lighting(out, emitted, clock=room_clock, start=False, backoff_s=(0.5, 10.0))
    try:
        lights.set_scene("x", 1.0, None, 0)
        lights.step(room_clock.monotonic())
        assert dmx_widget.read(FRAME_SIZE) == expected_frame({1: 255})
        dmx_widget.unplug()
        lights.set_scene("y", 0.5, None, 0)  # must not raise
        assert lights.step(room_clock.monotonic()) == pytest.approx(0.5)  # retry after backoff
        assert emitted.statuses("lighting") == ["ok", "lost"]
        room_clock.advance(0.5)
        assert lights.step(room_clock.monotonic()) == pytest.approx(1.0)  # still gone: backoff x2
        room_clock.advance(0.4)
        assert lights.step(room_clock.monotonic()) == pytest.approx(0.6)  # not due yet
        assert emitted.statuses("lighting") == ["ok", "lost"]  # lost only once
        dmx_widget.replug()
        room_clock.advance(0.6)
        lights.step(room_clock.monotonic())
        assert emitted.statuses("lighting") == ["ok", "lost", "ok"]
        v = round(255 * lightness_to_duty(0.5))
        assert dmx_widget.read(FRAME_SIZE) == expected_frame({1: v})  # the current scene again
    finally:
        lights.close()


def test_dmx_unplug_noticed_while_idle_on_the_real_thread(
    dmx_widget: Any, emitted: Any, closer: Any
) -> None:
    out = DmxOutput(dmx_widget.path, [1, 2, 3, 4])
    lights = closer(Lighting(out, emitted, backoff_s=(0.05, 0.2)))
    lights.set_scene("x", 1.0, (255, 255, 255), 0)
    assert lights.wait_settled(WAIT)
    assert dmx_widget.read(FRAME_SIZE) == expected_frame({4: 255})  # RGBW: white only
    dmx_widget.unplug()
    lights.set_scene("y", 0.2, None, 0)
    assert emitted.wait_for(lambda ms: [m.status for m in ms] == ["ok", "lost"])
    dmx_widget.replug()
    assert emitted.wait_for(lambda ms: [m.status for m in ms] == ["ok", "lost", "ok"])


def test_dmx_without_port_is_absent(emitted: Any) -> None:
    lights = make_lighting(LightingSection(driver="dmx"), emitted, start=False)
    lights.set_scene("x", 1.0, None, 0)
    lights.step(0.0)
    lights.close()
    assert emitted.statuses("lighting") == ["absent"]
    assert emitted.messages[0].detail == "dmx driver without a port"
