"""The curve and the fade, pure: CIE lightness to duty, sRGB hues, perceptual fades."""

from __future__ import annotations

import pytest

from hw.lighting.curve import (
    Fade,
    LightState,
    channel_duties,
    duty_to_lightness,
    layout_for,
    lightness_to_duty,
    srgb_to_linear,
)


def test_cie_curve_ends_continuity_and_inverse() -> None:
    assert lightness_to_duty(0.0) == 0.0
    assert lightness_to_duty(1.0) == pytest.approx(1.0)
    # The two pieces of CIE 1931 meet at L* = 8.
    assert lightness_to_duty(0.08 - 1e-9) == pytest.approx(lightness_to_duty(0.08 + 1e-9))
    levels = [i / 1000 for i in range(1001)]
    duties = [lightness_to_duty(v) for v in levels]
    assert duties == sorted(duties)
    for v in (0.0, 0.01, 0.05, 0.08, 0.3, 0.5, 1.0):
        assert duty_to_lightness(lightness_to_duty(v)) == pytest.approx(v, abs=1e-9)
    # A dim "infusion" scene (5 %) is about half a percent of duty, not 5 %.
    assert lightness_to_duty(0.05) == pytest.approx(0.005535, rel=1e-3)
    assert lightness_to_duty(0.5) == pytest.approx(0.1842, rel=1e-3)


def test_fade_is_linear_in_perceived_level() -> None:
    fade = Fade(LightState(0.2), LightState(0.6, (255, 0, 0)), 4.0)
    assert fade.level_at(-1.0) == pytest.approx(0.2)
    assert fade.level_at(1.0) == pytest.approx(0.3)
    assert fade.at(2.0).colour == pytest.approx((255, 127.5, 127.5))
    assert fade.level_at(4.0) == 0.6 and fade.done(4.0) and not fade.done(3.99)
    assert Fade(LightState(0.2), LightState(0.9), 0.0).level_at(0.0) == 0.9


def test_colour_sets_hue_and_level_sets_brightness() -> None:
    warm = channel_duties(LightState(1.0, (255, 140, 60)), "rgb")
    assert warm == pytest.approx((1.0, srgb_to_linear(140 / 255), srgb_to_linear(60 / 255)))
    # Same hue at half the components: same light (only proportions count).
    assert channel_duties(LightState(1.0, (127.5, 70, 30)), "rgb") == pytest.approx(warm)
    dim = channel_duties(LightState(0.5, (255, 140, 60)), "rgb")
    assert dim == pytest.approx(tuple(c * lightness_to_duty(0.5) for c in warm))
    # RGBW: the white emitter takes what the three share.
    assert channel_duties(LightState(1.0), "rgbw") == pytest.approx((0, 0, 0, 1.0))
    r, g, b, w = channel_duties(LightState(1.0, (255, 140, 60)), "rgbw")
    assert (r + w, g + w, b + w) == pytest.approx(warm)


def test_layout_is_one_three_or_four_channels() -> None:
    assert [layout_for(n) for n in (1, 3, 4)] == ["mono", "rgb", "rgbw"]
    with pytest.raises(ValueError, match="1, 3 \\(RGB\\) or 4 \\(RGBW\\) channels, got 2"):
        layout_for(2)
