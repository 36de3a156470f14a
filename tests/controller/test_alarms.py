"""The alarm engine on a fake clock: delays, priorities, latching, ack, silence, escalation."""

from __future__ import annotations

import itertools
import json
from datetime import timedelta
from typing import Any

import pytest

from controller.alarms import AlarmEngine
from controller.clock import FakeClock
from controller.config import AlarmsSection
from controller.errors import InvalidPayload
from controller.models import (
    Alarm,
    AlarmAck,
    AlarmLimit,
    AlarmSilence,
    Event,
    NibpReading,
    VitalsSample,
    iso_utc,
)

LIMITS = AlarmsSection()


class Rig:
    """An engine wired as the room wires it: emit journals an Event and applies it."""

    def __init__(self, limits: AlarmsSection | None = None) -> None:
        self.clock = FakeClock()
        self.events: list[Event] = []
        self._seq = itertools.count(1)
        self.engine = AlarmEngine(self.clock, limits or LIMITS, self.emit)

    def emit(self, type_: str, data: dict[str, Any]) -> Event:
        event = Event(
            seq=next(self._seq), ts=self.clock.now(), session_id="s-1", type=type_, data=data
        )
        self.events.append(event)
        self.engine.apply(event)
        return event

    def sample(self, spo2: int | None = 97, hr: int | None = 74) -> None:
        self.engine.check_sample(VitalsSample(ts=self.clock.now(), spo2=spo2, hr=hr, source="fake"))

    def nibp(self, sys: int, dia: int) -> None:
        self.engine.check_nibp(
            NibpReading(
                ts=self.clock.now(), sys=sys, dia=dia, map=round((sys + 2 * dia) / 3), source="x"
            )
        )

    def hold(self, seconds: float, *, spo2: int | None = 97, hr: int | None = 74) -> None:
        """Let ``seconds`` pass in 1 s steps with a sample and a tick at each."""
        for _ in range(round(seconds)):
            self.clock.advance(1)
            self.sample(spo2, hr)
            self.engine.tick()

    def types(self, code: str | None = None) -> list[str]:
        return [
            e.type
            for e in self.events
            if code is None or ("alarm" in e.data and e.data["alarm"]["code"] == code)
        ]

    def alarm(self, code: str) -> Alarm:
        return self.engine.alarms[code]

    def codes(self) -> list[str]:
        return [a.code for a in self.engine.current()]


def spo2_between_limits() -> int:
    """An SpO2 below the low limit but above the critical one."""
    value = int(LIMITS.spo2_critical.limit) + 1
    assert LIMITS.spo2_critical.limit < value < LIMITS.spo2_low.limit
    return value


SPO2_LOW = spo2_between_limits()
SPO2_CRIT = int(LIMITS.spo2_critical.limit) - 3
HR_HIGH = int(LIMITS.hr_high.limit) + 10


# --- condition delays -----------------------------------------------------------------------


def test_condition_shorter_than_delay_raises_nothing() -> None:
    rig = Rig()
    delay = LIMITS.spo2_low.delay_s
    rig.sample(SPO2_LOW)
    rig.clock.advance(delay - 0.1)
    rig.sample(SPO2_LOW)
    rig.engine.tick()
    assert rig.events == []
    # The condition goes away before the delay: nothing was ever raised.
    rig.sample(97)
    rig.clock.advance(delay)
    rig.engine.tick()
    assert rig.events == []
    assert rig.engine.current() == []


def test_condition_lasting_its_delay_raises_via_tick() -> None:
    rig = Rig()
    delay = LIMITS.spo2_low.delay_s
    rig.sample(SPO2_LOW)
    rig.clock.advance(delay)
    rig.engine.tick()
    assert rig.types() == ["alarm_raised"]
    alarm = rig.alarm("spo2_low")
    assert alarm.state == "active"
    assert alarm.priority == LIMITS.spo2_low.priority
    assert alarm.kind == "physiological"
    assert alarm.value == SPO2_LOW
    assert alarm.limit == LIMITS.spo2_low.limit
    assert alarm.raised_at == rig.clock.now()
    assert "SpO2" in alarm.message and "below" in alarm.message


def test_condition_lasting_its_delay_raises_via_sample() -> None:
    rig = Rig()
    rig.sample(SPO2_LOW)
    rig.clock.advance(LIMITS.spo2_low.delay_s)
    rig.sample(SPO2_LOW)
    assert rig.types("spo2_low") == ["alarm_raised"]


def test_condition_interrupted_restarts_its_delay() -> None:
    rig = Rig()
    delay = LIMITS.spo2_low.delay_s
    rig.sample(SPO2_LOW)
    rig.clock.advance(delay / 2)
    rig.sample(97)  # back in range: the onset is forgotten
    rig.clock.advance(1)
    rig.sample(SPO2_LOW)  # new onset here
    rig.clock.advance(delay - 1)
    rig.sample(SPO2_LOW)
    rig.engine.tick()
    assert rig.events == []
    rig.clock.advance(1)
    rig.engine.tick()
    assert rig.types() == ["alarm_raised"]


def test_next_deadline_is_onset_plus_delay() -> None:
    rig = Rig()
    assert rig.engine.next_deadline() is None
    onset = rig.clock.monotonic()
    rig.sample(SPO2_LOW)
    assert rig.engine.next_deadline() == pytest.approx(onset + LIMITS.spo2_low.delay_s)
    rig.clock.advance(3)
    rig.sample(SPO2_LOW)  # the onset stays where the condition began
    assert rig.engine.next_deadline() == pytest.approx(onset + LIMITS.spo2_low.delay_s)


def test_next_deadline_after_raise_is_the_escalation() -> None:
    rig = Rig()
    rig.sample(hr=HR_HIGH)
    rig.clock.advance(LIMITS.hr_high.delay_s)
    rig.engine.tick()
    raised_mono = rig.clock.monotonic()
    assert rig.types() == ["alarm_raised"]
    assert rig.engine.next_deadline() == pytest.approx(raised_mono + LIMITS.escalate_after_s)
    rig.engine.acknowledge(rig.alarm("hr_high").id, "dr-lee")
    assert rig.engine.next_deadline() is None  # acknowledged: nothing left to time


# --- priorities and suppression -------------------------------------------------------------


def test_spo2_critical_suppresses_spo2_low() -> None:
    rig = Rig()
    rig.sample(SPO2_CRIT)
    # The critical delay is the shorter one; run well past both.
    rig.hold(max(LIMITS.spo2_low.delay_s, LIMITS.spo2_critical.delay_s) * 3, spo2=SPO2_CRIT)
    assert rig.codes() == ["spo2_critical"]
    assert rig.types("spo2_low") == []
    assert rig.alarm("spo2_critical").priority == LIMITS.spo2_critical.priority


def test_fall_from_low_to_critical_replaces_the_low_alarm() -> None:
    rig = Rig()
    rig.sample(SPO2_LOW)
    rig.hold(LIMITS.spo2_low.delay_s, spo2=SPO2_LOW)
    assert rig.codes() == ["spo2_low"]
    rig.sample(SPO2_CRIT)
    assert rig.types("spo2_low") == ["alarm_raised", "alarm_cleared"]
    rig.hold(LIMITS.spo2_critical.delay_s, spo2=SPO2_CRIT)
    assert rig.codes() == ["spo2_critical"]


# --- latching, clearing, acknowledging ------------------------------------------------------


def raise_critical(rig: Rig) -> Alarm:
    rig.sample(SPO2_CRIT)
    rig.hold(LIMITS.spo2_critical.delay_s, spo2=SPO2_CRIT)
    assert rig.codes() == ["spo2_critical"]
    return rig.alarm("spo2_critical")


def raise_hr_high_beside(rig: Rig) -> Alarm:
    """Raise hr_high whatever else is current."""
    rig.sample(hr=HR_HIGH)
    rig.hold(LIMITS.hr_high.delay_s, hr=HR_HIGH)
    return rig.alarm("hr_high")


def raise_hr_high(rig: Rig) -> Alarm:
    alarm = raise_hr_high_beside(rig)
    assert rig.codes() == ["hr_high"]
    return alarm


def test_high_priority_latches_when_condition_clears() -> None:
    rig = Rig()
    raised = raise_critical(rig)
    assert raised.priority == "high"
    rig.sample(97)
    assert rig.types("spo2_critical") == ["alarm_raised", "alarm_latched"]
    latched = rig.alarm("spo2_critical")
    assert latched.state == "latched"
    assert latched.id == raised.id
    # Still latched much later: only a clinician clears it.
    rig.hold(600)
    assert rig.alarm("spo2_critical").state == "latched"
    assert rig.engine.sounding() == "high"


def test_latched_alarm_clears_on_ack() -> None:
    rig = Rig()
    raised = raise_critical(rig)
    rig.sample(97)
    result = rig.engine.acknowledge(raised.id, "dr-lee")
    assert result is not None and result.id == raised.id
    assert rig.types("spo2_critical")[-2:] == ["alarm_acknowledged", "alarm_cleared"]
    acked = [e for e in rig.events if e.type == "alarm_acknowledged"][-1]
    assert acked.data["by"] == "dr-lee"
    assert rig.engine.current() == []
    assert rig.engine.sounding() is None


def test_latched_alarm_reactivates_when_condition_returns() -> None:
    rig = Rig()
    raised = raise_critical(rig)
    rig.sample(97)
    rig.sample(SPO2_CRIT)
    assert rig.alarm("spo2_critical").state == "active"
    assert rig.alarm("spo2_critical").id == raised.id
    assert rig.types("spo2_critical") == ["alarm_raised", "alarm_latched", "alarm_raised"]


def test_medium_priority_clears_when_condition_clears() -> None:
    rig = Rig()
    raise_hr_high(rig)
    rig.sample(hr=80)
    assert rig.types("hr_high") == ["alarm_raised", "alarm_cleared"]
    assert rig.engine.current() == []


def test_ack_of_active_alarm_then_condition_gone_clears() -> None:
    rig = Rig()
    raised = raise_hr_high(rig)
    rig.engine.acknowledge(raised.id, "dr-lee")
    assert rig.alarm("hr_high").state == "acknowledged"
    assert rig.engine.sounding() is None
    rig.hold(5, hr=HR_HIGH)
    assert rig.alarm("hr_high").state == "acknowledged"  # still present, still acknowledged
    rig.sample(hr=80)
    assert rig.types("hr_high")[-1] == "alarm_cleared"
    assert rig.engine.current() == []


def test_ack_of_active_high_alarm_then_condition_gone_clears_without_latch() -> None:
    rig = Rig()
    raised = raise_critical(rig)
    rig.engine.acknowledge(raised.id, "dr-lee")
    rig.sample(97)
    assert rig.types("spo2_critical") == ["alarm_raised", "alarm_acknowledged", "alarm_cleared"]


def test_ack_of_unknown_alarm_returns_none_and_emits_nothing() -> None:
    rig = Rig()
    raise_hr_high(rig)
    before = len(rig.events)
    assert rig.engine.acknowledge("no-such-alarm", "dr-lee") is None
    assert len(rig.events) == before


# --- silence --------------------------------------------------------------------------------


def test_silence_is_capped_at_120_s_and_sounds_after() -> None:
    rig = Rig()
    raise_hr_high(rig)
    assert rig.engine.sounding() == "medium"
    silenced, refused = rig.engine.silence(600, "dr-lee")
    assert refused == []
    cap = rig.clock.now() + timedelta(seconds=120)
    assert [a.code for a in silenced] == ["hr_high"]
    assert silenced[0].silenced_until == cap
    assert rig.alarm("hr_high").silenced_until == cap
    event = rig.events[-1]
    assert event.type == "alarm_silenced" and event.data["by"] == "dr-lee"
    assert rig.engine.sounding() is None
    rig.clock.advance(119.5)
    assert rig.engine.sounding() is None
    rig.clock.advance(0.5)
    assert rig.engine.sounding() == "medium"


def test_silence_shorter_than_cap_is_kept() -> None:
    rig = Rig()
    raise_hr_high(rig)
    rig.engine.silence(30, "dr-lee")
    assert rig.alarm("hr_high").silenced_until == rig.clock.now() + timedelta(seconds=30)
    rig.clock.advance(29)
    assert rig.engine.sounding() is None
    rig.clock.advance(1)
    assert rig.engine.sounding() == "medium"


def test_silence_does_not_outlast_120_s_after_a_wall_clock_step_back() -> None:
    # A silence is a duration (≤ 120 s): an NTP step of the wall clock must not stretch it.
    rig = Rig()
    raise_hr_high(rig)
    rig.engine.silence(120, "dr-lee")
    rig.clock.step_wall(-600)
    rig.clock.advance(120)
    assert rig.engine.sounding() == "medium"


def test_new_alarm_sounds_through_a_silence() -> None:
    rig = Rig()
    raise_hr_high(rig)
    rig.engine.silence(120, "dr-lee")
    assert rig.engine.sounding() is None
    rig.clock.advance(10)
    rig.nibp(int(LIMITS.sys_low.limit) - 10, 60)  # a new medium alarm
    assert "sys_low" in rig.codes()
    assert rig.engine.sounding() == "medium"
    rig.sample(SPO2_CRIT, HR_HIGH)
    rig.hold(LIMITS.spo2_critical.delay_s, spo2=SPO2_CRIT, hr=HR_HIGH)
    assert rig.engine.sounding() == "high"


def test_silence_with_no_alarm_silences_nothing() -> None:
    rig = Rig()
    assert rig.engine.silence(60, "dr-lee") == ([], [])
    assert rig.events == []


# --- escalation -----------------------------------------------------------------------------


def test_escalation_after_escalate_after_s_exactly_once() -> None:
    rig = Rig()
    raise_hr_high(rig)
    rig.clock.advance(LIMITS.escalate_after_s - 0.5)
    rig.engine.tick()
    assert "alarm_escalated" not in rig.types()
    rig.clock.advance(0.5)
    rig.engine.tick()
    assert rig.types().count("alarm_escalated") == 1
    assert rig.engine.escalated == {"hr_high"}
    for _ in range(5):
        rig.clock.advance(LIMITS.escalate_after_s)
        rig.engine.tick()
    assert rig.types().count("alarm_escalated") == 1


def test_acknowledged_alarm_does_not_escalate() -> None:
    rig = Rig()
    raised = raise_hr_high(rig)
    rig.engine.acknowledge(raised.id, "dr-lee")
    rig.hold(LIMITS.escalate_after_s * 2, hr=HR_HIGH)
    assert "alarm_escalated" not in rig.types()


def test_escalation_timing_survives_a_wall_clock_step_back() -> None:
    # Escalation is a duration: stepping the wall clock back (NTP) must not postpone it.
    rig = Rig()
    raise_hr_high(rig)
    rig.clock.step_wall(-600)
    rig.clock.advance(LIMITS.escalate_after_s)
    rig.engine.tick()
    assert rig.types().count("alarm_escalated") == 1


def test_custom_escalate_after_s_is_used() -> None:
    limits = AlarmsSection(escalate_after_s=15)
    rig = Rig(limits)
    rig.engine.raise_now("emergency", kind="physiological", priority="high", message="E")
    rig.clock.advance(14)
    rig.engine.tick()
    assert "alarm_escalated" not in rig.types()
    rig.clock.advance(1)
    rig.engine.tick()
    assert rig.types().count("alarm_escalated") == 1


# --- NIBP limits ----------------------------------------------------------------------------


def test_nibp_sys_high_raises_at_once() -> None:
    rig = Rig()
    rig.nibp(int(LIMITS.sys_high.limit) + 10, 80)
    assert rig.codes() == ["sys_high"]
    alarm = rig.alarm("sys_high")
    assert alarm.priority == LIMITS.sys_high.priority
    assert alarm.value == LIMITS.sys_high.limit + 10
    assert alarm.limit == LIMITS.sys_high.limit
    assert "Systolic" in alarm.message and "above" in alarm.message


def test_nibp_dia_high_raises_at_once() -> None:
    rig = Rig()
    rig.nibp(140, int(LIMITS.dia_high.limit) + 5)
    assert rig.codes() == ["dia_high"]
    assert rig.alarm("dia_high").priority == LIMITS.dia_high.priority


def test_nibp_sys_low_raises_at_once() -> None:
    rig = Rig()
    rig.nibp(int(LIMITS.sys_low.limit) - 5, 50)
    assert rig.codes() == ["sys_low"]
    assert rig.alarm("sys_low").priority == LIMITS.sys_low.priority
    assert "below" in rig.alarm("sys_low").message


def test_nibp_at_the_limits_raises_nothing() -> None:
    rig = Rig()
    rig.nibp(int(LIMITS.sys_high.limit), int(LIMITS.dia_high.limit))
    rig.nibp(int(LIMITS.sys_low.limit), 60)
    assert rig.events == []


def test_normal_nibp_latches_high_and_clears_medium() -> None:
    rig = Rig()
    rig.nibp(int(LIMITS.sys_high.limit) + 10, int(LIMITS.dia_high.limit) + 10)
    assert sorted(rig.codes()) == ["dia_high", "sys_high"]
    rig.nibp(120, 80)
    assert rig.alarm("sys_high").state == "latched"
    assert rig.alarm("dia_high").state == "latched"
    rig2 = Rig()
    rig2.nibp(int(LIMITS.sys_low.limit) - 5, 50)
    rig2.nibp(120, 80)
    assert rig2.engine.current() == []


def test_nibp_limits_come_from_the_config() -> None:
    limits = AlarmsSection(sys_high=AlarmLimit(limit=150, priority="medium", delay_s=0))
    rig = Rig(limits)
    rig.nibp(160, 80)
    assert rig.alarm("sys_high").priority == "medium"
    assert rig.alarm("sys_high").limit == 150


# --- rebuilding from the journal ------------------------------------------------------------


def busy_history(rig: Rig) -> None:
    """Alarms in every state: raised, silenced, escalated, acknowledged, latched, cleared."""
    raise_hr_high(rig)  # hr_high: medium
    rig.engine.silence(60, "dr-lee")
    rig.nibp(int(LIMITS.sys_high.limit) + 20, 90)  # sys_high: high, active
    rig.nibp(int(LIMITS.sys_low.limit) + 30, 70)  # sys_high latches
    rig.clock.advance(LIMITS.escalate_after_s)
    rig.engine.tick()  # hr_high escalates
    rig.engine.acknowledge(rig.alarm("hr_high").id, "dr-lee")
    rig.nibp(int(LIMITS.sys_low.limit) - 5, 50)  # sys_low: medium, active
    rig.engine.raise_now("oximeter_lost", kind="technical", priority="medium", message="lost")
    rig.engine.clear("oximeter_lost")
    rig.sample(SPO2_CRIT, HR_HIGH)
    rig.hold(LIMITS.spo2_critical.delay_s, spo2=SPO2_CRIT, hr=HR_HIGH)  # spo2_critical
    rig.engine.silence(120, "dr-kim")


def test_apply_of_emitted_events_rebuilds_the_same_alarm_list() -> None:
    rig = Rig()
    busy_history(rig)
    types = set(rig.types())
    for needed in (
        "alarm_raised",
        "alarm_silenced",
        "alarm_escalated",
        "alarm_acknowledged",
        "alarm_latched",
        "alarm_cleared",
    ):
        assert needed in types
    states = {a.code: a.state for a in rig.engine.current()}
    assert states == {
        "hr_high": "acknowledged",
        "sys_high": "latched",
        "sys_low": "active",
        "spo2_critical": "active",
    }

    fresh = AlarmEngine(FakeClock(), LIMITS, lambda t, d: pytest.fail("apply must not emit"))
    other = Event(seq=0, ts=rig.clock.now(), session_id="s-1", type="phase_changed", data={})
    fresh.apply(other)  # a non-alarm event changes nothing
    for event in rig.events:
        fresh.apply(event)
    assert fresh.current() == rig.engine.current()
    assert fresh.escalated == rig.engine.escalated


def test_rebuilt_engine_sounds_and_escalates_like_the_original() -> None:
    rig = Rig()
    busy_history(rig)
    clock = FakeClock(start=rig.clock.now(), monotonic=rig.clock.monotonic())
    emitted: list[str] = []

    def emit(type_: str, data: dict[str, Any]) -> Event:
        emitted.append(type_)
        return Event(seq=0, ts=clock.now(), session_id=None, type=type_, data=data)

    fresh = AlarmEngine(clock, LIMITS, emit)
    for event in rig.events:
        fresh.apply(event)
    assert fresh.sounding() == rig.engine.sounding()
    # The escalated set came back too: only the not-yet-escalated active alarms escalate.
    clock.advance(LIMITS.escalate_after_s)
    fresh.tick()
    rig.clock.advance(LIMITS.escalate_after_s)
    before = len(rig.events)
    rig.engine.tick()
    assert emitted == [e.type for e in rig.events[before:]]
    assert emitted.count("alarm_escalated") == 2  # sys_low and spo2_critical


# --- re-activation after acknowledgement ----------------------------------------------------


def test_an_acknowledged_alarm_sounds_again_when_worse_by_its_step() -> None:
    rig = Rig()
    step = LIMITS.reactivate_step.hr_high
    raised = raise_hr_high(rig)
    rig.sample(hr=HR_HIGH + 4)  # the latest value, not the one it was raised on, is the bar
    rig.engine.acknowledge(raised.id, "dr-lee")
    assert rig.alarm("hr_high").value_at_ack == HR_HIGH + 4
    rig.sample(hr=HR_HIGH + 4 + step - 1)
    assert rig.alarm("hr_high").state == "acknowledged", "not worse by a whole step yet"
    rig.sample(hr=HR_HIGH + 4 + step)
    again = rig.alarm("hr_high")
    assert rig.types("hr_high")[-1] == "alarm_reactivated"
    assert (again.id, again.state) == (raised.id, "active")
    assert again.value == HR_HIGH + 4 + step
    assert str(HR_HIGH + 4 + step) in again.message
    assert rig.engine.sounding() == "medium"
    rig.sample(hr=HR_HIGH + 4 + 3 * step)
    assert rig.types("hr_high")[-1] == "alarm_reactivated", "active: worse again is no event"
    assert rig.types("hr_high").count("alarm_reactivated") == 1


def test_a_falling_value_reactivates_below_the_bar_only() -> None:
    rig = Rig()
    step = LIMITS.reactivate_step.spo2_critical
    raised = raise_critical(rig)
    rig.engine.acknowledge(raised.id, "dr-lee")
    rig.sample(SPO2_CRIT + step)  # better than at ack: stays acknowledged
    rig.sample(SPO2_CRIT - step + 1)
    assert rig.alarm("spo2_critical").state == "acknowledged"
    rig.sample(SPO2_CRIT - step)
    assert rig.alarm("spo2_critical").state == "active"
    assert rig.engine.sounding() == "high"


def test_an_acknowledged_technical_alarm_never_reactivates() -> None:
    # Only the physiological limits have a "worse": a technical condition stays acknowledged.
    rig = Rig()
    rig.engine.set_condition(
        "nibp_failed", True, kind="technical", priority="medium", message="cuff", value=1
    )
    rig.engine.acknowledge(rig.alarm("nibp_failed").id, "dr-lee")
    rig.engine.set_condition(
        "nibp_failed", True, kind="technical", priority="medium", message="cuff", value=99
    )
    assert rig.alarm("nibp_failed").state == "acknowledged"


def test_a_reactivated_alarm_escalates_again_and_ends_its_silence() -> None:
    rig = Rig()
    step = LIMITS.reactivate_step.hr_high
    raised = raise_hr_high(rig)
    rig.engine.silence(120, "dr-lee")
    rig.clock.advance(LIMITS.escalate_after_s)
    rig.engine.tick()
    assert rig.types().count("alarm_escalated") == 1
    rig.engine.acknowledge(raised.id, "dr-lee")
    rig.sample(hr=HR_HIGH + step)
    assert rig.alarm("hr_high").silenced_until is None
    assert rig.engine.sounding() == "medium", "the old silence no longer holds it"
    rig.clock.advance(LIMITS.escalate_after_s - 1)
    rig.engine.tick()
    assert rig.types().count("alarm_escalated") == 1
    rig.clock.advance(1)
    rig.engine.tick()
    assert rig.types().count("alarm_escalated") == 2


# --- silence budget -------------------------------------------------------------------------


def test_silences_add_up_to_the_budget_then_are_refused() -> None:
    limits = AlarmsSection(silence_max_total_s=150)
    rig = Rig(limits)
    raise_hr_high(rig)
    rig.engine.silence(100, "dr-lee")
    rig.clock.advance(100)
    silenced, refused = rig.engine.silence(120, "dr-lee")
    assert refused == []
    assert silenced[0].silenced_total_s == 150
    assert silenced[0].silenced_until == rig.clock.now() + timedelta(seconds=50), "what is left"
    rig.clock.advance(50)
    before = len(rig.events)
    silenced, refused = rig.engine.silence(10, "dr-lee")
    assert (silenced, [a.code for a in refused]) == ([], ["hr_high"])
    assert len(rig.events) == before, "a refused silence journals nothing"
    assert rig.engine.sounding() == "medium"


def test_a_latched_alarm_can_be_silenced_an_acknowledged_one_is_not() -> None:
    rig = Rig()
    acked = raise_hr_high(rig)
    rig.engine.acknowledge(acked.id, "dr-lee")
    rig.sample(SPO2_CRIT, HR_HIGH)
    rig.hold(LIMITS.spo2_critical.delay_s, spo2=SPO2_CRIT, hr=HR_HIGH)
    rig.sample(97, HR_HIGH)  # the critical one latches; hr_high stays acknowledged
    silenced, _ = rig.engine.silence(60, "dr-lee")
    assert [a.code for a in silenced] == ["spo2_critical"]
    assert rig.engine.sounding() is None


def test_silence_command_answers_what_it_silenced_and_refused() -> None:
    rig = Rig(AlarmsSection(silence_max_total_s=0))
    raised = raise_hr_high(rig)
    result = rig.engine.silence_command(AlarmSilence(request_id="r", by="dr-lee", seconds=30))
    assert result == {"silenced": [], "refused": [raised.id], "seconds": 30}
    rig2 = Rig()
    raised2 = raise_hr_high(rig2)
    result = rig2.engine.silence_command(AlarmSilence(request_id="r", by="dr-kim", seconds=30))
    assert result == {"silenced": [raised2.id], "refused": [], "seconds": 30}
    assert rig2.events[-1].data["by"] == "dr-kim"


# --- commands, views ------------------------------------------------------------------------


def test_ack_command_acknowledges_or_names_the_unknown_id() -> None:
    rig = Rig()
    raised = raise_hr_high(rig)
    assert rig.engine.ack_command(AlarmAck(request_id="r", by="dr-kim", alarm_id=raised.id)) == {
        "alarm_id": raised.id
    }
    assert rig.alarm("hr_high").state == "acknowledged"
    assert rig.events[-1].data["by"] == "dr-kim"
    with pytest.raises(InvalidPayload, match="field 'alarm_id': no current alarm 'nope'"):
        rig.engine.ack_command(AlarmAck(request_id="r", by="dr-kim", alarm_id="nope"))


def test_the_alarm_id_is_its_code_and_the_raise_time_in_ms() -> None:
    rig = Rig()
    raised = raise_hr_high(rig)
    assert raised.id == f"hr_high-{int(rig.clock.now().timestamp() * 1000)}"


def test_sounding_is_the_highest_priority_not_silenced() -> None:
    rig = Rig()
    rig.engine.raise_now("disk_low", kind="technical", priority="low", message="disk")
    assert rig.engine.sounding() == "low"
    rig.clock.advance(1)
    raise_hr_high_beside(rig)
    assert rig.engine.sounding() == "medium"
    rig.clock.advance(1)
    rig.engine.raise_now("emergency", kind="physiological", priority="high", message="E")
    assert rig.engine.sounding() == "high"
    assert [a.code for a in rig.engine.unacknowledged_high()] == ["emergency"]
    assert rig.codes() == ["disk_low", "hr_high", "emergency"], "oldest first"
    for alarm in rig.engine.current()[:2]:
        rig.engine.acknowledge(alarm.id, "dr-lee")
    assert rig.engine.sounding() == "high", "acknowledged ones are passed over, not the end"
    rig.engine.acknowledge(rig.alarm("emergency").id, "dr-lee")
    assert rig.engine.unacknowledged_high() == []


def test_raise_now_carries_its_value_and_does_not_raise_twice() -> None:
    rig = Rig()
    rig.engine.raise_now(
        "oximeter_lost", kind="technical", priority="medium", message="lost", value="usb"
    )
    alarm = rig.alarm("oximeter_lost")
    assert (alarm.kind, alarm.priority, alarm.value, alarm.message) == (
        "technical",
        "medium",
        "usb",
        "lost",
    )
    rig.engine.raise_now("oximeter_lost", kind="technical", priority="high", message="again")
    assert rig.types() == ["alarm_raised"]
    rig.engine.acknowledge(alarm.id, "dr-lee")  # a value in words has no bar to get worse by
    assert rig.alarm("oximeter_lost").state == "acknowledged"
    assert rig.alarm("oximeter_lost").value_at_ack is None


def test_clear_forgets_a_pending_condition() -> None:
    rig = Rig()
    rig.sample(SPO2_LOW)
    rig.engine.clear("spo2_low")
    rig.clock.advance(LIMITS.spo2_low.delay_s * 2)
    rig.engine.tick()
    assert rig.events == []
    assert rig.engine.next_deadline() is None


def test_alarm_messages_name_the_value_and_the_limit() -> None:
    rig = Rig()
    sys = int(LIMITS.sys_high.limit) + 7
    rig.nibp(sys, 80)
    assert rig.alarm("sys_high").message == f"Systolic BP {sys} above {LIMITS.sys_high.limit:g}"
    raise_hr_high_beside(rig)
    assert rig.alarm("hr_high").message == f"Heart rate {HR_HIGH} above {LIMITS.hr_high.limit:g}"


# --- the session's limits and its end -------------------------------------------------------


LIMITS_CODES = ("spo2_critical", "spo2_low", "hr_high", "hr_low", "sys_high", "dia_high", "sys_low")


def session_started(rig: Rig, alarms: dict[str, Any]) -> None:
    rig.emit("session_started", {"plan": {"session_id": "s-1", "alarms": alarms}})


def test_limits_in_force_say_where_each_came_from() -> None:
    rig = Rig()
    before = rig.engine.limits_in_force()
    assert before["hr_high"] == {**LIMITS.hr_high.model_dump(), "source": "config"}
    assert before["escalate_after_s"] == {"value": LIMITS.escalate_after_s, "source": "config"}
    assert before["stale_s"] == {"value": LIMITS.stale_s, "source": "config"}
    assert set(before) == {*LIMITS_CODES, "stale_s", "escalate_after_s"}
    session_started(
        rig, {"hr_high": {"limit": 110, "priority": "high", "delay_s": 3}, "stale_s": 20}
    )
    during = rig.engine.limits_in_force()
    assert during["hr_high"] == {"limit": 110, "priority": "high", "delay_s": 3, "source": "plan"}
    assert during["stale_s"] == {"value": 20, "source": "plan"}
    assert during["hr_low"]["source"] == "config"
    assert during["escalate_after_s"]["source"] == "config"
    rig.emit("session_ended", {})
    assert rig.engine.limits_in_force() == before


def test_a_plan_without_alarm_limits_keeps_the_configs() -> None:
    rig = Rig()
    rig.emit("session_started", {"plan": {"session_id": "s-1"}})
    assert {v["source"] for v in rig.engine.limits_in_force().values()} == {"config"}
    assert rig.engine.limits == LIMITS


def test_the_plans_limits_are_the_ones_checked() -> None:
    rig = Rig()
    session_started(rig, {"hr_high": {"limit": 100, "priority": "high", "delay_s": 0}})
    rig.sample(hr=105)
    assert rig.alarm("hr_high").priority == "high"
    assert rig.alarm("hr_high").limit == 100


def test_a_session_end_drops_what_was_pending() -> None:
    rig = Rig()
    rig.sample(SPO2_LOW)
    rig.emit("session_ended", {})
    rig.clock.advance(LIMITS.spo2_low.delay_s)
    rig.engine.tick()
    assert rig.types() == ["session_ended"]


def test_end_session_clears_the_sessions_alarms_and_lists_the_unanswered() -> None:
    rig = Rig()
    critical = raise_critical(rig)
    acked = raise_hr_high_beside(rig)  # SpO2 back in range meanwhile: the critical one latched
    rig.engine.acknowledge(acked.id, "dr-lee")
    rig.engine.raise_now("vitals_stale", kind="technical", priority="medium", message="stale")
    rig.engine.raise_now("oximeter_lost", kind="technical", priority="medium", message="lost")
    stale = rig.alarm("vitals_stale")
    rig.sample(SPO2_LOW, HR_HIGH)  # spo2_low pending, not yet raised
    open_alarms = rig.engine.end_session()
    assert open_alarms == [
        {"id": critical.id, "code": "spo2_critical", "priority": "high", "state": "latched"},
        {"id": stale.id, "code": "vitals_stale", "priority": "medium", "state": "active"},
    ]
    assert rig.codes() == ["oximeter_lost"], "a device's own alarm outlives the session"
    rig.clock.advance(LIMITS.spo2_low.delay_s)
    rig.engine.tick()
    assert "spo2_low" not in rig.codes()


def test_an_alarm_acknowledged_after_a_restart_still_reactivates() -> None:
    # A rebuilt engine has seen no sample yet: the bar is the value the alarm carries.
    rig = Rig()
    raised = raise_hr_high(rig)
    fresh = Rig()
    fresh.clock = rig.clock
    fresh.engine = AlarmEngine(rig.clock, LIMITS, fresh.emit)
    for event in rig.events:
        fresh.engine.apply(event)
    fresh.engine.acknowledge(raised.id, "dr-lee")
    assert fresh.alarm("hr_high").value_at_ack == HR_HIGH
    fresh.sample(hr=HR_HIGH + LIMITS.reactivate_step.hr_high)
    assert fresh.alarm("hr_high").state == "active"


def test_a_cleared_alarm_raised_again_escalates_on_its_own_time() -> None:
    rig = Rig()
    raise_hr_high(rig)
    rig.clock.advance(LIMITS.escalate_after_s)
    rig.engine.tick()
    rig.sample(hr=80)  # medium: clears
    rig.clock.advance(600)
    raise_hr_high(rig)
    rig.clock.advance(LIMITS.escalate_after_s - 1)
    rig.engine.tick()
    assert rig.types("hr_high").count("alarm_escalated") == 1, "not at once: a new alarm"
    rig.clock.advance(1)
    rig.engine.tick()
    assert rig.types("hr_high").count("alarm_escalated") == 2, "and it escalates again"


def test_a_cleared_alarms_silence_does_not_hold_it_when_it_comes_back() -> None:
    rig = Rig()
    raise_hr_high(rig)
    rig.engine.silence(120, "dr-lee")
    rig.sample(hr=80)  # clears within the silence
    raise_hr_high(rig)
    assert rig.engine.sounding() == "medium"


def test_a_latched_alarm_that_returns_keeps_its_escalation_time_across_a_wall_step() -> None:
    rig = Rig()
    raise_critical(rig)
    rig.clock.step_wall(-600)
    rig.sample(97)  # latches
    rig.sample(SPO2_CRIT)  # comes back: raised again, the same alarm
    rig.clock.advance(LIMITS.escalate_after_s)
    rig.engine.tick()
    assert rig.types("spo2_critical").count("alarm_escalated") == 1


def test_an_escalation_during_a_silence_after_a_wall_step_does_not_stretch_it() -> None:
    rig = Rig()
    raise_hr_high(rig)
    rig.engine.silence(120, "dr-lee")
    rig.clock.step_wall(-600)
    rig.clock.advance(LIMITS.escalate_after_s)
    rig.engine.tick()
    assert rig.types()[-1] == "alarm_escalated"
    rig.clock.advance(120 - LIMITS.escalate_after_s)
    assert rig.engine.sounding() == "medium"


def test_a_silence_spends_each_alarms_own_budget() -> None:
    rig = Rig(AlarmsSection(silence_max_total_s=121))
    raise_hr_high(rig)
    rig.engine.silence(120, "dr-lee")
    rig.clock.advance(120)
    rig.nibp(int(LIMITS.sys_low.limit) - 5, 50)  # a new alarm, with a whole budget
    silenced, refused = rig.engine.silence(120, "dr-lee")
    assert [(a.code, a.silenced_total_s) for a in silenced] == [("hr_high", 121), ("sys_low", 120)]
    assert silenced[0].silenced_until == rig.clock.now() + timedelta(seconds=1), "the last second"
    rig.clock.advance(120)
    silenced, refused = rig.engine.silence(0.5, "dr-lee")
    assert [a.code for a in refused] == ["hr_high"]
    assert [(a.code, a.silenced_total_s) for a in silenced] == [("sys_low", 120.5)]


def test_a_sensor_gap_is_no_limit_crossed() -> None:
    rig = Rig()
    rig.hold(LIMITS.spo2_low.delay_s * 2, spo2=None, hr=None)
    rig.nibp(120, 80)
    assert rig.events == []


def test_a_low_values_message_says_below() -> None:
    rig = Rig()
    raise_critical(rig)
    assert rig.alarm("spo2_critical").message == (
        f"SpO2 {SPO2_CRIT} below {LIMITS.spo2_critical.limit:g}"
    )


def test_every_alarm_event_is_journaled_as_json() -> None:
    rig = Rig()
    busy_history(rig)
    for event in rig.events:
        assert json.loads(json.dumps(event.data)) == event.data
    assert rig.events[0].data["alarm"]["raised_at"] == iso_utc(rig.engine.current()[0].raised_at)
