"""The room's wiring: its tables cover every verb, timer and inbox message; its one fold."""

from __future__ import annotations

import json
import typing
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from controller import events as ev
from controller.clock import FakeClock
from controller.journal import Journal
from controller.models import COMMANDS, Event, SessionPlan
from controller.phases import VERB_PHASES
from controller.room import STALE_CHECK_S, Room
from controller.timers import Timers
from mqtt_bridge.fake import FakeLink
from tests.controller.harness import ALL_OK, Harness, make_config, plan_dict


def spy_on_timers(timers: Timers) -> set[str]:
    """Every name the room's parts arm on ``timers`` from now on."""
    armed: set[str] = set()
    set_at, set_in = timers.set_at, timers.set_in

    def at(name: str, due: datetime) -> None:
        armed.add(name)
        set_at(name, due)

    def in_(name: str, seconds: float) -> datetime:
        armed.add(name)
        return set_in(name, seconds)

    timers.set_at = at  # type: ignore[method-assign]
    timers.set_in = in_  # type: ignore[method-assign]
    return armed


@pytest.fixture
def bare(tmp_path: Path) -> Iterator[Room]:
    """A room with nothing but a journal and a link."""
    journal = Journal(tmp_path / "journal.sqlite")
    yield Room(make_config(), clock=FakeClock(), journal=journal, link=FakeLink())
    journal.close()


# --- the tables ---------------------------------------------------------------------------------


def test_the_verb_table_is_exactly_the_contracts_verbs(room: Harness) -> None:
    verbs = room.room.commands.verbs
    assert set(verbs) == set(COMMANDS) == set(VERB_PHASES)
    for name, verb in verbs.items():
        assert verb.model is COMMANDS[name], name
        assert verb.phases == VERB_PHASES[name], name


def test_every_timer_a_part_arms_has_a_handler(room: Harness, tmp_path: Path) -> None:
    armed = spy_on_timers(room.room.timers)
    # A music session: the infusion's end, NIBP on schedule (one left overdue), a call
    # escalated, acknowledged and come back as a reminder.
    room.to_infusion_running()
    room.run(10 * 60)
    assert room.nibp.measuring
    room.run(5 * 60)  # the due measurement not taken: overdue
    assert "nibp_overdue" in [a.code for a in room.room.alarms.current()]
    room.nibp.finish()
    room.button.press()
    room.run(room.config.protocol.call_escalate_s)
    room.ok("call_ack")
    room.run(room.config.protocol.call_reminder_s)
    room.ok("call_clear")
    room.run(30 * 60)
    room.audio.finish()
    room.drain()
    room.ok("advance")  # to the debrief, which is timed against [protocol] debrief_minutes
    room.run(room.config.protocol.debrief_minutes[1] * 60)
    assert [d["bound"] for d in room.events("debrief_due")] == ["least", "most"]
    room.ok("end_session", reason="test: the session ends here")
    # A session without music: check-ins.
    room.to_infusion_running(session_id="s-002", music_mode="no_music")
    room.run(room.config.protocol.checkin_interval_minutes * 60 * 2)
    assert room.events("checkin_due")
    # A room without an oximeter: SpO2 and heart rate by hand, prompted.
    config = make_config(room={"id": "room-1", "monitoring": "manual"})
    manual = Harness(tmp_path / "manual", config, devices={**ALL_OK, "oximeter": "absent"})
    manual_armed = spy_on_timers(manual.room.timers)
    manual.to_infusion_running()
    manual.run(config.protocol.manual_interval_minutes * 60 * 2)
    assert manual.events("vitals_due")
    armed |= manual_armed
    manual.close()
    handlers = set(room.room._timer_handlers)
    assert armed <= handlers, f"armed without a handler: {armed - handlers}"
    assert armed == handlers, f"handlers never armed in a whole session: {handlers - armed}"


def test_the_input_table_covers_every_inbox_message(bare: Room) -> None:
    messages = set(typing.get_args(ev.InboxMessage))
    assert set(bare._inputs) == messages - {ev.Shutdown, ev.SimAction}


def test_sim_actions_go_to_the_simulator_only_when_there_is_one(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal.sqlite")
    got: list[ev.SimAction] = []
    room = Room(
        make_config(), clock=FakeClock(), journal=journal, link=FakeLink(), simulator=got.append
    )
    assert set(room._inputs) == set(typing.get_args(ev.InboxMessage)) - {ev.Shutdown}
    action = ev.SimAction("spo2", {"value": 85})
    room.handle(action)
    assert got == [action]
    journal.close()


def test_a_message_without_a_handler_changes_nothing(
    bare: Room, caplog: pytest.LogCaptureFixture
) -> None:
    bare.handle(ev.SimAction("spo2"))
    bare.handle(ev.Shutdown())
    assert bare.journal.last_seq == 0
    assert "no handler for SimAction" in caplog.text


# --- the fold -----------------------------------------------------------------------------------


def _event(room: Room, seq: int, type_: str, data: dict[str, Any], at: float = 0) -> Event:
    ts = room.clock.now() + timedelta(seconds=at)
    return Event(seq=seq, ts=ts, session_id="s-001", type=type_, data=data)


def test_apply_runs_every_parts_fold(bare: Room) -> None:
    plan = SessionPlan.model_validate(plan_dict(protocol={"call_escalate_s": 20}))
    alarm = {
        "id": "x-1",
        "code": "spo2_low",
        "kind": "physiological",
        "priority": "medium",
        "state": "active",
        "raised_at": "2026-01-05T09:00:00.000Z",
        "message": "m",
    }
    script: list[tuple[str, dict[str, Any]]] = [
        ("session_started", {"plan": plan.model_dump(mode="json"), "tracks": ["a.ogg", "b.ogg"]}),
        ("phase_changed", {"from": "idle", "to": "infusion", "by": "x"}),
        ("device_lost", {"device": "nibp", "status": "lost"}),
        ("lighting_changed", {"scene": "infusion", "level": 0.05}),
        ("music_started", {"playlist": ["a.ogg", "b.ogg"]}),
        ("track_started", {"track": "b.ogg"}),
        ("call_placed", {}),
        ("nibp_result", {"sys": 120, "dia": 80, "map": 93, "hr": 70, "source": "fake"}),
        ("alarm_raised", {"alarm": alarm}),
        ("infusion_started", {"target_s": 600}),
    ]
    for seq, (type_, data) in enumerate(script, 1):
        bare.apply(_event(bare, seq, type_, data))
    assert bare.session.state.phase == "infusion"  # SessionState
    assert bare.health.devices["nibp"] == "lost"  # Health
    assert (bare.lights.scene, bare.lights.level) == ("infusion", 0.05)  # Lights
    assert (bare.music.playing, bare.music.track_index) == (True, 1)  # Music
    assert bare.calls.state == "placed"  # Calls
    assert bare.timers.remaining("call_escalate") == 20, "the plan's protocol, folded first"
    assert bare.monitoring.latest_nibp is not None  # Monitoring
    assert bare.timers.remaining("nibp") == 10 * 60
    assert [a.code for a in bare.alarms.current()] == ["spo2_low"]  # AlarmEngine
    # SessionMachine: the infusion's end is armed from the target the same event set in
    # SessionState, so the facts must be folded before the session machine.
    assert bare.timers.remaining("infusion_end") == 600
    assert bare.journal.last_seq == 0, "a fold journals nothing"


def test_a_resumed_room_holds_what_the_fold_left(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    h.to_infusion_running()
    h.run(90)
    h.button.press()
    h.drain()
    h.journal.close()
    again = Harness(tmp_path, clock=h.clock)
    r, before = again.room, h.room
    assert r.phase == before.phase == "infusion"
    assert r.calls.state == "placed"
    assert r.music.track == before.music.track
    assert r.timers.remaining("infusion_end") == pytest.approx(40 * 60 - 90)
    assert r.timers.remaining("nibp") == before.timers.remaining("nibp")
    again.close()


# --- the loop's entry points --------------------------------------------------------------------


def test_next_deadline_wakes_the_loop_every_second_while_watching(room: Harness) -> None:
    now = room.clock.monotonic()
    assert room.room.next_deadline() > now + STALE_CHECK_S, "idle: nothing watched"
    room.plan()
    room.ok("start_session")
    assert room.room.next_deadline() <= room.clock.monotonic() + STALE_CHECK_S


def test_tick_fires_every_due_timer_earliest_first(room: Harness) -> None:
    room.to_infusion_running()
    room.clock.advance(40 * 60)  # the first NIBP (10 min) and the infusion's end, both due
    room.room.tick()
    room.drain()
    types = room.types()
    assert types.index("nibp_due") < types.index("infusion_completed")


def test_the_plans_alarm_limits_are_in_force_for_its_session(room: Harness) -> None:
    # mqtt-api.md: a plan's `alarms` override the room's [alarms] for this session only.
    default = room.config.alarms.spo2_low
    assert default.limit == 92
    override = {"spo2_low": {"limit": 88, "priority": "medium", "delay_s": default.delay_s}}
    room.plan(alarms=override)
    room.ok("start_session")
    room.run(default.delay_s * 3, step=1, spo2=90)
    assert "spo2_low" not in [a.code for a in room.room.alarms.current()]
    room.ok("end_session", reason="test: the session ends here")
    room.plan(session_id="s-002")
    room.ok("start_session")
    room.run(default.delay_s * 3, step=1, spo2=90)
    assert "spo2_low" in [a.code for a in room.room.alarms.current()]


def test_the_plans_alarm_limits_hold_after_a_restart(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    override = {"spo2_low": {"limit": 88, "priority": "medium", "delay_s": 10}}
    h.plan(alarms=override)
    h.ok("start_session")
    h.close()
    again = Harness(tmp_path, clock=h.clock)
    again.run(30, step=1, spo2=90)
    assert "spo2_low" not in [a.code for a in again.room.alarms.current()]
    assert again.room.alarms.limits.spo2_low.limit == 88
    again.close()


def test_the_state_carries_what_the_clinical_forms_are_recorded_against(tmp_path: Path) -> None:
    # The tablet's debrief offers the clinic's side effects as checkboxes and prefills the
    # dose: `[protocol]` says what they are; the room publishes them on `state`.
    config = {"side_effects": ["Nausea", "Dizziness"], "dose_mg_per_kg": 0.75}
    h = Harness(tmp_path, config=make_config(protocol=config))
    try:
        idle = h.room.state().protocol
        assert idle.side_effects == ["Nausea", "Dizziness"]
        assert idle.dose_mg_per_kg == 0.75
        assert (idle.debrief_minutes, idle.playlist_minutes) == ((20, 30), (50, 60))
        h.plan()
        h.ok("start_session")
        state = h.room.state()
        assert state.protocol.side_effects == ["Nausea", "Dizziness"]
        assert json.loads(state.to_json())["protocol"]["dose_mg_per_kg"] == 0.75
    finally:
        h.close()
