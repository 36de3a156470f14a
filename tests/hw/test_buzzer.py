"""The buzzer's patterns on a gpiozero mock pin, stepped through fake time."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from controller.ports import Annunciation
from hw.buzzer import PATTERNS, Buzzer, Pattern, pulses

WAIT = 5.0


def trace(buzzer: Buzzer, clock: Any, horizon: float) -> list[tuple[float, bool]]:
    """Step the buzzer edge to edge for ``horizon`` fake seconds: (time from start, on)."""
    t0 = clock.monotonic()
    out: list[tuple[float, bool]] = []
    while clock.monotonic() - t0 < horizon:
        delay = buzzer.step(clock.monotonic())
        on = bool(buzzer.device.is_active)
        if not out or out[-1][1] != on:
            out.append((round(clock.monotonic() - t0, 6), on))
        if delay is None:
            break
        clock.advance(delay)
    return out


def pulse_count(edges: list[tuple[float, bool]], until: float) -> int:
    return sum(1 for t, on in edges if on and t < until)


def test_pattern_state_at() -> None:
    p = Pattern(((True, 0.2), (False, 0.3)))
    assert p.state_at(0.0) == (True, pytest.approx(0.2))
    assert p.state_at(0.25) == (False, pytest.approx(0.25))
    assert p.state_at(0.6) == (True, pytest.approx(0.1))  # repeats
    once = Pattern(((True, 1.0),), repeat=False)
    assert once.state_at(0.5) == (True, 0.5)
    assert once.state_at(7.0) == (True, None)  # holds its last state for good
    assert pulses(3, 0.1, 0.2) == (
        (True, 0.1),
        (False, 0.2),
        (True, 0.1),
        (False, 0.2),
        (True, 0.1),
    )


@pytest.fixture
def buzzer(mock_pins: Any, room_clock: Any, closer: Any) -> Buzzer:
    return closer(Buzzer(22, pin_factory=mock_pins, clock=room_clock, start=False))


def test_high_priority_is_the_ten_pulse_burst(buzzer: Buzzer, room_clock: Any) -> None:
    buzzer.annunciate("high")
    edges = trace(buzzer, room_clock, 12.0)
    period = PATTERNS["high"].period
    assert pulse_count(edges, period) == 10
    onsets = [t for t, on in edges if on and t < period]
    gaps = [round(b - a, 3) for a, b in itertools.pairwise(onsets)]
    # 3 pulses, a longer gap, 2 pulses; a pause; the same again — then silence and repeat.
    assert gaps == [0.25, 0.25, 0.5, 0.25, 1.15, 0.25, 0.25, 0.5, 0.25]
    widths = [t2 - t1 for (t1, on), (t2, _) in itertools.pairwise(edges) if on]
    assert widths == pytest.approx([0.15] * len(widths))
    assert onsets[0] == 0.0 and (period, True) in edges  # it starts again after the pause


def test_each_priority_sounds_different(buzzer: Buzzer, room_clock: Any) -> None:
    seen = {}
    names: tuple[Annunciation, ...] = ("high", "medium", "low", "call", "failure")
    for name in names:
        buzzer.annunciate(name)
        seen[name] = trace(buzzer, room_clock, 20.0)
        buzzer.annunciate("off")
        buzzer.step(room_clock.monotonic())
    first_cycle = {name: pulse_count(edges, 4.0) for name, edges in seen.items()}
    assert first_cycle == {"high": 10, "medium": 3, "low": 1, "call": 2, "failure": 1}
    assert len({tuple(edges) for edges in seen.values()}) == 5
    # Urgency shows in the repeat rate as well: high > medium > low.
    per_20s = {name: pulse_count(edges, 20.0) for name, edges in seen.items()}
    assert per_20s["high"] > per_20s["medium"] > per_20s["low"] >= 1
    assert seen["failure"] == [(0.0, True)]  # continuous: on, and no further change


def test_off_stops_and_repeating_a_pattern_keeps_its_rhythm(
    buzzer: Buzzer, room_clock: Any, mock_pins: Any
) -> None:
    pin = mock_pins.pin(22)
    buzzer.annunciate("medium")
    assert buzzer.step(room_clock.monotonic()) == pytest.approx(0.2)
    assert pin.state == 1
    room_clock.advance(0.1)
    buzzer.annunciate("medium")  # the core repeating itself must not restart the burst
    assert buzzer.step(room_clock.monotonic()) == pytest.approx(0.1)
    buzzer.annunciate("off")
    assert buzzer.step(room_clock.monotonic()) is None
    assert pin.state == 0


def test_the_thread_plays_the_pattern(
    mock_pins: Any, room_clock: Any, autojump: Any, closer: Any
) -> None:
    autojump.until = room_clock.monotonic() + 30.0
    buzzer = closer(Buzzer(22, pin_factory=mock_pins, clock=room_clock, waiter=autojump))
    buzzer.annunciate("medium")
    assert autojump.exhausted.wait(WAIT)  # 30 fake seconds played
    medium = PATTERNS["medium"]
    expected = sum(1 for k in range(100) if k * medium.period < 30.0) * 3
    assert sum(1 for s in mock_pins.pin(22).states if s.state) == expected
    buzzer.annunciate("off")
    buzzer.close()
    assert not mock_pins.pin(22).state
