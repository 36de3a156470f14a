"""The room's lights: perceptual fades (``curve``, ``fader``) over one output built by the
configured driver. Importing this package imports every module in it, and each driver module
registers its drivers (``output.LIGHTS``): a new light driver is one new module here.
"""

from __future__ import annotations

import sys

from hw.drivers import load_package
from hw.lighting.curve import (
    Fade,
    LightState,
    channel_duties,
    duty_to_lightness,
    layout_for,
    lightness_to_duty,
    srgb_to_linear,
    state_from_duties,
)
from hw.lighting.fader import Lighting, make_lighting
from hw.lighting.output import LIGHTS, LightOutput, NullOutput

load_package(sys.modules[__name__])

__all__ = [
    "LIGHTS",
    "Fade",
    "LightOutput",
    "LightState",
    "Lighting",
    "NullOutput",
    "channel_duties",
    "duty_to_lightness",
    "layout_for",
    "lightness_to_duty",
    "make_lighting",
    "srgb_to_linear",
    "state_from_duties",
]
