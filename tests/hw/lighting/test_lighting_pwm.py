"""The ``pwm`` and ``rgb`` drivers: gpiozero mock PWM pins, built from the config."""

from __future__ import annotations

from typing import Any

import pytest

from controller.config import LightingSection, parse_config
from controller.errors import ConfigError
from hw.lighting import make_lighting
from hw.lighting.curve import LightState, channel_duties, lightness_to_duty
from hw.lighting.pwm import PwmSettings


def test_rgb_channels_on_gpio(mock_pins: Any, room_clock: Any, emitted: Any) -> None:
    section = LightingSection(driver="rgb", pins=[5, 6, 13])
    lights = make_lighting(section, emitted, pin_factory=mock_pins, clock=room_clock, start=False)
    try:
        lights.set_scene("discharge", 0.8, (255, 220, 180), 0)
        lights.step(room_clock.monotonic())
        got = [mock_pins.pin(p).state for p in (5, 6, 13)]
        assert got == pytest.approx(channel_duties(LightState(0.8, (255, 220, 180)), "rgb"))
        assert got[0] == pytest.approx(lightness_to_duty(0.8))
    finally:
        lights.close()


def lighting_errors(section: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config({"room": {"id": "r"}, "hardware": {"lighting": section}})
    return info.value.problems


def test_the_drivers_own_keys_are_checked_when_the_config_is_read() -> None:
    assert lighting_errors({"driver": "rgb", "pins": [5, 6]}) == [
        "hardware.lighting.pins: Value error, lights need 1, 3 (RGB) or 4 (RGBW) channels, "
        "got 2 (got [5, 6])"
    ]
    assert lighting_errors({"driver": "rgb"}) == ["hardware.lighting.pins: required key is missing"]
    # A DMX key under the pwm driver does nothing: refused, with the keys pwm has.
    assert lighting_errors({"driver": "pwm", "port": "/dev/ttyUSB0", "pins": [30]}) == [
        "hardware.lighting.pins.0: Input should be less than or equal to 27 (got 30)",
        "hardware.lighting.port: unknown key for the pwm driver (its own keys: pins)",
    ]


def test_pwm_defaults_to_one_pin_and_drives_every_pin_it_is_given(
    mock_pins: Any, room_clock: Any, emitted: Any
) -> None:
    assert LightingSection().driver_settings() == PwmSettings(pins=[18])
    section = LightingSection.model_validate({"pins": [12, 13]})  # driver pwm by default
    lights = make_lighting(section, emitted, pin_factory=mock_pins, clock=room_clock, start=False)
    try:
        lights.set_scene("x", 0.5, None, 0)
        lights.step(room_clock.monotonic())
        duty = pytest.approx(lightness_to_duty(0.5))
        assert [mock_pins.pin(p).state for p in (12, 13)] == [duty, duty]
    finally:
        lights.close()
