"""The session's facts alone: what each journal event leaves in ``SessionState``."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from typing import Any

import pytest

from controller.clock import FakeClock
from controller.config import ProtocolSection
from controller.models import Event, SessionPlan
from controller.state import SessionState
from tests.controller.harness import make_config, plan_dict

INFUSION_S = ProtocolSection().infusion_minutes * 60


class Facts:
    """A ``SessionState`` fed events by hand, stamped with the fake clock's time."""

    def __init__(self, **config: Any) -> None:
        self.clock = FakeClock()
        self.config = make_config(**config)
        self.state = SessionState(self.config, self.clock)
        self._seq = itertools.count(1)

    def apply(
        self, type_: str, data: dict[str, Any] | None = None, ts: datetime | None = None
    ) -> Event:
        event = Event(
            seq=next(self._seq),
            ts=ts or self.clock.now(),
            session_id=self.state.session_id,
            type=type_,
            data=data or {},
        )
        self.state.apply(event)
        return event

    def start(self, tracks: list[str] | None = None, **plan: Any) -> None:
        self.apply("session_started", {"plan": plan_dict(**plan), "tracks": tracks or []})
        self.apply("phase_changed", {"from": "idle", "to": "check_in", "by": "x"})

    def start_infusion(self, target_s: float = INFUSION_S) -> None:
        self.apply("infusion_started", {"target_s": target_s, "by": "x"})


@pytest.fixture
def f() -> Facts:
    return Facts()


def test_a_new_room_is_idle_with_the_configured_protocol(f: Facts) -> None:
    s = f.state
    assert (s.phase, s.session_id, s.plan, s.pending_plan) == ("idle", None, None, None)
    assert not s.active
    assert s.music_mode is None
    assert s.protocol == f.config.protocol
    assert s.infusion_target_s == INFUSION_S
    assert s.phase_elapsed_s() == 0.0
    assert s.infusion_elapsed_s() == 0.0
    assert s.checkin_done


def test_session_configured_sets_the_pending_plan_only(f: Facts) -> None:
    f.apply("session_configured", {"plan": plan_dict(session_id="s-2"), "tracks": ["a", "b"]})
    s = f.state
    assert s.pending_plan == SessionPlan.model_validate(plan_dict(session_id="s-2"))
    assert s.pending_tracks == ["a", "b"]
    assert (s.phase, s.session_id, s.plan, s.tracks) == ("idle", None, None, [])


def test_session_started_takes_the_plan_and_clears_the_pending_one(f: Facts) -> None:
    f.apply("session_configured", {"plan": plan_dict(), "tracks": ["a.ogg"]})
    f.apply("session_started", {"plan": plan_dict(), "tracks": ["a.ogg", "b.ogg"]})
    s = f.state
    assert s.session_id == "s-001"
    assert s.plan is not None and s.plan.patient_ref == "P-7F3A"
    assert s.tracks == ["a.ogg", "b.ogg"]
    assert s.pending_plan is None
    assert s.music_mode == "music"
    # A started session is at check-in from its first event (a room killed before the
    # phase_changed that follows must not resume a running session in idle).
    assert s.phase == "check_in"
    assert s.phase_started_at == f.clock.now()


def test_session_started_applies_the_plans_protocol_overrides(f: Facts) -> None:
    overrides = {"infusion_minutes": 30, "nibp_interval_minutes": 15, "call_escalate_s": 12}
    f.start(protocol=overrides)
    p = f.state.protocol
    assert (p.infusion_minutes, p.nibp_interval_minutes, p.call_escalate_s) == (30, 15, 12)
    assert p.checkin_interval_minutes == f.config.protocol.checkin_interval_minutes
    assert f.state.infusion_target_s == 30 * 60


def test_overrides_end_with_their_session(f: Facts) -> None:
    f.start(protocol={"infusion_minutes": 30})
    f.apply("session_ended", {"reason": "x", "by": "x"})
    assert f.state.protocol == f.config.protocol
    f.start(session_id="s-002")
    assert f.state.protocol == f.config.protocol
    assert f.state.infusion_target_s == INFUSION_S


def test_the_configured_protocol_is_the_base_of_the_overrides() -> None:
    f = Facts(protocol={"infusion_minutes": 20, "checkin_interval_minutes": 7})
    f.start(protocol={"nibp_interval_minutes": 12})
    p = f.state.protocol
    assert (p.infusion_minutes, p.checkin_interval_minutes, p.nibp_interval_minutes) == (20, 7, 12)
    assert f.state.infusion_target_s == 20 * 60


def test_session_started_resets_what_the_last_session_left(f: Facts) -> None:
    f.start()
    f.apply("confirmed", {"item": "consent", "by": "dr-a"})
    f.start_infusion()
    f.apply("infusion_completed", {})
    f.apply("debrief_ready", {})
    f.apply("emergency", {"reason": "r", "by": "x"})
    f.apply("checkin_due", {})
    f.start(session_id="s-002", music_mode="no_music")
    s = f.state
    assert s.session_id == "s-002"
    assert s.confirmed == {}
    assert not (s.infusion_running or s.infusion_completed or s.infusion_stopped)
    assert s.infusion_started_at is None and s.infusion_elapsed_s() == 0.0
    assert not s.debrief_ready_sent and not s.emergency_declared and s.checkin_done
    assert s.music_mode == "no_music"


def test_phase_changed_sets_the_phase_and_times_it(f: Facts) -> None:
    f.start()
    started = f.clock.now()
    assert f.state.phase == "check_in" and f.state.active
    assert f.state.phase_started_at == started
    f.clock.advance(7.25)
    assert f.state.phase_elapsed_s() == 7.25
    f.clock.step_wall(-600)  # NTP steps the wall clock back: the phase's time goes on
    f.clock.advance(1)
    assert f.state.phase_elapsed_s() == 8.25
    f.apply("phase_changed", {"from": "check_in", "to": "integration", "by": "x"})
    assert f.state.phase == "integration"
    assert f.state.phase_elapsed_s() == 0.0


def test_a_replayed_phase_change_is_timed_from_its_timestamp(f: Facts) -> None:
    # After a restart the journal's events are in the past: elapsed time counts from them.
    f.apply(
        "phase_changed",
        {"from": "idle", "to": "check_in", "by": "x"},
        ts=f.clock.now() - timedelta(seconds=90),
    )
    assert f.state.phase_elapsed_s() == 90.0


def test_confirmed_items_and_who_confirmed(f: Facts) -> None:
    f.start()
    f.apply("confirmed", {"item": "readiness", "by": "dr-a"})
    f.apply("confirmed", {"item": "consent", "by": "dr-b"})
    assert f.state.confirmed == {"readiness": "dr-a", "consent": "dr-b"}


def test_infusion_runs_on_the_monotonic_clock(f: Facts) -> None:
    f.start()
    f.start_infusion(target_s=600)
    s = f.state
    assert s.infusion_running and s.infusion_target_s == 600
    assert s.infusion_started_at == f.clock.now()
    f.clock.advance(100)
    assert s.infusion_elapsed_s() == 100
    f.clock.step_wall(3600)
    assert s.infusion_elapsed_s() == 100, "a wall-clock step moves nothing"
    f.clock.step_wall(-7200)
    assert s.infusion_elapsed_s() == 100
    f.clock.advance(20)
    assert s.infusion_elapsed_s() == 120


def test_infusion_elapsed_is_frozen_on_completion(f: Facts) -> None:
    f.start()
    f.start_infusion()
    f.clock.advance(INFUSION_S)
    f.apply("infusion_completed", {"elapsed_s": INFUSION_S})
    f.clock.advance(300)
    s = f.state
    assert s.infusion_elapsed_s() == INFUSION_S
    assert (s.infusion_running, s.infusion_completed, s.infusion_stopped) == (False, True, False)


def test_infusion_elapsed_is_frozen_when_stopped(f: Facts) -> None:
    f.start()
    f.start_infusion()
    f.clock.advance(65)
    f.apply("infusion_stopped", {"reason": "nausea", "by": "x"})
    f.clock.advance(300)
    s = f.state
    assert s.infusion_elapsed_s() == 65
    assert (s.infusion_running, s.infusion_completed, s.infusion_stopped) == (False, False, True)


def test_a_stop_after_completion_keeps_the_completed_time(f: Facts) -> None:
    f.start()
    f.start_infusion(target_s=60)
    f.clock.advance(60)
    f.apply("infusion_completed", {})
    f.clock.advance(30)
    f.apply("infusion_stopped", {"reason": "emergency", "by": "x"})
    assert f.state.infusion_elapsed_s() == 60


def test_a_replayed_infusion_counts_from_its_start(f: Facts) -> None:
    f.start()
    f.apply("infusion_started", {"target_s": 600}, ts=f.clock.now() - timedelta(seconds=250))
    assert f.state.infusion_elapsed_s() == 250
    f.apply("infusion_stopped", {"reason": "r"}, ts=f.clock.now() - timedelta(seconds=50))
    assert f.state.infusion_elapsed_s() == 200


def test_debrief_emergency_and_checkins(f: Facts) -> None:
    f.start()
    f.apply("debrief_ready", {})
    assert f.state.debrief_ready_sent
    f.apply("checkin_due", {"escalated": False})
    assert not f.state.checkin_done
    f.apply("checkin_recorded", {"by": "x"})
    assert f.state.checkin_done
    assert not f.state.emergency_declared
    f.apply("emergency", {"reason": "r", "by": "x"})
    assert f.state.emergency_declared


def test_session_ended_ends_and_resets(f: Facts) -> None:
    f.start()
    f.apply("confirmed", {"item": "consent", "by": "x"})
    f.start_infusion()
    f.clock.advance(10)
    f.apply("phase_changed", {"from": "infusion", "to": "ended", "by": "x"})
    f.apply("session_ended", {"reason": "r", "by": "x"})
    s = f.state
    assert s.phase == "ended" and not s.active
    assert (s.session_id, s.plan, s.tracks, s.confirmed) == (None, None, [], {})
    assert not s.infusion_running and s.infusion_elapsed_s() == 0.0
    assert s.music_mode is None


def test_other_events_change_nothing(f: Facts) -> None:
    f.start()
    before = dict(vars(f.state))
    for type_ in ("lighting_changed", "call_placed", "alarm_raised", "nibp_due", "note"):
        f.apply(type_, {"anything": 1})
    assert vars(f.state) == before
