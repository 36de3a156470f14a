"""The alarm engine, in a room, against a reference model of its specification.

Hypothesis drives a whole room (the real engine, monitoring and session machine on fakes and
a FakeClock, see harness.py) with random oximeter samples, blood pressures, acknowledgements,
silences, time, sessions with plan limits, emergencies and restarts on the same journal.
``SpecModel`` is written from the tables of docs/alarms-guide.md ("How an alarm behaves — the
specification") and takes nothing from controller/alarms.py: only the limits' numbers come from
the config. After every step the two must agree on the current alarms and their states, which
are escalated, what sounds, the limits in force and, when a session ends, the alarms left open.
"""

from __future__ import annotations

import itertools
import math
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hypothesis import event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from controller.clock import FakeClock
from controller.config import AlarmsSection
from controller.events import LinkUp
from tests.controller.harness import Harness, make_config

RANK = {"low": 1, "medium": 2, "high": 3}
LIMIT_CODES = ("spo2_critical", "spo2_low", "hr_high", "hr_low", "sys_high", "dia_high", "sys_low")
BELOW = {"spo2_critical", "spo2_low", "hr_low", "sys_low"}
"""The limits crossed from above (a value below the limit is the condition)."""
SILENCE_MAX_S = 120
"""The longest one silence may be (the specification's transition table)."""
PLAN_LIMITS = {
    "spo2_critical": (80, 92),
    "spo2_low": (86, 96),
    "hr_high": (90, 140),
    "hr_low": (40, 60),
    "sys_high": (140, 200),
    "dia_high": (90, 120),
    "sys_low": (80, 110),
}
"""Ranges a plan's limits are drawn from: around the defaults, so that they are crossed."""


# --- the reference model ----------------------------------------------------------------------


@dataclass
class ModelAlarm:
    """One alarm as the specification describes it."""

    priority: str
    state: str  # active | acknowledged | latched
    value: float | None  # the condition's value when raised or re-activated
    since: float  # when raised or re-activated: escalation counts from here
    escalated: bool = False
    silent_until: float = -math.inf
    silenced_total: float = 0.0
    value_at_ack: float | None = None


@dataclass
class ModelPending:
    """A condition that holds while its delay runs."""

    onset: float
    delay: float
    priority: str
    value: float | None


@dataclass
class SpecModel:
    """The specification's conditions, states and transitions, on the room's clock."""

    config: AlarmsSection
    clock: FakeClock
    active: bool = False
    plan: dict[str, Any] = field(default_factory=dict)
    alarms: dict[str, ModelAlarm] = field(default_factory=dict)
    pending: dict[str, ModelPending] = field(default_factory=dict)
    latest: dict[str, float | None] = field(default_factory=dict)  # condition's value now
    last_valid: float | None = None  # when the oximeter last gave SpO2 or heart rate

    # --- settings in force: the plan's over the config's ---------------------------------

    def limit(self, code: str) -> tuple[float, str, float]:
        """(limit, priority, delay) of one physiological limit in force."""
        if code in self.plan:
            p = self.plan[code]
            return float(p["limit"]), p["priority"], float(p["delay_s"])
        c = getattr(self.config, code)
        return c.limit, c.priority, c.delay_s

    def setting(self, name: str) -> float:
        """``stale_s`` or ``escalate_after_s`` in force."""
        return float(self.plan.get(name, getattr(self.config, name)))

    @property
    def now(self) -> float:
        return self.clock.monotonic()

    # --- what happens -----------------------------------------------------------------------

    def start(self, plan_alarms: dict[str, Any]) -> None:
        self.active, self.plan = True, dict(plan_alarms)

    def end(self) -> list[tuple[str, str, str]]:
        """The session ends: its alarms clear; returns the unacknowledged ones."""
        still_open = sorted(
            (code, a.priority, a.state)
            for code, a in self.alarms.items()
            if a.state != "acknowledged"
        )
        self.alarms.clear()  # every alarm this model knows of is the session's
        self.pending.clear()
        self.latest.clear()
        self.active, self.plan = False, {}
        return still_open

    def sample(self, spo2: int | None, hr: int | None, quality: str) -> None:
        if spo2 is not None or hr is not None:
            self.last_valid = self.now
        if not self.active:
            return
        values = {"spo2_critical": spo2, "spo2_low": spo2, "hr_high": hr, "hr_low": hr}
        critical = self.crossed("spo2_critical", spo2)
        for code, value in values.items():
            present = self.crossed(code, value) and not (code == "spo2_low" and critical)
            _, priority, delay = self.limit(code)
            self.condition(code, present, value, delay, priority)
        off = quality in ("sensor_off", "no_sensor")
        self.condition("sensor_off", off, None, self.setting("stale_s"), "medium")

    def nibp(self, sys: int, dia: int) -> None:
        if not self.active:
            return
        for code, value in (("sys_high", sys), ("dia_high", dia), ("sys_low", sys)):
            self.condition(code, self.crossed(code, value), value, 0.0, self.limit(code)[1])

    def emergency(self) -> None:
        if "emergency" not in self.alarms:
            self.alarms["emergency"] = ModelAlarm("high", "active", None, self.now)

    def tick(self) -> None:
        now = self.now
        if self.active:
            stale = self.last_valid is None or now - self.last_valid > self.setting("stale_s")
            self.condition("vitals_stale", stale, None, 0.0, "medium")
        for code, p in list(self.pending.items()):
            if now - p.onset >= p.delay:
                self.raise_(code)
        for a in self.alarms.values():
            due = a.since + self.setting("escalate_after_s")
            if a.state != "acknowledged" and not a.escalated and due <= now:
                a.escalated = True

    def ack(self, code: str) -> None:
        a = self.alarms[code]
        if a.state == "latched":
            del self.alarms[code]
        elif a.state == "active":
            a.state = "acknowledged"
            a.value_at_ack = self.latest.get(code, a.value)

    def silence(self, seconds: float) -> tuple[set[str], set[str]]:
        """Silence the unacknowledged alarms; (silenced, refused) codes."""
        silenced, refused = set(), set()
        for code, a in self.alarms.items():
            if a.state == "acknowledged":
                continue
            grant = min(seconds, SILENCE_MAX_S, self.config.silence_max_total_s - a.silenced_total)
            if grant <= 0:
                refused.add(code)
                continue
            a.silent_until, a.silenced_total = self.now + grant, a.silenced_total + grant
            silenced.add(code)
        return silenced, refused

    def restart(self) -> None:
        """What a restart forgets: delays running, values not journaled, the last sample."""
        self.pending.clear()
        self.latest.clear()
        self.last_valid = None

    # --- the transition table -------------------------------------------------------------

    def crossed(self, code: str, value: float | None) -> bool:
        if value is None:
            return False
        limit = self.limit(code)[0]
        return value < limit if code in BELOW else value > limit

    def condition(
        self, code: str, present: bool, value: float | None, delay: float, priority: str
    ) -> None:
        a = self.alarms.get(code)
        if not present:
            self.pending.pop(code, None)
            self.latest.pop(code, None)
            if a is None or a.state == "latched":
                return
            if a.state == "active" and a.priority == "high":
                a.state = "latched"
            else:
                del self.alarms[code]
            return
        self.latest[code] = value
        if a is not None:
            if a.state == "latched":
                a.state = "active"
            elif a.state == "acknowledged" and self.worse(code, value, a.value_at_ack):
                a.state, a.value, a.since = "active", value, self.now
                a.escalated, a.silent_until = False, -math.inf
            return
        onset = self.pending[code].onset if code in self.pending else self.now
        self.pending[code] = ModelPending(onset, delay, priority, value)
        if self.now - onset >= delay:
            self.raise_(code)

    def worse(self, code: str, value: float | None, at_ack: float | None) -> bool:
        if code not in LIMIT_CODES or value is None or at_ack is None:
            return False
        step = getattr(self.config.reactivate_step, code)
        return value <= at_ack - step if code in BELOW else value >= at_ack + step

    def raise_(self, code: str) -> None:
        p = self.pending.pop(code)
        self.alarms[code] = ModelAlarm(p.priority, "active", p.value, self.now)

    # --- what it predicts -------------------------------------------------------------------

    def states(self) -> dict[str, str]:
        return {code: a.state for code, a in self.alarms.items()}

    def escalated(self) -> set[str]:
        return {code for code, a in self.alarms.items() if a.escalated}

    def sounding(self) -> str | None:
        loud = [
            a.priority
            for a in self.alarms.values()
            if a.state != "acknowledged" and a.silent_until <= self.now
        ]
        return max(loud, key=RANK.__getitem__, default=None)


# --- strategies ---------------------------------------------------------------------------------


def limit_override(code: str) -> st.SearchStrategy[dict[str, Any]]:
    low, high = PLAN_LIMITS[code]
    return st.fixed_dictionaries(
        {
            "limit": st.integers(low, high),
            "priority": st.sampled_from(["low", "medium", "high"]),
            "delay_s": st.sampled_from([0, 1, 3, 5, 10]),
        }
    )


PLAN_ALARMS = st.fixed_dictionaries(
    {},
    optional={
        **{code: limit_override(code) for code in LIMIT_CODES},
        "stale_s": st.sampled_from([3, 5, 10, 20]),
        "escalate_after_s": st.sampled_from([5, 20, 60]),
    },
)
# Values near the limits and a step apart, so that conditions come, go and worsen.
SPO2 = st.one_of(st.none(), st.sampled_from([72, 78, 82, 84, 86, 87, 89, 91, 93, 97]))
HR = st.one_of(st.none(), st.sampled_from([35, 40, 44, 50, 74, 100, 118, 125, 135, 150]))
SILENCE_S = st.one_of(st.sampled_from([30, 120, 121]), st.integers(1, 200))
QUALITY = st.sampled_from(["ok", "ok", "ok", "sensor_off", "no_sensor"])


@st.composite
def blood_pressure(draw: st.DrawFn) -> tuple[int, int]:
    sys = draw(st.integers(70, 230))
    return sys, draw(st.integers(35, min(140, sys - 10)))


# --- the machine --------------------------------------------------------------------------------


class AlarmRoom(RuleBasedStateMachine):
    """A room and the model, stepped together."""

    def __init__(self) -> None:
        super().__init__()
        # On tmpfs where there is one: the journal's fsyncs would otherwise dominate the run.
        shm = Path("/dev/shm")
        self.dir = Path(tempfile.mkdtemp(prefix="alarm-model-", dir=shm if shm.is_dir() else None))
        self.config = make_config()
        self.clock = FakeClock()
        self.h = Harness(self.dir, self.config, clock=self.clock)
        self.model = SpecModel(self.config.alarms, self.clock)
        self.sessions = itertools.count(1)
        self.silence_results: list[dict[str, Any]] = []

    def teardown(self) -> None:
        # What the run reached, for --hypothesis-show-statistics.
        for type_ in sorted({t for t in self.h.types() if t.startswith("alarm_")}):
            event(type_)
        if any(e["refused"] for e in self.silence_results):
            event("silence refused")
        self.h.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    # --- phases ---------------------------------------------------------------------------

    @initialize(plan_alarms=PLAN_ALARMS)
    def first_session(self, plan_alarms: dict[str, Any]) -> None:
        self.start_session(plan_alarms)

    @precondition(lambda self: not self.model.active)
    @rule(plan_alarms=PLAN_ALARMS)
    def start_session(self, plan_alarms: dict[str, Any]) -> None:
        self.h.plan(session_id=f"s-{next(self.sessions)}", alarms=plan_alarms)
        self.h.ok("start_session")
        self.model.start(plan_alarms)
        self.model.tick()

    @precondition(lambda self: self.model.active)
    @rule()
    def end_session(self) -> None:
        self.h.ok("end_session", reason="model step: session ends")
        expected = self.model.end()
        open_alarms = self.h.events("session_ended")[-1]["open_alarms"]
        got = sorted((a["code"], a["priority"], a["state"]) for a in open_alarms)
        assert got == expected
        self.model.tick()

    # --- readings -------------------------------------------------------------------------

    @rule(spo2=SPO2, hr=HR, quality=QUALITY)
    def sample(self, spo2: int | None, hr: int | None, quality: str) -> None:
        self.h.vitals(spo2, hr, quality)
        self.model.sample(spo2, hr, quality)
        self.model.tick()

    @rule(spo2=SPO2, hr=HR, quality=QUALITY, seconds=st.integers(2, 15))
    def hold(self, spo2: int | None, hr: int | None, quality: str, seconds: int) -> None:
        """The same reading every second for a while (a condition lasting its delay)."""
        for _ in range(seconds):
            self.clock.advance(1)
            self.h.vitals(spo2, hr, quality)
            self.model.sample(spo2, hr, quality)
            self.model.tick()

    @rule(bp=blood_pressure())
    def blood_pressure(self, bp: tuple[int, int]) -> None:
        self.h.ok("nibp_now")
        self.h.nibp.finish(*bp, 70)
        self.h.drain()
        self.model.nibp(*bp)
        self.model.tick()

    # In a session only; one declared in idle and kept over a restart has its own test below.
    @precondition(lambda self: self.model.active)
    @rule()
    def emergency(self) -> None:
        self.h.ok("emergency", reason="patient unresponsive")
        self.model.emergency()
        self.model.tick()

    # --- time -----------------------------------------------------------------------------

    @rule(seconds=st.integers(1, 130))
    def time_passes(self, seconds: int) -> None:
        self.clock.advance(seconds)
        self.h.room.tick()
        self.h.drain()
        self.model.tick()

    # --- clinicians -----------------------------------------------------------------------

    @precondition(lambda self: bool(self.model.alarms))
    @rule(data=st.data(), by=st.sampled_from(["dr-lee", "rn-kim"]))
    def acknowledge(self, data: st.DataObject, by: str) -> None:
        self.ack(data.draw(st.sampled_from(sorted(self.model.alarms))), by)

    def ack(self, code: str, by: str = "dr-lee") -> None:
        alarm_id = self.h.room.alarms.alarms[code].id
        reply = self.h.cmd("alarm_ack", by=by, alarm_id=alarm_id)
        assert reply.ok, reply.error
        self.model.ack(code)
        self.model.tick()

    @precondition(lambda self: bool(self.acknowledged_limits()))
    @rule(data=st.data(), beyond_step=st.sampled_from([-1, 0, 1, 6]))
    def worsen(self, data: st.DataObject, beyond_step: int) -> None:
        """An acknowledged limit's value moves out to about its re-activation step."""
        self.move_out(data.draw(st.sampled_from(self.acknowledged_limits())), beyond_step)

    @precondition(lambda self: bool(self.limits_active()))
    @rule(data=st.data(), beyond_step=st.sampled_from([-1, 0, 1, 6]))
    def acknowledge_then_worse(self, data: st.DataObject, beyond_step: int) -> None:
        """Acknowledged, then it got worse: the story re-activation is for."""
        code = data.draw(st.sampled_from(self.limits_active()))
        self.ack(code)
        if code in self.acknowledged_limits():
            self.move_out(code, beyond_step)

    def move_out(self, code: str, beyond_step: int) -> None:
        """The value of ``code`` moves its re-activation step (+ ``beyond_step``) past the
        value at acknowledgement."""
        at_ack = self.model.alarms[code].value_at_ack
        assert at_ack is not None
        delta = int(getattr(self.config.alarms.reactivate_step, code)) + beyond_step
        value = int(at_ack) - delta if code in BELOW else int(at_ack) + delta
        if code.startswith("spo2"):
            self.sample(value, 74, "ok")
        elif code.startswith("hr"):
            self.sample(97, value, "ok")
        elif code == "dia_high":
            self.blood_pressure((value + 30, value))
        else:
            self.blood_pressure((value, max(35, value // 2)))

    def limits_active(self) -> list[str]:
        return sorted(
            c for c, a in self.model.alarms.items() if c in LIMIT_CODES and a.state == "active"
        )

    def acknowledged_limits(self) -> list[str]:
        return sorted(
            code
            for code, a in self.model.alarms.items()
            if code in LIMIT_CODES and a.state == "acknowledged" and a.value_at_ack is not None
        )

    @rule()
    def acknowledge_unknown(self) -> None:
        reply = self.h.cmd("alarm_ack", alarm_id="no-such-alarm")
        assert not reply.ok and reply.error is not None
        assert reply.error.code == "invalid_payload"

    @rule(seconds=SILENCE_S, by=st.sampled_from(["dr-lee", "rn-kim"]))
    def silence(self, seconds: int, by: str) -> None:
        before = len(self.h.events("alarm_silenced"))
        reply = self.h.cmd("alarm_silence", by=by, seconds=seconds)
        if seconds > SILENCE_MAX_S:
            assert not reply.ok and reply.error is not None
            assert reply.error.code == "invalid_payload"
            return
        assert reply.ok, reply.error
        silenced, refused = self.model.silence(seconds)
        by_id = {a.id: a.code for a in self.h.room.alarms.current()}
        result = reply.result or {}
        self.silence_results.append(result)
        assert {by_id[i] for i in result["silenced"]} == silenced
        assert {by_id[i] for i in result["refused"]} == refused
        recorded = self.h.events("alarm_silenced")[before:]
        assert sorted(e["alarm"]["code"] for e in recorded) == sorted(silenced)
        assert all(e["by"] == by for e in recorded)
        self.model.tick()

    @precondition(lambda self: bool(self.model.alarms))
    @rule(times=st.integers(2, 3), by=st.sampled_from(["dr-lee", "rn-kim"]))
    def silence_again_and_again(self, times: int, by: str) -> None:
        """Silence pressed whenever it sounds: the budget runs out, and it sounds."""
        for _ in range(times):
            self.silence(SILENCE_MAX_S, by)

    # --- restarts -------------------------------------------------------------------------

    @rule()
    def restart(self) -> None:
        """A new room on the same journal and clock rebuilds the same engine."""
        live = engine_state(self.h)
        ids = self.h._ids  # request ids stay unique across the restart (replies are journaled)
        self.h.close()
        self.h = Harness(self.dir, self.config, clock=self.clock, online=False)
        self.h._ids = ids
        assert engine_state(self.h) == live
        self.h.deliver(LinkUp())
        self.model.restart()
        self.model.tick()

    # --- after every step -------------------------------------------------------------------

    @invariant()
    def engine_follows_the_specification(self) -> None:
        engine, model = self.h.room.alarms, self.model
        current = engine.current()
        assert {a.code: a.state for a in current} == model.states()
        assert engine.escalated == model.escalated()
        assert engine.sounding() == model.sounding()
        for a in current:
            m = model.alarms[a.code]
            assert a.priority == m.priority, a.code
            assert a.silenced_total_s == m.silenced_total, a.code
            if a.state == "acknowledged":
                assert a.value_at_ack == m.value_at_ack, a.code
        high = {
            c for c, m in model.alarms.items() if m.priority == "high" and m.state != "acknowledged"
        }
        assert {a.code for a in engine.unacknowledged_high()} == high
        # The retained alarms topic lists the current alarms.
        retained = self.h.link.alarms[-1] if self.h.link.alarms else []
        assert [(a.code, a.state) for a in retained] == [(a.code, a.state) for a in current]

    @invariant()
    def limits_in_force_say_where_they_came_from(self) -> None:
        in_force = self.h.room.alarms.limits_in_force()
        for code in LIMIT_CODES:
            limit, priority, delay = self.model.limit(code)
            source = "plan" if code in self.model.plan else "config"
            expected = {"limit": limit, "priority": priority, "delay_s": delay, "source": source}
            assert in_force[code] == expected, code
        for name in ("stale_s", "escalate_after_s"):
            source = "plan" if name in self.model.plan else "config"
            assert in_force[name] == {"value": self.model.setting(name), "source": source}


def engine_state(h: Harness) -> dict[str, Any]:
    """What the journal must rebuild: the alarms, escalations, limits, clocks of each alarm."""
    engine = h.room.alarms
    return {
        "alarms": dict(engine.alarms),
        "escalated": set(engine.escalated),
        "limits": engine.limits,
        "in_force": engine.limits_in_force(),
        "sounding": engine.sounding(),
        "next_escalation": {a.code: engine._escalation_due(a) for a in engine.current()},
    }


AlarmRoom.TestCase.settings = settings(max_examples=80, stateful_step_count=50, deadline=None)
test_alarm_engine_follows_its_specification = AlarmRoom.TestCase


def test_the_model_on_one_fall() -> None:
    """The model itself, on one story, so that a model bug cannot pass unseen."""
    code, clock = "spo2_critical", FakeClock()
    model = SpecModel(AlarmsSection(), clock)
    model.start({})
    model.sample(97, 74, "ok")
    model.tick()
    assert model.states() == {}
    model.sample(80, 74, "ok")
    clock.advance(5)
    model.sample(80, 74, "ok")
    assert model.states() == {code: "active"}
    model.ack(code)
    model.sample(79, 74, "ok")
    assert model.states() == {code: "acknowledged"}
    model.sample(78, 74, "ok")  # 2 below the value at acknowledgement
    assert model.states() == {code: "active"}
    clock.advance(60)
    model.sample(78, 74, "ok")
    model.tick()
    assert model.escalated() == {code} and model.sounding() == "high"
    model.sample(97, 74, "ok")
    model.tick()
    assert model.states() == {code: "latched"}
    assert model.end() == [(code, "high", "latched")]


def test_an_alarm_raised_before_the_session_survives_a_restart(tmp_path: Path) -> None:
    clock = FakeClock()
    h = Harness(tmp_path, clock=clock)
    h.ok("emergency", reason="collapsed in the waiting room")
    h.plan()
    h.ok("start_session")
    assert "emergency" in h.room.alarms.alarms
    h.close()
    rebuilt = Harness(tmp_path, clock=clock)
    try:
        assert "emergency" in rebuilt.room.alarms.alarms
    finally:
        rebuilt.close()
