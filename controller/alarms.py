"""The alarm engine: limits with condition delays, priorities, latching, ack, silence, escalation.

Semantics follow bedside monitors (IEC 60601-1-8 style) and the specification in
docs/alarms-guide.md: a condition must persist for its delay before it alarms; a high-priority
alarm latches until acknowledged even when the condition has cleared; an acknowledged alarm
that gets worse sounds again; a silence quiets sound for at most 120 s (and a capped total),
never escalation; a new alarm sounds through a silence. The room is an adjunct: the certified
monitor's own alarms stay primary.

The engine decides through ``emit(type, data)`` (which journals an event and feeds it back to
``apply``); its alarm list and the limits in force are therefore rebuilt exactly by replaying
the journal.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

from controller.clock import mono_at
from controller.config import AlarmsSection
from controller.errors import InvalidPayload
from controller.models import (
    Alarm,
    AlarmAck,
    AlarmLimit,
    AlarmOverrides,
    AlarmSilence,
    Event,
    NibpReading,
    Priority,
    VitalsSample,
)
from controller.ports import Clock

EmitFn = Callable[[str, dict[str, Any]], Event]
Kind = Literal["physiological", "technical"]

RANK: dict[str, int] = {"low": 1, "medium": 2, "high": 3}
SILENCE_MAX_S = 120.0
"""One silence lasts at most this long (IEC 60601-1-8's audio-paused bound for our use)."""
SESSION_TECHNICAL = (
    "vitals_stale",
    "nibp_overdue",
    "nibp_failed",
    "sensor_off",
    "checkin_missed",
    "manual_vitals_overdue",
)
"""Technical alarms about the patient's monitoring: they end with the session."""


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
RULES: dict[str, LimitRule] = {r.code: r for r in (*SAMPLE_RULES, *NIBP_RULES)}
"""Every physiological limit by its alarm code."""


def crosses(rule: LimitRule, limit: AlarmLimit, value: float | None) -> bool:
    """Whether ``value`` is beyond ``limit`` on the rule's side (None never is)."""
    if value is None:
        return False
    return value < limit.limit if rule.below else value > limit.limit


def worse_by(rule: LimitRule, value: float, than: float, step: float) -> bool:
    """Whether ``value`` is at least ``step`` further beyond the limit's side than ``than``."""
    return value <= than - step if rule.below else value >= than + step


@dataclass
class _Pending:
    """A condition that holds while its delay runs."""

    onset: float  # monotonic
    delay_s: float
    kind: Kind
    priority: Priority
    message: str
    value: float | str | None
    limit: float | None


class AlarmEngine:
    """Raises, re-activates, escalates and clears alarms; owns the alarm list and limits."""

    def __init__(self, clock: Clock, limits: AlarmsSection, emit: EmitFn) -> None:
        self._clock = clock
        self._config_limits = limits
        self.limits = limits  # in force: the config's, or the session plan's over them
        self.sources: dict[str, str] = {}  # limit name -> "plan" where the plan set it
        self._emit = emit
        self.alarms: dict[str, Alarm] = {}  # by code: one alarm per condition at a time
        self.escalated: set[str] = set()
        self._pending: dict[str, _Pending] = {}
        self._latest: dict[str, float | str | None] = {}  # the condition's latest value
        # Durations (escalation, silence) run on the monotonic clock so an NTP step of the
        # wall clock can neither stretch a silence nor postpone an escalation.
        self._raised_mono: dict[str, float] = {}
        self._silenced_mono: dict[str, float] = {}

    # --- rebuilding from the journal ------------------------------------------------

    def apply(self, event: Event) -> None:
        """Update the limits in force and the alarm list from one journal event."""
        if event.type == "session_started":
            plan_alarms = AlarmOverrides.model_validate(event.data["plan"].get("alarms", {}))
            overrides = plan_alarms.model_dump(exclude_none=True)
            self.limits = self._config_limits.model_copy(
                update={k: getattr(plan_alarms, k) for k in overrides}
            )
            self.sources = dict.fromkeys(overrides, "plan")
            return
        if event.type == "session_ended":
            # Conditions end with the session: nothing pending may be raised after it.
            self.limits, self.sources = self._config_limits, {}
            self._pending.clear()
            return
        if not event.type.startswith("alarm_"):
            return
        alarm = Alarm.model_validate(event.data["alarm"])
        code = alarm.code
        if event.type == "alarm_cleared":
            self.alarms.pop(code, None)
            self.escalated.discard(code)
            self._raised_mono.pop(code, None)
            self._silenced_mono.pop(code, None)
            return
        if event.type == "alarm_raised" and code not in self._raised_mono:
            self._raised_mono[code] = mono_at(self._clock, alarm.raised_at)
        if event.type == "alarm_reactivated":
            # Sounding again: it escalates again if nobody answers, and no silence holds it.
            self._raised_mono[code] = mono_at(self._clock, event.ts)
            self.escalated.discard(code)
            self._silenced_mono.pop(code, None)
        if event.type == "alarm_escalated":
            self.escalated.add(code)
        self.alarms[code] = alarm
        if event.type == "alarm_silenced" and alarm.silenced_until is not None:
            self._silenced_mono[code] = mono_at(self._clock, alarm.silenced_until)

    def limits_in_force(self) -> dict[str, dict[str, Any]]:
        """Each physiological limit in force and where it came from (``config`` or ``plan``)."""
        out: dict[str, dict[str, Any]] = {}
        for code in RULES:
            limit: AlarmLimit = getattr(self.limits, code)
            out[code] = {**limit.model_dump(), "source": self.sources.get(code, "config")}
        for name in ("stale_s", "escalate_after_s"):
            value = getattr(self.limits, name)
            out[name] = {"value": value, "source": self.sources.get(name, "config")}
        return out

    # --- conditions -------------------------------------------------------------------

    def set_condition(
        self,
        code: str,
        present: bool,
        *,
        kind: Kind,
        priority: Priority,
        message: str,
        value: float | str | None = None,
        limit: float | None = None,
        delay_s: float = 0.0,
    ) -> None:
        """Report whether a condition is present now; raise after its delay, clear when gone."""
        if not present:
            self._pending.pop(code, None)
            self._latest.pop(code, None)
            alarm = self.alarms.get(code)
            if alarm is None:
                return
            if alarm.state == "active" and alarm.priority == "high":
                self._transition("alarm_latched", alarm, state="latched")
            elif alarm.state != "latched":
                self._emit("alarm_cleared", {"alarm": _dump(alarm)})
            return
        self._latest[code] = value
        alarm = self.alarms.get(code)
        if alarm is not None:
            if alarm.state == "latched":  # the condition came back before anyone acknowledged
                self._transition("alarm_raised", alarm, state="active")
            elif alarm.state == "acknowledged" and self._worsened(alarm, value):
                self._transition(
                    "alarm_reactivated",
                    alarm,
                    state="active",
                    value=float(value) if isinstance(value, int | float) else value,
                    message=message,
                    silenced_until=None,
                )
            return
        pending = self._pending.get(code)
        now = self._clock.monotonic()
        onset = pending.onset if pending is not None else now
        self._pending[code] = _Pending(onset, delay_s, kind, priority, message, value, limit)
        if now - onset >= delay_s:
            self._raise(code)

    def _worsened(self, alarm: Alarm, value: float | str | None) -> bool:
        rule = RULES.get(alarm.code)
        if rule is None or not isinstance(value, int | float):
            return False
        than = alarm.value_at_ack
        if than is None:
            return False
        step: float = getattr(self.limits.reactivate_step, alarm.code)
        return worse_by(rule, float(value), than, step)

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
        kind: Kind,
        priority: Priority,
        message: str,
        value: float | str | None = None,
    ) -> None:
        """Raise an alarm at once (emergency, device lost), unless it is already raised."""
        if code not in self.alarms:
            self._pending[code] = _Pending(
                self._clock.monotonic(), 0.0, kind, priority, message, value, None
            )
            self._raise(code)

    def clear(self, code: str) -> None:
        """Clear an alarm whatever its state (session ended, device back)."""
        self._pending.pop(code, None)
        alarm = self.alarms.get(code)
        if alarm is not None:
            self._emit("alarm_cleared", {"alarm": _dump(alarm)})

    def end_session(self) -> list[dict[str, Any]]:
        """Clear the session's alarms; return those nobody had acknowledged (for the record)."""
        open_alarms = [
            {"id": a.id, "code": a.code, "priority": a.priority, "state": a.state}
            for a in self.current()
            if a.state != "acknowledged" and _session_bound(a)
        ]
        for alarm in list(self.alarms.values()):
            if _session_bound(alarm):
                self.clear(alarm.code)
        self._pending.clear()
        return open_alarms

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
            latest = self._latest.get(alarm.code, alarm.value)
            at_ack = float(latest) if isinstance(latest, int | float) else None
            self._transition(
                "alarm_acknowledged", alarm, by=by, state="acknowledged", value_at_ack=at_ack
            )
        return alarm

    def silence(self, seconds: float, by: str) -> tuple[list[Alarm], list[Alarm]]:
        """Silence every sounding alarm for ``seconds`` (≤ 120, within its silence budget).

        Returns the alarms silenced and those refused because their silences already add up
        to ``silence_max_total_s``: they keep sounding.
        """
        silenced, refused = [], []
        for alarm in list(self.alarms.values()):
            if alarm.state not in ("active", "latched"):
                continue
            left = self.limits.silence_max_total_s - alarm.silenced_total_s
            grant = min(seconds, SILENCE_MAX_S, left)
            if grant <= 0:
                refused.append(alarm)
                continue
            until = self._clock.now() + timedelta(seconds=grant)
            total = round(alarm.silenced_total_s + grant, 3)
            updated = alarm.model_copy(update={"silenced_until": until, "silenced_total_s": total})
            self._emit("alarm_silenced", {"alarm": _dump(updated), "by": by})
            silenced.append(updated)
        return silenced, refused

    def ack_command(self, cmd: AlarmAck) -> dict[str, Any]:
        """``alarm_ack``: a clinician acknowledges one current alarm."""
        if self.acknowledge(cmd.alarm_id, cmd.by) is None:
            raise InvalidPayload(f"field 'alarm_id': no current alarm '{cmd.alarm_id}'")
        return {"alarm_id": cmd.alarm_id}

    def silence_command(self, cmd: AlarmSilence) -> dict[str, Any]:
        """``alarm_silence``: quiet the sounding alarms for up to 120 s."""
        silenced, refused = self.silence(cmd.seconds, cmd.by)
        return {
            "silenced": [a.id for a in silenced],
            "refused": [a.id for a in refused],
            "seconds": cmd.seconds,
        }

    # --- time -------------------------------------------------------------------------

    def tick(self) -> None:
        """Raise conditions whose delay has run out; escalate unacknowledged alarms."""
        now = self._clock.monotonic()
        for code, pending in list(self._pending.items()):
            if code not in self.alarms and now - pending.onset >= pending.delay_s:
                self._raise(code)
        for alarm in list(self.alarms.values()):
            due = self._escalation_due(alarm)
            if due is not None and due <= now:
                self._emit("alarm_escalated", {"alarm": _dump(alarm)})

    def next_deadline(self) -> float | None:
        """When ``tick`` may next have something to do (monotonic), if ever."""
        deadlines = [
            p.onset + p.delay_s for code, p in self._pending.items() if code not in self.alarms
        ]
        deadlines += [d for a in self.alarms.values() if (d := self._escalation_due(a)) is not None]
        return min(deadlines, default=None)

    def _escalation_due(self, alarm: Alarm) -> float | None:
        # Unacknowledged (active or latched) and not yet escalated: a silence does not stop it.
        if alarm.state == "acknowledged" or alarm.code in self.escalated:
            return None
        raised = self._raised_mono.get(alarm.code, self._clock.monotonic())
        return raised + self.limits.escalate_after_s

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

    def unacknowledged_high(self) -> list[Alarm]:
        """High-priority alarms active or latched that nobody acknowledged."""
        return [a for a in self.current() if a.priority == "high" and a.state != "acknowledged"]

    # --- internals --------------------------------------------------------------------

    def _raise(self, code: str) -> None:
        p = self._pending.pop(code)
        alarm = Alarm(
            id=f"{code}-{int(self._clock.now().timestamp() * 1000)}",
            code=code,
            kind=p.kind,
            priority=p.priority,
            state="active",
            raised_at=self._clock.now(),
            value=p.value,
            limit=p.limit,
            message=p.message,
        )
        self._emit("alarm_raised", {"alarm": _dump(alarm)})

    def _transition(
        self, type_: str, alarm: Alarm, *, by: str | None = None, **changes: Any
    ) -> None:
        updated = alarm.model_copy(update=changes)
        data: dict[str, Any] = {"alarm": _dump(updated)}
        if by is not None:
            data["by"] = by
        self._emit(type_, data)


def _session_bound(alarm: Alarm) -> bool:
    return alarm.kind == "physiological" or alarm.code in SESSION_TECHNICAL


def _limit_message(rule: LimitRule, value: float | None, limit: AlarmLimit) -> str:
    return f"{rule.label} {value} {'below' if rule.below else 'above'} {limit.limit:g}"


def _dump(alarm: Alarm) -> dict[str, Any]:
    return alarm.model_dump(mode="json")
