"""The alarm engine: limits with condition delays, priorities, latching, ack, silence, escalation.

Semantics follow bedside monitors (IEC 60601-1-8 style): a condition must persist for its delay
before it alarms; a high-priority alarm latches until acknowledged even when the condition has
cleared; silence lasts at most 120 s; a new alarm sounds through a silence. The room is an
adjunct: the certified monitor's own alarms stay primary.

The engine decides through ``emit(type, data)`` (which journals an event and feeds it back to
``apply``); its alarm list is therefore rebuilt exactly by replaying the journal.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from controller.config import AlarmsSection
from controller.errors import InvalidPayload
from controller.models import (
    Alarm,
    AlarmAck,
    AlarmLimit,
    AlarmSilence,
    Event,
    NibpReading,
    Priority,
    VitalsSample,
)
from controller.ports import Clock

EmitFn = Callable[[str, dict[str, Any]], Event]

RANK: dict[str, int] = {"low": 1, "medium": 2, "high": 3}


@dataclass(frozen=True)
class LimitRule:
    """One physiological limit: which value, which side, and the words for it."""

    code: str
    value: Literal["spo2", "hr", "sys", "dia"]
    below: bool
    label: str


SAMPLE_RULES = (
    LimitRule("spo2_critical", "spo2", True, "SpO2"),
    LimitRule("spo2_low", "spo2", True, "SpO2"),
    LimitRule("hr_high", "hr", False, "Heart rate"),
    LimitRule("hr_low", "hr", True, "Heart rate"),
)
NIBP_RULES = (
    LimitRule("sys_high", "sys", False, "Systolic BP"),
    LimitRule("dia_high", "dia", False, "Diastolic BP"),
    LimitRule("sys_low", "sys", True, "Systolic BP"),
)


def crosses(rule: LimitRule, limit: AlarmLimit, value: float | None) -> bool:
    """Whether ``value`` is beyond ``limit`` on the rule's side (None never is)."""
    if value is None:
        return False
    return value < limit.limit if rule.below else value > limit.limit


class AlarmEngine:
    """Raises, escalates and clears alarms; owns the current alarm list."""

    def __init__(self, clock: Clock, limits: AlarmsSection, emit: EmitFn) -> None:
        self._clock = clock
        self.limits = limits
        self._configured = limits  # the room's [alarms]; a session's plan may override them
        self._emit = emit
        self.alarms: dict[str, Alarm] = {}  # by code: one alarm per condition at a time
        self.escalated: set[str] = set()
        self._onset: dict[str, float] = {}  # condition start, monotonic
        self._pending: dict[str, tuple[float | str | None, float | None, str, Priority]] = {}
        self._delays: dict[str, float] = {}  # each condition's delay, as last reported
        # Durations (escalation, silence) run on the monotonic clock so an NTP step of the
        # wall clock can neither stretch a silence nor postpone an escalation.
        self._raised_mono: dict[str, float] = {}
        self._silenced_mono: dict[str, float] = {}

    # --- rebuilding from the journal ------------------------------------------------

    def apply(self, event: Event) -> None:
        """Update the alarm list from one journal event."""
        if event.type in ("session_started", "session_ended"):
            plan = event.data.get("plan", {}).get("alarms") or {}
            given = {k: v for k, v in plan.items() if v is not None}
            self.limits = AlarmsSection.model_validate(self._configured.model_dump() | given)
        if not event.type.startswith("alarm_"):
            return
        alarm = Alarm.model_validate(event.data["alarm"])
        if event.type == "alarm_cleared":
            self.alarms.pop(alarm.code, None)
            self.escalated.discard(alarm.code)
            self._raised_mono.pop(alarm.code, None)
            self._silenced_mono.pop(alarm.code, None)
            return
        if event.type == "alarm_raised" and alarm.code not in self._raised_mono:
            self._raised_mono[alarm.code] = self._mono_at(alarm.raised_at)
        if event.type == "alarm_escalated":
            self.escalated.add(alarm.code)
        self.alarms[alarm.code] = alarm
        if event.type == "alarm_silenced" and alarm.silenced_until is not None:
            self._silenced_mono[alarm.code] = self._mono_at(alarm.silenced_until)

    # --- conditions -------------------------------------------------------------------

    def set_condition(
        self,
        code: str,
        present: bool,
        *,
        kind: Literal["physiological", "technical"],
        priority: Priority,
        message: str,
        value: float | str | None = None,
        limit: float | None = None,
        delay_s: float = 0.0,
    ) -> None:
        """Report whether a condition is present now; raise after its delay, clear when gone."""
        now = self._clock.monotonic()
        if not present:
            self._onset.pop(code, None)
            self._pending.pop(code, None)
            alarm = self.alarms.get(code)
            if alarm is None:
                return
            if alarm.state == "active" and alarm.priority == "high":
                self._transition("alarm_latched", alarm, "latched")
            elif alarm.state != "latched":
                self._emit("alarm_cleared", {"alarm": _dump(alarm)})
            return
        alarm = self.alarms.get(code)
        if alarm is not None:
            if alarm.state == "latched":  # the condition came back before anyone acknowledged
                self._transition("alarm_raised", alarm, "active")
            return
        self._onset.setdefault(code, now)
        self._pending[code] = (value, limit, message, priority)
        self._delays[code] = delay_s
        if now - self._onset[code] >= delay_s:
            self._raise(code, kind, priority, message, value, limit)

    def check_sample(self, sample: VitalsSample, rules: Iterable[LimitRule] = SAMPLE_RULES) -> None:
        """Evaluate the oximeter's limits against one sample."""
        spo2_critical = False
        for rule in rules:
            limit: AlarmLimit = getattr(self.limits, rule.code)
            value = getattr(sample, rule.value)
            present = crosses(rule, limit, value)
            if rule.code == "spo2_critical":
                spo2_critical = present
            if rule.code == "spo2_low" and spo2_critical:
                present = False  # the critical alarm says it louder; one alarm per fall
            self.set_condition(
                rule.code,
                present,
                kind="physiological",
                priority=limit.priority,
                message=_limit_message(rule, value, limit),
                value=value,
                limit=limit.limit,
                delay_s=limit.delay_s,
            )

    def check_nibp(self, reading: NibpReading) -> None:
        """Evaluate the blood-pressure limits against one reading (they hold until the next)."""
        for rule in NIBP_RULES:
            limit: AlarmLimit = getattr(self.limits, rule.code)
            value = getattr(reading, rule.value)
            self.set_condition(
                rule.code,
                crosses(rule, limit, value),
                kind="physiological",
                priority=limit.priority,
                message=_limit_message(rule, value, limit),
                value=value,
                limit=limit.limit,
                delay_s=0,
            )

    def raise_now(
        self,
        code: str,
        *,
        kind: Literal["physiological", "technical"],
        priority: Priority,
        message: str,
        value: float | str | None = None,
    ) -> None:
        """Raise an alarm at once (emergency, device lost), unless it is already raised."""
        if code not in self.alarms:
            self._raise(code, kind, priority, message, value, None)

    def clear(self, code: str) -> None:
        """Clear an alarm whatever its state (session ended, device back)."""
        self._onset.pop(code, None)
        self._pending.pop(code, None)
        alarm = self.alarms.get(code)
        if alarm is not None:
            self._emit("alarm_cleared", {"alarm": _dump(alarm)})

    def clear_all(self, kind: str | None = None) -> None:
        """Clear every alarm (of one kind)."""
        for alarm in list(self.alarms.values()):
            if kind is None or alarm.kind == kind:
                self.clear(alarm.code)

    # --- clinician actions ------------------------------------------------------------

    def acknowledge(self, alarm_id: str, by: str) -> Alarm | None:
        """Acknowledge one alarm; a latched one (condition gone) clears. None if unknown."""
        alarm = next((a for a in self.alarms.values() if a.id == alarm_id), None)
        if alarm is None:
            return None
        if alarm.state == "latched":
            self._emit("alarm_acknowledged", {"alarm": _dump(alarm), "by": by})
            self._emit("alarm_cleared", {"alarm": _dump(alarm)})
        elif alarm.state == "active":
            self._transition("alarm_acknowledged", alarm, "acknowledged", by=by)
        return alarm

    def silence(self, seconds: float, by: str) -> list[Alarm]:
        """Silence every sounding alarm for ``seconds`` (≤ 120); return those silenced."""
        until = self._clock.now() + timedelta(seconds=min(seconds, 120.0))
        silenced = []
        for alarm in list(self.alarms.values()):
            if alarm.state in ("active", "latched"):
                updated = alarm.model_copy(update={"silenced_until": until})
                self._emit("alarm_silenced", {"alarm": _dump(updated), "by": by})
                silenced.append(updated)
        return silenced

    # --- time -------------------------------------------------------------------------

    def ack_command(self, cmd: AlarmAck) -> dict[str, Any]:
        """``alarm_ack``: a clinician acknowledges one current alarm."""
        if self.acknowledge(cmd.alarm_id, cmd.by) is None:
            raise InvalidPayload(f"field 'alarm_id': no current alarm '{cmd.alarm_id}'")
        return {"alarm_id": cmd.alarm_id}

    def silence_command(self, cmd: AlarmSilence) -> dict[str, Any]:
        """``alarm_silence``: quiet the sounding alarms for up to 120 s."""
        silenced = self.silence(cmd.seconds, cmd.by)
        return {"silenced": [a.id for a in silenced], "seconds": cmd.seconds}

    def tick(self) -> None:
        """Raise conditions whose delay has run out; escalate unacknowledged alarms."""
        now = self._clock.monotonic()
        for code, onset in list(self._onset.items()):
            if code in self.alarms or code not in self._pending:
                continue
            limit = getattr(self.limits, code, None)
            delay = self._delays.get(code, 0.0)
            if now - onset >= delay:
                value, lim, message, priority = self._pending[code]
                kind: Literal["physiological", "technical"] = (
                    "physiological" if isinstance(limit, AlarmLimit) else "technical"
                )
                self._raise(code, kind, priority, message, value, lim)
        for alarm in list(self.alarms.values()):
            age = now - self._raised_mono.get(alarm.code, now)
            if (
                alarm.state == "active"
                and alarm.code not in self.escalated
                and age >= self.limits.escalate_after_s
            ):
                self._emit("alarm_escalated", {"alarm": _dump(alarm)})

    def next_deadline(self) -> float | None:
        """When ``tick`` may next have something to do (monotonic), if ever."""
        deadlines = []
        for code, onset in self._onset.items():
            limit = getattr(self.limits, code, None)
            if code not in self.alarms and isinstance(limit, AlarmLimit):
                deadlines.append(onset + limit.delay_s)
        for alarm in self.alarms.values():
            if alarm.state == "active" and alarm.code not in self.escalated:
                raised = self._raised_mono.get(alarm.code, self._clock.monotonic())
                deadlines.append(raised + self.limits.escalate_after_s)
        return min(deadlines, default=None)

    # --- views ------------------------------------------------------------------------

    def current(self) -> list[Alarm]:
        """Every active, latched or acknowledged alarm, oldest first."""
        return sorted(self.alarms.values(), key=lambda a: (a.raised_at, a.id))

    def sounding(self) -> Priority | None:
        """The highest priority that should sound now (not acknowledged, not silenced)."""
        now = self._clock.monotonic()
        best: Priority | None = None
        for alarm in self.alarms.values():
            if alarm.state == "acknowledged":
                continue
            if self._silenced_mono.get(alarm.code, float("-inf")) > now:
                continue
            if best is None or RANK[alarm.priority] > RANK[best]:
                best = alarm.priority
        return best

    # --- internals --------------------------------------------------------------------

    def _mono_at(self, ts: datetime) -> float:
        """The monotonic reading for UTC ``ts`` (exact for live events, derived on replay)."""
        return self._clock.monotonic() - (self._clock.now() - ts).total_seconds()

    def _raise(
        self,
        code: str,
        kind: Literal["physiological", "technical"],
        priority: Priority,
        message: str,
        value: float | str | None,
        limit: float | None,
    ) -> None:
        self._pending.pop(code, None)
        alarm = Alarm(
            id=f"{code}-{int(self._clock.now().timestamp() * 1000)}",
            code=code,
            kind=kind,
            priority=priority,
            state="active",
            raised_at=self._clock.now(),
            value=value,
            limit=limit,
            message=message,
        )
        self._emit("alarm_raised", {"alarm": _dump(alarm)})

    def _transition(self, type_: str, alarm: Alarm, state: str, by: str | None = None) -> None:
        updated = alarm.model_copy(update={"state": state})
        data: dict[str, Any] = {"alarm": _dump(updated)}
        if by is not None:
            data["by"] = by
        self._emit(type_, data)


def _limit_message(rule: LimitRule, value: float | None, limit: AlarmLimit) -> str:
    return f"{rule.label} {value} {'below' if rule.below else 'above'} {limit.limit:g}"


def _dump(alarm: Alarm) -> dict[str, Any]:
    return alarm.model_dump(mode="json")
