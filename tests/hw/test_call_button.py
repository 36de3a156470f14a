"""The call button on gpiozero mock pins: press, bounce, hold, and the lamp. Fake clock only."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from gpiozero.pins.mock import MockFactory

from controller.events import CallHeld, CallPressed, DeviceChanged
from hw.call_button import CallButton

WAIT = 5.0


def make(mock_pins: Any, clock: Any, emit: Any, **kw: Any) -> CallButton:
    kw.setdefault("start", False)
    return CallButton(17, 27, emit, clock, 30, 2.0, pin_factory=mock_pins, **kw)


def counts(emitted: Any) -> tuple[int, int]:
    return len(emitted.of(CallPressed)), len(emitted.of(CallHeld))


def test_press_is_reported_at_once_and_device_ok(
    mock_pins: Any, room_clock: Any, emitted: Any, closer: Any
) -> None:
    closer(make(mock_pins, room_clock, emitted))
    assert emitted.of(DeviceChanged) == [DeviceChanged("call_button", "ok", "GPIO17")]
    mock_pins.pin(17).drive_low()  # the button pulls the line low
    assert counts(emitted) == (1, 0)


def test_the_button_adds_no_thread_of_its_own_beyond_the_hold_timer(
    mock_pins: Any, room_clock: Any, emitted: Any, closer: Any
) -> None:
    # gpiozero's Button would start a hold thread that wakes ten times a second, idle or not.
    before = threading.active_count()
    closer(make(mock_pins, room_clock, emitted))
    assert threading.active_count() == before


def test_contact_bounce_is_one_press(
    mock_pins: Any, room_clock: Any, emitted: Any, closer: Any
) -> None:
    closer(make(mock_pins, room_clock, emitted))
    pin = mock_pins.pin(17)
    for _ in range(4):  # chatter within the first 12 ms
        pin.drive_low()
        room_clock.advance(0.003)
        pin.drive_high()
        room_clock.advance(0.003)
    pin.drive_low()
    assert counts(emitted) == (1, 0)
    room_clock.advance(0.5)
    pin.drive_high()  # a clean release …
    room_clock.advance(0.005)
    pin.drive_low()  # … and its bounce: not a press
    room_clock.advance(0.005)
    pin.drive_high()
    assert counts(emitted) == (1, 0)
    room_clock.advance(0.5)
    pin.drive_low()  # a second, real press
    assert counts(emitted) == (2, 0)


def test_a_tap_shorter_than_the_bounce_window_never_swallows_the_next_press(
    mock_pins: Any, room_clock: Any, emitted: Any, closer: Any
) -> None:
    button = closer(make(mock_pins, room_clock, emitted))
    pin = mock_pins.pin(17)
    pin.drive_low()
    room_clock.advance(0.010)
    pin.drive_high()  # released 10 ms in: a quick tap
    room_clock.advance(3.0)
    assert button.poll() is None  # the release is confirmed: no hold
    pin.drive_low()
    assert counts(emitted) == (2, 0)
    room_clock.advance(0.010)
    pin.drive_high()
    room_clock.advance(0.100)
    pin.drive_low()  # the next tap comes before any poll confirmed the release: still counts
    assert counts(emitted) == (3, 0)


def test_hold_is_reported_at_the_hold_time_without_release(
    mock_pins: Any, room_clock: Any, emitted: Any, closer: Any
) -> None:
    button = closer(make(mock_pins, room_clock, emitted))
    mock_pins.pin(17).drive_low()
    assert button.poll() == 2.0
    room_clock.advance(1.99)
    assert button.poll() is not None
    assert counts(emitted) == (1, 0)
    room_clock.advance(0.01)
    assert button.poll() is None
    assert counts(emitted) == (1, 1)
    room_clock.advance(5.0)  # still held: reported once only
    button.poll()
    assert counts(emitted) == (1, 1)
    assert emitted.messages[-2:] == [CallPressed(), CallHeld()]


def test_release_before_the_hold_time_is_not_a_hold(
    mock_pins: Any, room_clock: Any, emitted: Any, closer: Any
) -> None:
    button = closer(make(mock_pins, room_clock, emitted))
    pin = mock_pins.pin(17)
    pin.drive_low()
    room_clock.advance(1.5)
    pin.drive_high()
    room_clock.advance(1.0)
    assert button.poll() is None
    pin.drive_low()  # pressing again starts a new hold from zero
    room_clock.advance(1.9)
    button.poll()
    assert counts(emitted) == (2, 0)


def test_chatter_during_a_hold_does_not_restart_it(
    mock_pins: Any, room_clock: Any, emitted: Any, closer: Any
) -> None:
    button = closer(make(mock_pins, room_clock, emitted))
    pin = mock_pins.pin(17)
    pin.drive_low()
    room_clock.advance(1.0)
    pin.drive_high()
    room_clock.advance(0.002)
    pin.drive_low()  # a 2 ms flicker of a worn contact
    room_clock.advance(1.0)
    button.poll()
    assert counts(emitted) == (1, 1)


def test_a_release_just_before_the_hold_time_is_not_a_hold(
    mock_pins: Any, room_clock: Any, emitted: Any, closer: Any
) -> None:
    button = closer(make(mock_pins, room_clock, emitted))
    pin = mock_pins.pin(17)
    pin.drive_low()
    room_clock.advance(1.99)
    pin.drive_high()
    room_clock.advance(0.01)
    assert button.poll() == pytest.approx(0.02)  # the hold waits to see whether the release is real
    room_clock.advance(0.02)
    assert button.poll() is None
    assert counts(emitted) == (1, 0)


def test_hold_timer_thread_fires_without_anyone_polling(
    mock_pins: Any, room_clock: Any, autojump: Any, emitted: Any, closer: Any
) -> None:
    closer(make(mock_pins, room_clock, emitted, waiter=autojump, start=True))
    start = room_clock.monotonic()
    mock_pins.pin(17).drive_low()
    assert emitted.wait_for(lambda ms: CallHeld() in ms)
    assert room_clock.monotonic() - start == 2.0  # the thread slept exactly the hold time
    assert counts(emitted) == (1, 1)
    # Released before close: gpiozero's own hold thread takes up to hold_time to stop otherwise.
    mock_pins.pin(17).drive_high()


def test_lamp_modes(mock_pins: Any, room_clock: Any, emitted: Any, closer: Any) -> None:
    button = closer(make(mock_pins, room_clock, emitted))
    lamp = mock_pins.pin(27)
    button.set_lamp("steady")
    assert lamp.state == 1.0
    button.set_lamp("off")
    assert lamp.state == 0.0
    button.set_lamp("pulse")
    # gpiozero's pulse thread fades in real time: wait (bounded) for a mid-level value.
    tick = threading.Event()
    for _ in range(250):
        if any(0.0 < s.state < 1.0 for s in lamp.states):
            break
        tick.wait(0.02)
    assert any(0.0 < s.state < 1.0 for s in lamp.states)
    button.set_lamp("pulse")  # the same mode again does not restart the pulse
    button.set_lamp("steady")
    assert lamp.state == 1.0 and button.lamp_mode == "steady"


def test_lamp_without_pwm_blinks(room_clock: Any, emitted: Any, closer: Any) -> None:
    plain = MockFactory()  # pins without PWM
    try:
        button = closer(CallButton(17, 27, emitted, room_clock, pin_factory=plain, start=False))
        button.set_lamp("pulse")
        assert button.lamp_mode == "pulse"
        button.set_lamp("off")
        assert plain.pin(27).state is False
    finally:
        plain.reset()
