"""LED channels on gpiozero PWM pins: the ``pwm`` driver (one dimmable channel on one or more
pins) and ``rgb`` (three or four pins: RGB or RGBW)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

from pydantic import AfterValidator, Field

from controller.drivers import DriverSettings
from hw.lighting.curve import Layout, layout_for
from hw.lighting.output import LIGHTS, OutputOptions, makes_a_light

GpioPin = Annotated[int, Field(ge=0, le=27)]


class PwmSettings(DriverSettings):
    """``pwm``: the BCM pins that all carry the one level."""

    pins: list[GpioPin] = Field(default_factory=lambda: [18], min_length=1)


class RgbSettings(DriverSettings):
    """``rgb``: the BCM pins of the red, green, blue (and white) channels, in that order."""

    pins: Annotated[list[GpioPin], AfterValidator(makes_a_light)]


class PwmOutput:
    """LED channels on gpiozero ``PWMLED`` pins: one dimmable channel, or RGB/RGBW.

    With the ``mono`` layout every pin gets the same duty (several strings, one level).
    """

    refresh_s: float | None = None

    def __init__(
        self,
        pins: Sequence[int],
        layout: Layout = "mono",
        *,
        pin_factory: Any = None,
        frequency: float = 1000.0,
    ) -> None:
        from gpiozero import PWMLED

        if not pins or (layout != "mono" and layout_for(len(pins)) != layout):
            raise ValueError(f"pins: {list(pins)} do not make a {layout} light")
        self.layout: Layout = layout
        self.leds: list[Any] = []
        try:
            for pin in pins:
                self.leds.append(PWMLED(pin, frequency=frequency, pin_factory=pin_factory))
        except Exception:
            self.close()
            raise

    def open(self) -> None:
        """Nothing to do: GPIO pins do not come and go."""

    def write(self, duties: Sequence[float]) -> None:
        """Set each pin's duty."""
        values = [duties[0]] * len(self.leds) if self.layout == "mono" else duties
        for led, duty in zip(self.leds, values, strict=True):
            led.value = max(0.0, min(1.0, duty))

    def read_back(self) -> list[float] | None:
        """The pins' duties (zero after a restart: the pins start low)."""
        values = [float(led.value) for led in self.leds]
        return values[:1] if self.layout == "mono" else values

    def close(self) -> None:
        """Release the pins (the lights go dark)."""
        for led in self.leds:
            led.close()


def _mono(settings: PwmSettings, options: OutputOptions) -> PwmOutput:
    return PwmOutput(settings.pins, "mono", pin_factory=options.pin_factory)


def _colour(settings: RgbSettings, options: OutputOptions) -> PwmOutput:
    layout = layout_for(len(settings.pins))
    return PwmOutput(settings.pins, layout, pin_factory=options.pin_factory)


LIGHTS.add("pwm", _mono, PwmSettings)
LIGHTS.add("rgb", _colour, RgbSettings)
