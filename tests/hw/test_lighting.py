"""The lights: perceptual fades on gpiozero mock PWM pins, kernel PWM in a temp dir, DMX frames
through a real pseudo-terminal. Time is a FakeClock; only bounded waits on threads."""

from __future__ import annotations

import itertools
import os
import select
import statistics
import threading
from pathlib import Path
from typing import Any

import pytest

from controller.clock import SystemClock
from controller.config import LightingSection
from controller.events import DeviceChanged
from hw.dmx import FRAME_SIZE, DmxOutput, enttec_frame, split_messages
from hw.lighting import (
    Fade,
    Lighting,
    LightState,
    PwmOutput,
    SysfsPwmOutput,
    channel_duties,
    duty_to_lightness,
    lightness_to_duty,
    make_lighting,
    srgb_to_linear,
)

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


def statuses(emitted: Any) -> list[str]:
    return [m.status for m in emitted.of(DeviceChanged) if m.device == "lighting"]


# --- the curve and the fade, pure ---------------------------------------------------------


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
    assert statuses(emitted) == ["ok"]


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
        pin.clear_states()
        lights.set_scene("emergency", 1.0, (255, 255, 255), 0)
        assert lights.step(room_clock.monotonic()) is None  # done in one step
        dim = lightness_to_duty(0.05 * 3 / 60)
        assert [s.state for s in pin.states] == [pytest.approx(dim, rel=0.01), 1.0]
    finally:
        lights.close()


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
    with pytest.raises(ValueError):
        make_lighting(LightingSection(driver="rgb", pins=[5, 6]), emitted, pin_factory=mock_pins)


# --- kernel PWM in a temp dir -----------------------------------------------------------


class FakeKernel:
    """A pwmchip directory whose ``export`` is a FIFO: writing N creates ``pwmN/``."""

    def __init__(self, root: Path) -> None:
        self.chip = root / "pwmchip0"
        self.chip.mkdir()
        (self.chip / "npwm").write_text("2\n")
        os.mkfifo(self.chip / "export")
        self.exported: list[int] = []
        self._stop_r, self._stop_w = os.pipe()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def channel(self, n: int, period: int = 0, duty: int = 0, enable: int = 0) -> Path:
        tmp = self.chip / f".pwm{n}"
        tmp.mkdir()
        for name, value in (("period", period), ("duty_cycle", duty), ("enable", enable)):
            (tmp / name).write_text(f"{value}\n")
        return tmp.rename(self.chip / f"pwm{n}")  # all attributes appear at once, as in sysfs

    def _serve(self) -> None:
        # Non-blocking open: a reader is there before any writer, and stop() can end it.
        fd = os.open(self.chip / "export", os.O_RDONLY | os.O_NONBLOCK)
        data = b""
        try:
            while True:
                ready, _, _ = select.select([fd, self._stop_r], [], [])
                if self._stop_r in ready:
                    return
                chunk = os.read(fd, 64)
                if not chunk:  # the writer closed: the export is complete
                    break
                data += chunk
        finally:
            os.close(fd)
        self.exported.append(int(data))
        self.channel(int(data))

    def stop(self) -> None:
        os.write(self._stop_w, b"x")
        self._thread.join(WAIT)
        os.close(self._stop_r)
        os.close(self._stop_w)


@pytest.fixture
def kernel(tmp_path: Path) -> Any:
    k = FakeKernel(tmp_path)
    yield k
    k.stop()


def read(path: Path) -> str:
    return path.read_text().strip()


def test_sysfs_pwm_exports_configures_and_writes(
    kernel: Any, room_clock: Any, emitted: Any
) -> None:
    section = LightingSection(driver="sysfs_pwm", pwm_chip=str(kernel.chip), channels=[0])
    lights = make_lighting(section, emitted, clock=room_clock, start=False)
    pwm0 = kernel.chip / "pwm0"
    assert kernel.exported == [0]
    assert (read(pwm0 / "period"), read(pwm0 / "enable")) == ("400000", "1")
    lights.set_scene("x", 0.5, None, 0)
    lights.step(room_clock.monotonic())
    assert read(pwm0 / "duty_cycle") == str(round(lightness_to_duty(0.5) * 400_000))
    lights.set_scene("y", 0.001, None, 0)
    lights.step(room_clock.monotonic())
    # 0.1 % lightness is 44 ns of a 400 µs period: hardware PWM still resolves it.
    assert read(pwm0 / "duty_cycle") == "44"
    lights.close()
    assert read(pwm0 / "enable") == "1"  # the room stays lit across a restart
    assert statuses(emitted) == ["ok"]


def test_sysfs_pwm_reads_back_and_fades_from_there(kernel: Any, room_clock: Any) -> None:
    # No export: the channel survives from a previous run.
    kernel.channel(0, period=1_000_000, duty=500_000, enable=1)
    out = SysfsPwmOutput(kernel.chip, [0])
    lights = Lighting(out, lambda _m: None, clock=room_clock, start=False)
    assert read(kernel.chip / "pwm0" / "period") == "400000"
    assert read(kernel.chip / "pwm0" / "duty_cycle") == "200000"  # same fraction, new period
    lights.set_scene("down", 0.0, None, 10.0)
    lights.step(room_clock.monotonic())
    # The fade starts where the light was (≈ 76 % lightness), not from black.
    assert int(read(kernel.chip / "pwm0" / "duty_cycle")) == pytest.approx(200_000, rel=0.001)


def test_sysfs_pwm_missing_chip_is_lost_not_raised(tmp_path: Path, emitted: Any) -> None:
    lights = Lighting(SysfsPwmOutput(tmp_path / "nochip", [0]), emitted, start=False)
    lights.set_scene("x", 1.0, None, 0)  # must not raise
    assert statuses(emitted) == ["lost"]


# --- DMX through a pseudo-terminal ------------------------------------------------------


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
        assert statuses(emitted) == ["ok"]  # the port opened
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
        assert statuses(emitted) == ["ok", "lost"]
        room_clock.advance(0.5)
        assert lights.step(room_clock.monotonic()) == pytest.approx(1.0)  # still gone: backoff x2
        room_clock.advance(0.4)
        assert lights.step(room_clock.monotonic()) == pytest.approx(0.6)  # not due yet
        assert statuses(emitted) == ["ok", "lost"]  # lost only once
        dmx_widget.replug()
        room_clock.advance(0.6)
        lights.step(room_clock.monotonic())
        assert statuses(emitted) == ["ok", "lost", "ok"]
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
    assert statuses(emitted) == ["absent"]
