"""The fader: perceptual fades on gpiozero mock PWM pins, stepped on a FakeClock or on its
own thread (bounded waits only)."""

from __future__ import annotations

import itertools
import statistics
from typing import Any

import pytest

from controller.clock import SystemClock
from hw.lighting.curve import duty_to_lightness, lightness_to_duty
from hw.lighting.fader import LEVEL_STEP, Lighting, step_interval
from hw.lighting.pwm import PwmOutput

WAIT = 5.0


def pwm_lights(mock_pins: Any, clock: Any, emit: Any, **kw: Any) -> Lighting:
    return Lighting(PwmOutput([18], pin_factory=mock_pins), emit, clock=clock, **kw)


def run_fade(lights: Lighting, clock: Any, horizon: float) -> list[tuple[float, float]]:
    """Step a manual Lighting at its own pace for ``horizon`` fake seconds: (t, duty) pairs."""
    out = []
    end = clock.monotonic() + horizon
    while clock.monotonic() <= end:
        delay = lights.step(clock.monotonic())
        out.append((clock.monotonic(), lights.output.read_back()[0]))  # type: ignore[index]
        if delay is None:
            break
        clock.advance(max(delay, lights.period))
    return out


# --- fades on gpiozero PWM pins ---------------------------------------------------------


def test_fade_pin_history_monotonic_100_steps_per_s_and_perceptual(
    mock_pins: Any, room_clock: Any, autojump: Any, emitted: Any, closer: Any
) -> None:
    lights = closer(pwm_lights(mock_pins, room_clock, emitted, waiter=autojump))
    pin = mock_pins.pin(18)
    assert lights.wait_settled(WAIT)  # the start-up write of the read-back (dark) state
    start = room_clock.monotonic()
    lights.set_scene("discharge", 1.0, None, 2.0)
    assert lights.wait_settled(WAIT)
    assert room_clock.monotonic() - start == pytest.approx(2.0, abs=0.02)
    values = [s.state for s in pin.states]
    assert values[0] == 0.0 and values[-1] == pytest.approx(1.0)
    steps = len(values) - 1
    # Fake time: the fader asked for a 10 ms tick for the whole fade → 100 steps/s.
    ticks = [t for t in autojump.timeouts if t is not None]
    assert ticks and max(ticks) == pytest.approx(0.01)
    assert steps / 2.0 >= 95
    assert all(b > a for a, b in itertools.pairwise(values))  # strictly brighter
    deltas = [b - a for a, b in itertools.pairwise(values)]
    # Perceptual: the dim end moves in far finer duty steps than the bright end.
    assert max(deltas[:10]) < min(deltas[-11:-1]) / 20  # (the very last step is a remainder)
    assert deltas[0] < lightness_to_duty(0.01) / 2  # a linear ramp's first step would be 0.005
    assert emitted.statuses("lighting") == ["ok"]


def test_low_levels_follow_the_cie_curve(mock_pins: Any, room_clock: Any, emitted: Any) -> None:
    lights = pwm_lights(mock_pins, room_clock, emitted, start=False)
    try:
        lights.set_scene("dark", 0.0, None, 0)
        run_fade(lights, room_clock, 1.0)
        lights.set_scene("infusion", 0.1, None, 1.0)
        history = run_fade(lights, room_clock, 2.0)
        t0 = history[0][0]
        for t, duty in history:
            level = min(1.0, (t - t0) / 1.0) * 0.1
            assert duty == pytest.approx(lightness_to_duty(level), abs=1e-12)
        assert len(history) >= 100  # 1 s at ≥ 100 steps/s, then the settled step
        assert history[-1][1] == pytest.approx(0.01126, rel=0.001)  # not 0.1: CIE at 10 %
    finally:
        lights.close()


def test_new_fade_continues_from_the_current_level(
    mock_pins: Any, room_clock: Any, emitted: Any
) -> None:
    lights = pwm_lights(mock_pins, room_clock, emitted, start=False)
    try:
        lights.set_scene("up", 1.0, None, 10.0)
        before = run_fade(lights, room_clock, 4.0)
        last_duty = before[-1][1]
        assert duty_to_lightness(last_duty) == pytest.approx(0.4, abs=0.011)
        lights.set_scene("down", 0.0, None, 4.0)  # interrupts at ≈ 40 %
        after = run_fade(lights, room_clock, 5.0)
        step_up = before[-1][1] - before[-2][1]
        assert abs(after[0][1] - last_duty) <= 2 * step_up  # no jump at the hand-over
        duties = [d for _, d in after]
        assert all(b < a for a, b in itertools.pairwise(duties))
        assert duties[-1] == 0.0
        assert after[-1][0] - after[0][0] == pytest.approx(4.0, abs=0.011)
    finally:
        lights.close()


def test_fade_zero_is_immediate_even_mid_fade(
    mock_pins: Any, room_clock: Any, emitted: Any
) -> None:
    lights = pwm_lights(mock_pins, room_clock, emitted, start=False)
    pin = mock_pins.pin(18)
    try:
        lights.set_scene("infusion", 0.05, None, 60.0)
        run_fade(lights, room_clock, 3.0)
        dim = pin.state
        # Written within one visible step of where the fade is after 3 s.
        assert lightness_to_duty(0.05 * 3 / 60 - LEVEL_STEP) <= dim <= lightness_to_duty(0.0025)
        pin.clear_states()
        lights.set_scene("emergency", 1.0, (255, 255, 255), 0)
        assert lights.step(room_clock.monotonic()) is None  # done in one step
        assert [s.state for s in pin.states] == [dim, 1.0]
    finally:
        lights.close()


def test_a_slow_fade_is_written_once_per_visible_step_and_ends_on_time(
    mock_pins: Any, room_clock: Any, autojump: Any, emitted: Any, closer: Any
) -> None:
    lights = closer(pwm_lights(mock_pins, room_clock, emitted, waiter=autojump))
    pin = mock_pins.pin(18)
    assert lights.wait_settled(WAIT)
    lights.set_scene("pre_infusion", 0.3, None, 0)
    assert lights.wait_settled(WAIT)
    pin.clear_states()
    autojump.timeouts.clear()
    start = room_clock.monotonic()
    lights.set_scene("infusion", 0.05, None, 60.0)  # the default infusion dimming
    assert lights.wait_settled(WAIT)
    assert room_clock.monotonic() - start == pytest.approx(60.0, abs=0.01)
    levels = [duty_to_lightness(s.state) for s in pin.states]
    assert levels[0] == pytest.approx(0.3) and levels[-1] == pytest.approx(0.05)
    # 0.25 of level in steps of LEVEL_STEP: ~250 writes in a minute, not 6000 at 100 Hz.
    assert 240 <= len(levels) - 1 <= 260
    assert all(0 < a - b <= LEVEL_STEP * 1.01 for a, b in itertools.pairwise(levels))
    ticks = [t for t in autojump.timeouts if t is not None]
    assert max(ticks) == pytest.approx(0.24) and min(ticks) >= lights.period


def test_nothing_fading_the_thread_sleeps_until_a_new_scene(
    mock_pins: Any, room_clock: Any, autojump: Any, emitted: Any, closer: Any
) -> None:
    lights = closer(pwm_lights(mock_pins, room_clock, emitted, waiter=autojump))
    assert lights.wait_settled(WAIT)
    lights.set_scene("idle", 0.3, None, 5.0)
    assert lights.wait_settled(WAIT)
    settled_at = room_clock.monotonic()
    autojump.timeouts.clear()
    pin = mock_pins.pin(18)
    pin.clear_states()
    # Settled: only untimed waits (woken by nothing) and no fake time passes, nothing written.
    assert autojump.exhausted.wait(0.2) is False
    assert set(autojump.timeouts) <= {None}
    assert room_clock.monotonic() == settled_at and len(pin.states) == 1
    lights.set_scene("check_in", 0.5, None, 0)  # the wake-up: written at once
    assert lights.wait_settled(WAIT)
    assert pin.state == pytest.approx(lightness_to_duty(0.5))
    assert room_clock.monotonic() == settled_at


def test_step_interval_follows_the_fastest_moving_part() -> None:
    from hw.lighting.curve import Fade, LightState

    dim = Fade(LightState(0.3), LightState(0.05), 60.0)
    assert step_interval(dim) == pytest.approx(LEVEL_STEP * 60 / 0.25)
    hue = Fade(LightState(0.3, (255, 0, 0)), LightState(0.3, (0, 0, 0)), 10.0)
    assert step_interval(hue) == pytest.approx(LEVEL_STEP * 10)
    assert step_interval(Fade(LightState(0.3), LightState(0.3), 8.0)) == 8.0
    assert step_interval(Fade(LightState(0.3), LightState(0.9), 0.0)) == 0.0


def test_emergency_reaches_full_at_once_on_the_real_thread(
    mock_pins: Any, emitted: Any, closer: Any
) -> None:
    lights = closer(pwm_lights(mock_pins, SystemClock(), emitted))
    pin = mock_pins.pin(18)
    lights.set_scene("infusion", 0.05, None, 600.0)  # a slow fade is running
    pin.clear_states()
    lights.set_scene("emergency", 1.0, (255, 255, 255), 0)
    assert lights.wait_settled(WAIT)
    values = [s.state for s in pin.states]
    assert values[-1] == 1.0
    assert all(v < 0.01 for v in values[:-1])  # nothing between dim and full


def test_real_time_fade_step_rate(mock_pins: Any, emitted: Any, closer: Any) -> None:
    lights = closer(pwm_lights(mock_pins, SystemClock(), emitted))
    pin = mock_pins.pin(18)
    assert lights.wait_settled(WAIT)
    pin.clear_states()
    lights.set_scene("x", 1.0, None, 0.5)
    assert lights.wait_settled(WAIT)
    gaps = [s.timestamp for s in pin.states[2:]]  # time since the previous change
    rate = 1.0 / statistics.median(gaps)
    print(f"real-time fade: {len(gaps) + 1} steps in 0.5 s, median rate {rate:.0f} steps/s")
    # Median, not mean: a loaded 2-core CI machine may stall the thread now and then.
    assert rate >= 50
    assert len(pin.states) >= 25
