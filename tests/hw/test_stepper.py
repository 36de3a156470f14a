"""The shared step loop: waits as asked (never below the minimum), survives a failing step."""

from __future__ import annotations

import threading

from controller.clock import FakeClock
from hw.stepper import run_steps


def test_waits_as_the_step_asks_and_survives_a_failure() -> None:
    clock = FakeClock()
    answers: list[object] = [0.5, 0.0001, RuntimeError("pin gone"), None]
    waits: list[float | None] = []
    wake = threading.Event()

    def step(now: float) -> float | None:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer  # type: ignore[return-value]

    def waiter(event: threading.Event, timeout: float | None) -> None:
        assert event is wake
        waits.append(timeout)

    run_steps(
        step,
        clock=clock,
        wake=wake,
        waiter=waiter,
        closed=lambda: not answers,
        min_wait_s=0.01,
        what="test",
    )
    # 0.5 s as asked; a sliver raised to the minimum; 1 s after the failure.
    assert waits == [0.5, 0.01, 1.0]


def test_stops_without_stepping_once_closed() -> None:
    calls: list[float] = []
    run_steps(
        lambda now: calls.append(now) or None,  # type: ignore[func-returns-value]
        clock=FakeClock(),
        wake=threading.Event(),
        waiter=lambda e, t: None,
        closed=lambda: True,
        min_wait_s=0.01,
        what="test",
    )
    assert calls == []
