"""The clocks: a fake one that moves when told, the system's, optionally scaled and anchored."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from controller.clock import FakeClock, SystemClock

# --- FakeClock ------------------------------------------------------------------------------


def test_fake_clock_starts_where_told() -> None:
    start = datetime(2030, 6, 1, 12, 0, tzinfo=UTC)
    clock = FakeClock(start, monotonic=5.0)
    assert clock.now() == start
    assert clock.monotonic() == 5.0


def test_fake_clock_default_is_aware_utc() -> None:
    clock = FakeClock()
    assert clock.now().tzinfo is not None
    assert clock.now().utcoffset() == timedelta(0)


def test_fake_clock_stands_still_until_advanced() -> None:
    clock = FakeClock()
    now, mono = clock.now(), clock.monotonic()
    assert (clock.now(), clock.monotonic()) == (now, mono)
    clock.advance(2.5)
    assert clock.monotonic() == pytest.approx(mono + 2.5)
    assert clock.now() == now + timedelta(seconds=2.5)
    clock.advance(0)
    assert clock.monotonic() == pytest.approx(mono + 2.5)


def test_fake_clock_refuses_to_go_back() -> None:
    clock = FakeClock()
    mono = clock.monotonic()
    with pytest.raises(ValueError):
        clock.advance(-1)
    assert clock.monotonic() == mono


@pytest.mark.parametrize("step", [-3600.0, 90.0])
def test_fake_clock_step_wall_moves_only_the_wall_clock(step: float) -> None:
    clock = FakeClock()
    now, mono = clock.now(), clock.monotonic()
    clock.step_wall(step)
    assert clock.now() == now + timedelta(seconds=step)
    assert clock.monotonic() == mono


def test_fake_clock_real_seconds_is_identity() -> None:
    assert FakeClock().real_seconds(42.5) == 42.5


# --- SystemClock ----------------------------------------------------------------------------


def test_system_clock_unscaled_follows_real_time() -> None:
    clock = SystemClock()
    before = datetime.now(UTC)
    now = clock.now()
    after = datetime.now(UTC)
    assert before <= now <= after
    a = time.monotonic()
    m = clock.monotonic()
    b = time.monotonic()
    assert a <= m <= b
    assert clock.real_seconds(7.0) == 7.0


def test_system_clock_scaled_monotonic_runs_faster() -> None:
    scale = 50.0
    clock = SystemClock(scale)
    a = time.monotonic()
    m0 = clock.monotonic()
    b = time.monotonic()
    time.sleep(0.05)  # a short real interval (allowed here; the only real wait in this module)
    c = time.monotonic()
    m1 = clock.monotonic()
    d = time.monotonic()
    # The real time between the two readings lies in [c - b, d - a].
    assert scale * (c - b) <= m1 - m0 <= scale * (d - a)
    assert m1 - m0 >= scale * 0.05 * 0.99


def test_system_clock_scaled_now_is_anchored() -> None:
    scale = 60.0
    real0 = datetime.now(UTC) - timedelta(seconds=10)
    scaled0 = datetime(2030, 1, 1, 8, 0, tzinfo=UTC)
    clock = SystemClock(scale, anchor=(real0, scaled0))
    before = datetime.now(UTC)
    now = clock.now()
    after = datetime.now(UTC)
    assert scaled0 + (before - real0) * scale <= now <= scaled0 + (after - real0) * scale
    # About ten real seconds after the anchor: ten scaled minutes after it.
    assert abs((now - scaled0) - timedelta(minutes=10)) < timedelta(seconds=30)
    assert clock.anchor == (real0, scaled0)


def test_system_clock_scaled_without_anchor_starts_at_real_now() -> None:
    before = datetime.now(UTC)
    clock = SystemClock(100.0)
    real0, scaled0 = clock.anchor
    assert real0 == scaled0
    assert before <= real0
    now = clock.now()
    assert now >= real0
    # It runs scaled from that anchor.
    after = datetime.now(UTC)
    assert now <= scaled0 + (after - real0) * 100.0


def test_system_clock_scaled_now_is_monotone_across_readings() -> None:
    clock = SystemClock(60.0)
    readings = [clock.now() for _ in range(50)]
    assert readings == sorted(readings)


@pytest.mark.parametrize(("scale", "session_s", "real_s"), [(60.0, 60.0, 1.0), (2.0, 5.0, 2.5)])
def test_system_clock_real_seconds(scale: float, session_s: float, real_s: float) -> None:
    assert SystemClock(scale).real_seconds(session_s) == pytest.approx(real_s)


@pytest.mark.parametrize("scale", [0.0, -1.0, -60.0])
def test_system_clock_invalid_scale_raises(scale: float) -> None:
    with pytest.raises(ValueError):
        SystemClock(scale)
