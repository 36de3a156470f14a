"""Repeating prompts to the clinicians (a check-in, vitals by hand) that escalate when missed.

A prompt is an event saying what is due and when the next one is; when the previous prompt of
the same kind went unanswered, the room also raises that prompt's medium technical alarm. The
alarm is cleared by the part that records the answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from controller.alarms import AlarmEngine
from controller.eventlog import EventLog
from controller.models import iso_utc
from controller.ports import Clock


@dataclass(frozen=True)
class Prompt:
    """One kind of repeating prompt: its event, and the alarm raised when one is missed."""

    event: str
    alarm: str
    message: str


def give_prompt(
    prompt: Prompt,
    *,
    answered: bool,
    every_minutes: float,
    clock: Clock,
    log: EventLog,
    alarms: AlarmEngine,
) -> None:
    """Journal ``prompt`` (due again in ``every_minutes``); raise its alarm when the last one
    was not ``answered``."""
    next_due = clock.now() + timedelta(minutes=every_minutes)
    log.emit(prompt.event, {"escalated": not answered, "next_due_at": iso_utc(next_due)})
    if not answered:
        alarms.raise_now(prompt.alarm, kind="technical", priority="medium", message=prompt.message)
