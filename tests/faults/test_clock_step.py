"""The wall clock steps ±1 h (NTP, a technician, a Pi without a battery clock) mid-session.

In-process: ``tests.controller.harness.Harness`` (the real Room on fakes) with a ``FakeClock``
whose ``step_wall`` moves only the wall clock while ``advance`` moves both. Time is driven one
second at a time and every journal event is stamped with the monotonic second it appeared in,
so "at exactly 40:00 of monotonic time" is checked to the second.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from controller.clock import FakeClock
from controller.events import LinkDown
from controller.models import Event
from tests.controller.harness import Harness

INFUSION_S = 40 * 60
NIBP_S = 10 * 60


class Stepper:
    """Drives a Harness second by second; keeps (monotonic second, event) for new events."""

    def __init__(self, h: Harness) -> None:
        self.h = h
        self.t0 = h.clock.monotonic()
        self.last_seq = h.journal.last_seq
        self.log: list[tuple[float, Event]] = []

    def collect(self) -> None:
        for e in self.h.journal.events_since(self.last_seq + 1, 10_000):
            self.log.append((self.h.clock.monotonic() - self.t0, e))
            self.last_seq = e.seq

    def second(self, spo2: int = 97, hr: int = 74) -> None:
        h = self.h
        h.clock.advance(1.0)
        h.vitals(spo2, hr)
        h.room.tick()
        h.drain()
        if h.nibp.measuring:  # the module measures at once: no overdue alarm muddles things
            h.nibp.finish(121, 77, 70)
            h.drain()
        self.collect()

    def at(self, type_: str) -> list[float]:
        """The monotonic seconds (since the stepper began) of every event of ``type_``."""
        return [t for t, e in self.log if e.type == type_]

    def first(self, type_: str) -> Event:
        return next(e for _, e in self.log if e.type == type_)


@pytest.mark.parametrize(
    "steps",
    [{300: +3600}, {300: -3600}, {300: +3600, 1500: -3600}, {900: -3600, 2100: -3600}],
    ids=["+1h", "-1h", "+1h-then-1h", "-1h-twice"],
)
def test_infusion_and_nibp_keep_monotonic_time(tmp_path: Path, steps: dict[int, int]) -> None:
    h = Harness(tmp_path)
    h.to_infusion_running()
    run = Stepper(h)  # t0 = the monotonic instant of infusion_started
    started = h.journal.last_event("infusion_started")
    assert started is not None
    for s in range(1, INFUSION_S + 61):
        if s in steps:
            h.clock.step_wall(steps[s])
        run.second()
    completed = run.at("infusion_completed")
    assert completed == [INFUSION_S], f"infusion_completed at {completed}, not [{INFUSION_S}]"
    event = run.first("infusion_completed")
    assert event.data["elapsed_s"] == INFUSION_S
    assert h.room.state().infusion.elapsed_s == INFUSION_S
    assert run.at("nibp_due") == [NIBP_S, 2 * NIBP_S, 3 * NIBP_S, 4 * NIBP_S]
    # The wall clock is what the timestamps say: the steps are in them, and nowhere else.
    wall = (event.ts - started.ts).total_seconds()
    assert wall == INFUSION_S + sum(steps.values())
    assert "nibp_overdue" not in h.room.alarms.alarms
    h.close()


@pytest.mark.parametrize("step", [+3600, -3600], ids=["+1h", "-1h"])
def test_alarm_escalation_and_silence_keep_monotonic_time(tmp_path: Path, step: int) -> None:
    h = Harness(tmp_path)
    h.to_infusion_running()
    h.deliver(LinkDown())  # the room annunciates by itself only while the tablet is away
    run = Stepper(h)
    while not run.at("alarm_raised"):
        run.second(spo2=80)
        assert h.clock.monotonic() - run.t0 < 60, "no SpO2 alarm raised"
    raised = run.at("alarm_raised")[0]
    alarm = run.first("alarm_raised").data["alarm"]
    assert alarm["code"] == "spo2_critical" and alarm["priority"] == "high"
    escalate_after = h.room.alarms.limits.escalate_after_s
    for _ in range(10):
        run.second(spo2=80)
    h.clock.step_wall(step)  # 10 s after the alarm: escalation must not move
    while h.clock.monotonic() - run.t0 < raised + escalate_after + 5:
        run.second(spo2=80)
    assert run.at("alarm_escalated") == [raised + escalate_after]
    assert h.buzzer.pattern == "high"

    assert h.ok("alarm_silence", seconds=120)["seconds"] == 120
    silenced_at = h.clock.monotonic() - run.t0
    run.collect()
    patterns: dict[float, str] = {}
    for i in range(1, 131):
        if i == 30:
            h.clock.step_wall(step)  # mid-silence: a silence is not stretched or cut short
        run.second(spo2=80)
        patterns[i] = h.buzzer.pattern
    quiet = [i for i, p in patterns.items() if p == "off"]
    assert quiet == list(range(1, 120)), f"silent for {quiet[:3]}..{quiet[-3:]}, not 1..119"
    assert all(patterns[i] == "high" for i in range(120, 131))
    assert silenced_at > raised
    h.close()


@pytest.mark.parametrize("step", [0, -3600], ids=["no-step(control)", "-1h"])
def test_backward_step_does_not_make_a_stale_baseline_fresh(tmp_path: Path, step: int) -> None:
    """The safety gate's baseline NIBP age must be judged on monotonic time too.

    A blood pressure taken 20 min ago (limit 15) must not pass the gate because the wall clock
    was just stepped back an hour: it would let a patient into the infusion on a stale
    baseline. (A forward step is the safe direction: a fresh reading looks old and the gate
    refuses; the clinician measures again.)
    """
    h = Harness(tmp_path)
    h.to_pre_infusion()  # readiness, consent, NIBP just taken
    run = Stepper(h)
    for _ in range(20 * 60):
        run.second()
    h.clock.step_wall(step)
    reply = h.cmd("advance")
    assert not reply.ok and reply.error is not None, "a 20-minute-old baseline passed the gate"
    assert reply.error.code == "gate_not_met"
    assert "nibp" in reply.error.details["unmet"]
    h.close()


@pytest.mark.parametrize("step", [+3600, -3600], ids=["+1h", "-1h"])
def test_resume_after_a_step_while_the_room_was_down(tmp_path: Path, step: int) -> None:
    """What resume does when the wall clock stepped while the room was down.

    The monotonic clock does not survive a restart (a new boot starts it anew), so resume
    recomputes elapsed times from the journal's UTC timestamps.

    - +1 h while down (60 s real downtime): indistinguishable from an hour of downtime after a
      reboot without a battery clock; asserted as it is: ``session_resumed.downtime_s`` =
      3660, the infusion counts 600 + 3660 = 4260 s and ``infusion_completed`` is journaled
      at once on restart. (The guard: the ``clock_unsynced`` alarm and NTP; see
      docs/ARCHITECTURE.md, "Known limits".)
    - -1 h while down (what fake-hwclock does after a power cut: the clock restarts at its
      last save, behind the journal): the room sees the clock behind its newest event and
      does not feed the step into its timers: it replays as if no time had passed since the
      newest event (``downtime_s`` 0, ``clock_behind_s`` 3540), the infusion reads 600 s and
      completes 1800 s after the restart with ``elapsed_s`` = 2400, the next blood pressure
      is due 600 s after it, and ``clock_behind`` is raised. Before issue 14 the step went
      into the timers: the infusion read 0 s and completed 5340 s after the restart, the
      next blood pressure 4140 s after it.
    """
    clock1 = FakeClock()
    h1 = Harness(tmp_path, clock=clock1)
    h1.to_infusion_running()
    run = Stepper(h1)
    for _ in range(NIBP_S):
        run.second()
    assert run.at("nibp_due") == [NIBP_S]
    h1.close()  # the process is gone; every event was committed when it was journaled

    down_s = 60
    clock2 = FakeClock(start=clock1.now() + timedelta(seconds=down_s + step), monotonic=50_000.0)
    h2 = Harness(tmp_path, clock=clock2)
    resumed = h2.journal.last_event("session_resumed")
    assert resumed is not None and resumed.data["phase"] == "infusion"
    completed = h2.journal.last_event("infusion_completed")
    if step > 0:
        assert resumed.data["downtime_s"] == down_s + step
        assert completed is not None, "the infusion completes at once on restart"
        assert completed.seq > resumed.seq
        assert completed.data["elapsed_s"] == NIBP_S + down_s + step  # 4260, not 2400
    else:
        assert resumed.data["downtime_s"] == 0.0  # max(0, 60 - 3600)
        assert resumed.data["clock_behind_s"] == -(down_s + step)  # 3540
        assert "clock_behind" in [a.code for a in h2.room.alarms.current()]
        assert completed is None
        assert h2.room.state().infusion.elapsed_s == NIBP_S  # as at the newest event
        left = h2.room.timers.remaining("infusion_end")
        assert left == INFUSION_S - NIBP_S  # 1800 s from the restart, not 5340
        assert h2.room.timers.remaining("nibp") == NIBP_S  # 600 s, not 4140
        run2 = Stepper(h2)
        h2.clock.advance(left - 1)
        h2.room.tick()
        h2.drain()
        assert h2.journal.last_event("infusion_completed") is None
        run2.second()
        done = h2.journal.last_event("infusion_completed")
        assert done is not None and done.data["elapsed_s"] == INFUSION_S
    h2.close()
