"""Light levels and colours as the eye sees them, and fades between them.

A level is *perceived* brightness (CIE 1931 lightness, 0..1); it becomes a PWM duty through
the CIE curve, so a fade that moves evenly in level looks even, and the dim end, where the eye
is most sensitive, gets the finest duty steps. A colour is a hue picked on a screen (sRGB,
0..255); only its proportions count, brightness is the level's job.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

Colour = tuple[float, float, float]
Layout = Literal["mono", "rgb", "rgbw"]
"""How an output's channels make light: one dimmable channel, RGB, or RGB plus white."""

WHITE: Colour = (255.0, 255.0, 255.0)
KAPPA = 24389 / 27  # CIE's exact constant (903.3 rounded leaves a kink at L* = 8)


def lightness_to_duty(level: float) -> float:
    """The luminance (PWM duty 0..1) that looks like lightness ``level`` (0..1), CIE 1931."""
    lstar = max(0.0, min(1.0, level)) * 100.0
    if lstar <= 8.0:
        return lstar / KAPPA
    return ((lstar + 16.0) / 116.0) ** 3


def duty_to_lightness(duty: float) -> float:
    """The inverse of :func:`lightness_to_duty`."""
    y = max(0.0, min(1.0, duty))
    if y <= 8.0 / KAPPA:
        return y * KAPPA / 100.0
    return (116.0 * y ** (1.0 / 3.0) - 16.0) / 100.0


def srgb_to_linear(c: float) -> float:
    """Linear light (0..1) for an sRGB component (0..1)."""
    return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4


def linear_to_srgb(c: float) -> float:
    """The inverse of :func:`srgb_to_linear`."""
    return c * 12.92 if c <= 0.0031308 else 1.055 * c ** (1.0 / 2.4) - 0.055


@dataclass(frozen=True)
class LightState:
    """Where the lights are: perceived ``level`` 0..1 and an sRGB ``colour`` (0..255 each)."""

    level: float
    colour: Colour = WHITE


@dataclass(frozen=True)
class Fade:
    """A fade from ``start`` to ``end`` over ``duration`` seconds, even in perceived level."""

    start: LightState
    end: LightState
    duration: float

    def at(self, elapsed: float) -> LightState:
        """The state ``elapsed`` seconds into the fade."""
        if self.duration <= 0 or elapsed >= self.duration:
            return self.end
        f = max(0.0, elapsed / self.duration)
        s, e = self.start, self.end
        r, g, b = (a + (z - a) * f for a, z in zip(s.colour, e.colour, strict=True))
        return LightState(s.level + (e.level - s.level) * f, (r, g, b))

    def level_at(self, elapsed: float) -> float:
        """The perceived level ``elapsed`` seconds into the fade."""
        return self.at(elapsed).level

    def done(self, elapsed: float) -> bool:
        """Whether the fade has reached its end ``elapsed`` seconds in."""
        return elapsed >= self.duration


def layout_for(channels: int) -> Layout:
    """The channel layout for a number of colour channels (1, 3 or 4)."""
    layouts: dict[int, Layout] = {1: "mono", 3: "rgb", 4: "rgbw"}
    if channels not in layouts:
        raise ValueError(f"lights need 1, 3 (RGB) or 4 (RGBW) channels, got {channels}")
    return layouts[channels]


def channel_duties(state: LightState, layout: Layout) -> tuple[float, ...]:
    """The PWM duty (0..1) of each channel for ``state``."""
    y = lightness_to_duty(state.level)
    if layout == "mono":
        return (y,)
    peak = max(state.colour)
    if peak <= 0:
        return (0.0,) * (3 if layout == "rgb" else 4)
    # Normalised to the brightest component: the colour sets the hue, the level the brightness.
    r, g, b = (y * srgb_to_linear(max(0.0, c) / peak) for c in state.colour)
    if layout == "rgb":
        return (r, g, b)
    w = min(r, g, b)  # the white emitter takes the part all three have in common
    return (r - w, g - w, b - w, w)


def state_from_duties(duties: Sequence[float], layout: Layout) -> LightState:
    """The state that :func:`channel_duties` would map to ``duties`` (for read-back)."""
    if layout == "mono":
        return LightState(duty_to_lightness(duties[0]))
    lin = list(duties[:3])
    if layout == "rgbw":
        lin = [c + duties[3] for c in lin]
    y = max(lin)
    if y <= 0:
        return LightState(0.0)
    r, g, b = (255.0 * linear_to_srgb(c / y) for c in lin)
    return LightState(duty_to_lightness(y), (r, g, b))
