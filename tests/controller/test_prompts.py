"""Repeating prompts: the event says when the next is due; a missed one raises its alarm."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from controller.models import iso_utc, parse_utc
from controller.monitoring import MANUAL_VITALS
from controller.prompts import Prompt, give_prompt
from controller.session import CHECKIN
from tests.controller.bench import Bench


@pytest.fixture
def b(tmp_path: Path) -> Iterator[Bench]:
    bench = Bench(tmp_path)
    yield bench
    bench.journal.close()


def give(b: Bench, prompt: Prompt, *, answered: bool) -> None:
    give_prompt(
        prompt, answered=answered, every_minutes=5, clock=b.clock, log=b.log, alarms=b.alarms
    )


@pytest.mark.parametrize("prompt", [CHECKIN, MANUAL_VITALS], ids=lambda p: p.event)
@pytest.mark.parametrize("answered", [True, False], ids=["answered", "missed"])
def test_a_missed_prompt_and_only_it_raises_its_medium_technical_alarm(
    b: Bench, prompt: Prompt, answered: bool
) -> None:
    b.start_session()
    give(b, prompt, answered=answered)
    (data,) = b.events(prompt.event)
    assert data["escalated"] is not answered
    alarms = [(a.code, a.kind, a.priority, a.message) for a in b.alarms.current()]
    expected = (prompt.alarm, "technical", "medium", prompt.message)
    assert alarms == ([] if answered else [expected])


def test_the_next_due_time_is_the_interval_from_now(b: Bench) -> None:
    b.start_session()
    b.clock.advance(90)
    give_prompt(
        CHECKIN, answered=True, every_minutes=7.5, clock=b.clock, log=b.log, alarms=b.alarms
    )
    (data,) = b.events("checkin_due")
    assert (parse_utc(data["next_due_at"]) - b.clock.now()).total_seconds() == 450
    assert data["next_due_at"] == iso_utc(parse_utc(data["next_due_at"]))
