"""Named deadlines: set by duration or UTC time, fired on monotonic time."""

from __future__ import annotations

from datetime import timedelta

import pytest

from controller.clock import FakeClock
from controller.timers import Timers


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def timers(clock: FakeClock) -> Timers:
    return Timers(clock)


def drain(timers: Timers) -> list[str]:
    fired = []
    while (name := timers.pop_next_due()) is not None:
        fired.append(name)
    return fired


def test_empty(timers: Timers) -> None:
    assert timers.pop_next_due() is None
    assert timers.next_deadline() is None
    assert timers.remaining("x") is None
    assert timers.due_at("x") is None
    assert not timers.pending("x")


def test_set_in_returns_the_due_time(timers: Timers, clock: FakeClock) -> None:
    due = timers.set_in("nibp", 600)
    assert due == clock.now() + timedelta(seconds=600)
    assert timers.pending("nibp")
    assert timers.remaining("nibp") == pytest.approx(600)
    assert timers.due_at("nibp") == due
    assert timers.next_deadline() == pytest.approx(clock.monotonic() + 600)


def test_pop_next_due_fires_in_deadline_order(timers: Timers, clock: FakeClock) -> None:
    timers.set_in("a", 10)
    timers.set_in("b", 5)
    timers.set_in("c", 20)
    clock.advance(4.9)
    assert timers.pop_next_due() is None
    clock.advance(0.1)
    assert drain(timers) == ["b"]
    clock.advance(5)
    assert drain(timers) == ["a"]
    assert timers.remaining("c") == pytest.approx(10)
    clock.advance(100)
    assert drain(timers) == ["c"]
    assert timers.next_deadline() is None


def test_several_due_at_once_come_out_earliest_first(timers: Timers, clock: FakeClock) -> None:
    timers.set_in("late", 30)
    timers.set_in("early", 10)
    timers.set_in("middle", 20)
    clock.advance(60)
    assert drain(timers) == ["early", "middle", "late"]


def test_set_again_replaces_the_deadline(timers: Timers, clock: FakeClock) -> None:
    timers.set_in("x", 10)
    timers.set_in("x", 50)
    clock.advance(10)
    assert timers.pop_next_due() is None
    assert timers.remaining("x") == pytest.approx(40)


def test_set_at_fires_at_that_time(timers: Timers, clock: FakeClock) -> None:
    due = clock.now() + timedelta(minutes=10)
    timers.set_at("nibp", due)
    assert timers.due_at("nibp") == due
    clock.advance(599)
    assert timers.pop_next_due() is None
    clock.advance(1)
    assert timers.pop_next_due() == "nibp"


def test_set_at_a_past_time_fires_at_once(timers: Timers, clock: FakeClock) -> None:
    timers.set_at("overdue", clock.now() - timedelta(minutes=3))
    assert timers.remaining("overdue") == pytest.approx(-180)
    assert timers.pop_next_due() == "overdue"
    assert not timers.pending("overdue")


def test_cancel(timers: Timers, clock: FakeClock) -> None:
    timers.set_in("a", 1)
    timers.set_in("b", 2)
    timers.set_in("c", 3)
    timers.cancel("a", "c", "never-set")
    assert not timers.pending("a")
    assert timers.pending("b")
    assert timers.remaining("c") is None
    clock.advance(10)
    assert drain(timers) == ["b"]


def test_clear(timers: Timers, clock: FakeClock) -> None:
    timers.set_in("a", 1)
    timers.set_in("b", 2)
    timers.clear()
    clock.advance(10)
    assert timers.pop_next_due() is None
    assert timers.next_deadline() is None


def test_remaining_counts_down(timers: Timers, clock: FakeClock) -> None:
    timers.set_in("x", 90)
    clock.advance(30)
    assert timers.remaining("x") == pytest.approx(60)
    assert timers.due_at("x") == clock.now() + timedelta(seconds=60)


@pytest.mark.parametrize("step", [3600.0, -3600.0, 86400.0 * 365])
def test_wall_clock_step_does_not_move_a_pending_timer(
    timers: Timers, clock: FakeClock, step: float
) -> None:
    timers.set_in("infusion_end", 2400)
    timers.set_at("nibp", clock.now() + timedelta(seconds=600))
    clock.step_wall(step)
    assert timers.remaining("infusion_end") == pytest.approx(2400)
    assert timers.remaining("nibp") == pytest.approx(600)
    # due_at reads the (stepped) wall clock: the firing stays the same distance away.
    assert timers.due_at("nibp") == clock.now() + timedelta(seconds=600)
    clock.advance(599)
    assert timers.pop_next_due() is None
    clock.advance(1)
    assert drain(timers) == ["nibp"]
    clock.advance(1800)
    assert drain(timers) == ["infusion_end"]


def test_set_at_after_a_wall_step_uses_the_new_wall_time(timers: Timers, clock: FakeClock) -> None:
    before = clock.now()
    clock.step_wall(-120)
    # A UTC time that is still in the future on the stepped clock: 120 s + 60 s away.
    timers.set_at("x", before + timedelta(seconds=60))
    assert timers.remaining("x") == pytest.approx(180)
    # And one now in the past fires at once.
    timers.set_at("y", clock.now() - timedelta(seconds=1))
    assert timers.pop_next_due() == "y"
