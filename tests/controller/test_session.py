"""The whole session through the core, on a fake clock: phases, gates, timers, commands."""

from __future__ import annotations

import json

import pytest

from controller.commands import COALESCE_S
from controller.events import CommandReceived, LinkDown, LinkUp
from tests.controller.harness import Harness, make_config

INFUSION_S = 40 * 60


def finish_scheduled_nibp(h: Harness) -> None:
    if h.nibp.measuring:
        h.nibp.finish(128, 82, 78)
        h.drain()


def test_whole_session_music_mode(room: Harness) -> None:
    room.plan()
    assert room.types()[-1] == "session_configured"
    assert room.ok("start_session") == {"session_id": "s-001"}
    assert room.room.phase == "check_in"
    for expected in ("integration", "intentions", "pre_infusion"):
        assert room.ok("advance") == {"phase": expected}
    room.ok("confirm", item="readiness")
    room.ok("confirm", item="consent")
    room.vitals(97, 72)
    room.ok("nibp_now")
    room.nibp.finish(121, 77, 70)
    room.drain()
    assert room.ok("advance") == {"phase": "infusion"}
    room.ok("confirm", item="iv_line")
    assert room.ok("start_infusion") == {"target_s": INFUSION_S}
    assert room.audio.calls[0] == ("play", (["a.ogg", "b.ogg", "c.ogg"], 0, 0.0))
    assert room.lighting.calls[-1][0] == "infusion"

    # NIBP every 10 minutes through the infusion, measured by the module each time.
    for _ in range(4):
        room.run(10 * 60)
        finish_scheduled_nibp(room)
    assert len(room.events("nibp_due")) == 4
    assert len([e for e in room.events("nibp_requested") if e["by"] == "schedule"]) == 4
    assert room.types().count("infusion_completed") == 1
    assert room.room.session.state.infusion_completed
    # Music still playing: debrief is not ready until the playlist ends.
    assert "debrief_ready" not in room.types()
    room.run(8 * 60)
    room.audio.finish()
    room.drain()
    assert room.types()[-1] == "debrief_ready"
    assert room.events("music_stopped")[-1]["reason"] == "playlist_ended"

    for expected in ("debrief", "preparation", "discharge"):
        assert room.ok("advance") == {"phase": expected}
    # Entering discharge asks for a blood pressure.
    finish_scheduled_nibp(room)
    room.run(5)
    room.ready_to_leave()
    result = room.ok("discharge")
    assert result == {"phase": "ended"}
    tail = room.types()[-4:]
    assert tail[:3] == ["discharged", "phase_changed", "session_ended"]
    assert room.events("session_ended")[-1] == {
        "reason": "discharged",
        "by": "dr-lee",
        "discharged": True,
        "from_phase": "discharge",
        "open_alarms": [],
    }

    # The journal is contiguous and every event reached the link, in order.
    seqs = [e.seq for e in room.journal.events_since(1, 100_000)]
    assert seqs == list(range(1, len(seqs) + 1))
    assert [e.seq for e in room.link.events] == seqs
    phases = [e["to"] for e in room.events("phase_changed")]
    assert phases == [
        "check_in",
        "integration",
        "intentions",
        "pre_infusion",
        "infusion",
        "debrief",
        "preparation",
        "discharge",
        "ended",
    ]


def test_no_music_mode_checkins_and_debrief_ready(room: Harness) -> None:
    room.to_infusion_running(music_mode="no_music", playlist=[])
    assert room.audio.calls == []
    room.run(5 * 60)
    assert room.events("checkin_due") == [
        {"escalated": False, "next_due_at": "2026-01-05T09:10:00.000Z"}
    ]
    room.run(5 * 60)  # nobody checked in
    assert room.events("checkin_due")[-1]["escalated"] is True
    room.ok("checkin", note="calm, eyes closed")
    room.run(5 * 60)
    assert room.events("checkin_due")[-1]["escalated"] is False
    room.run(INFUSION_S - 15 * 60)
    assert "debrief_ready" in room.types()
    assert room.types().index("debrief_ready") == room.types().index("infusion_completed") + 1
    room.ok("advance")
    count = len(room.events("checkin_due"))
    room.run(10 * 60)
    assert len(room.events("checkin_due")) == count  # prompts stop after the infusion phase


def test_safety_gate_unmet_lists_everything(room: Harness) -> None:
    room.plan()
    room.ok("start_session")
    for _ in range(3):
        room.ok("advance")
    reply = room.cmd("advance")
    assert not reply.ok and reply.error is not None
    assert reply.error.code == "gate_not_met"
    assert set(reply.error.details["unmet"]) == {"readiness", "consent", "nibp", "spo2", "hr"}
    assert room.room.phase == "pre_infusion"
    checked = room.events("gate_checked")[-1]
    assert checked["met"] is False and checked["gate"] == "safety"


def test_safety_gate_old_baseline_and_low_spo2(room: Harness) -> None:
    room.to_pre_infusion()
    room.run(16 * 60, spo2=91)
    reply = room.cmd("advance")
    assert reply.error is not None and reply.error.code == "gate_not_met"
    unmet = reply.error.details["unmet"]
    assert set(unmet) == {"nibp", "spo2"}
    assert "16 min old" in unmet["nibp"]
    assert "SpO2 91 below 92" in unmet["spo2"]


def test_safety_gate_blood_pressure_above_limit(room: Harness) -> None:
    room.to_pre_infusion()
    room.ok("record_vitals", sys=185, dia=95)
    reply = room.cmd("advance")
    assert reply.error is not None and "185/95" in reply.error.details["unmet"]["nibp"]


def test_override_passes_gate_and_is_recorded(room: Harness) -> None:
    room.plan()
    room.ok("start_session")
    for _ in range(3):
        room.ok("advance")
    room.ok("confirm", item="readiness")
    room.ok("confirm", item="consent")
    result = room.ok("advance", override={"reason": "monitor BP taken by hand, 118/76"})
    assert result == {"phase": "infusion"}
    checked = room.events("gate_checked")[-1]
    assert checked["met"] is False
    assert checked["override"] == {"reason": "monitor BP taken by hand, 118/76", "by": "dr-lee"}


def test_start_infusion_needs_iv_line(room: Harness) -> None:
    room.to_pre_infusion()
    room.ok("advance")
    reply = room.cmd("start_infusion")
    assert reply.error is not None and reply.error.code == "gate_not_met"
    assert list(reply.error.details["unmet"]) == ["iv_line"]
    assert not room.room.session.state.infusion_running
    room.ok("start_infusion", override={"reason": "line checked by anaesthetist"})
    assert room.room.session.state.infusion_running


def test_without_an_oximeter_a_session_needs_manual_monitoring(tmp_path) -> None:
    h = Harness(tmp_path, devices={"oximeter": "absent", "nibp": "absent"})
    h.plan()
    reply = h.cmd("start_session")
    assert reply.error is not None and reply.error.code == "invalid_state"
    assert 'monitoring = "manual"' in reply.error.message
    assert h.room.phase == "idle" and "session_started" not in h.types()


def test_manual_vitals_satisfy_the_gate_without_an_oximeter(tmp_path) -> None:
    config = make_config(room={"id": "room-1", "monitoring": "manual"})
    h = Harness(tmp_path, config, devices={"oximeter": "absent", "nibp": "absent"})
    h.plan()
    h.ok("start_session")
    for _ in range(3):
        h.ok("advance")
    h.ok("confirm", item="readiness")
    h.ok("confirm", item="consent")
    reply = h.cmd("nibp_now")
    assert reply.error is not None and reply.error.code == "device_unavailable"
    h.ok("record_vitals", sys=120, dia=80, hr=70, spo2=98)
    h.clock.advance(60)
    assert h.ok("advance") == {"phase": "infusion"}
    assert h.link.nibp[-1].source == "manual" and h.link.nibp[-1].by == "dr-lee"
    h.close()


def test_discharge_gate(room: Harness) -> None:
    room.to_infusion_running()
    room.run(INFUSION_S)
    finish_scheduled_nibp(room)
    room.audio.finish()  # the playlist ends
    room.drain()
    room.ok("advance")
    room.ok("advance")
    room.ok("advance")
    assert room.room.phase == "discharge"
    room.run(16 * 60, spo2=90)  # the discharge reading never came; SpO2 low
    reply = room.cmd("discharge")
    assert reply.error is not None and reply.error.code == "gate_not_met"
    assert room.room.phase == "discharge"
    assert room.ok("advance", override={"reason": "transferred to ward with monitoring"}) == {
        "phase": "ended"
    }
    assert room.events("session_ended")[-1]["reason"] == "discharged"


@pytest.mark.parametrize(
    ("verb", "args", "phase_steps", "message"),
    [
        (
            "start_infusion",
            {},
            3,
            "Can't start_infusion while in intentions: advance to pre_infusion first",
        ),
        ("discharge", {}, 2, "Can't discharge while in integration: advance to intentions first"),
        ("confirm", {"item": "consent"}, 0, "Can't confirm while in idle: no session is running"),
        ("stop_infusion", {"reason": "x"}, 2, "Can't stop_infusion while in integration"),
    ],
)
def test_wrong_phase_commands_say_what_to_do(
    room: Harness, verb: str, args: dict, phase_steps: int, message: str
) -> None:
    if phase_steps:
        room.plan()
        room.ok("start_session")
        for _ in range(phase_steps - 1):
            room.ok("advance")
    before = room.room.state().model_dump(exclude={"updated_at"})
    reply = room.cmd(verb, **args)
    assert reply.error is not None and reply.error.code == "invalid_state"
    assert reply.error.message.startswith(message)
    assert room.room.state().model_dump(exclude={"updated_at"}) == before
    assert room.events("command_rejected")[-1]["code"] == "invalid_state"


def test_advance_out_of_infusion_needs_it_finished(room: Harness) -> None:
    room.to_infusion_running()
    reply = room.cmd("advance")
    assert reply.error is not None and "infusion is running" in reply.error.message
    room.ok("stop_infusion", reason="patient asked to stop")
    assert room.events("infusion_stopped")[-1]["reason"] == "patient asked to stop"
    # The playlist still plays: leaving the infusion cuts it short only with a reason.
    reply = room.cmd("advance")
    assert reply.error is not None and reply.error.code == "invalid_state"
    assert "playlist is still playing" in reply.error.message
    assert room.room.phase == "infusion" and room.room.music.playing
    for blank in (" ", "\u200b", "."):
        reply = room.cmd("advance", reason=blank)
        assert reply.error is not None and reply.error.code == "invalid_payload", blank
    assert room.ok("advance", reason="patient wants quiet") == {"phase": "debrief"}
    stopped = room.events("music_stopped")[-1]
    assert stopped == {"reason": "phase_changed", "by": "dr-lee", "note": "patient wants quiet"}


def test_emergency(room: Harness) -> None:
    room.to_infusion_running()
    room.run(60)
    room.ok("emergency", reason="laryngospasm")
    assert room.lighting.calls[-1][0] == "emergency"
    assert room.lighting.calls[-1][1] == 1.0 and room.lighting.calls[-1][3] == 0.0
    assert ("stop", (False,)) in room.audio.calls
    assert room.events("infusion_stopped")[-1]["reason"] == "emergency"
    assert room.events("music_stopped")[-1]["reason"] == "emergency"
    alarm = room.events("alarm_raised")[-1]["alarm"]
    assert alarm["code"] == "emergency" and alarm["priority"] == "high"
    assert room.room.phase == "infusion"  # the patient is still there
    room.ok("advance")
    assert room.lighting.calls[-1][0] == "emergency", "phase scenes must not dim an emergency"
    room.ok("end_session", reason="transferred to ED")
    ended = room.events("session_ended")[-1]
    # Ended from the debrief without discharge, the emergency never acknowledged: both on record.
    assert {k: v for k, v in ended.items() if k != "open_alarms"} == {
        "reason": "transferred to ED",
        "by": "dr-lee",
        "discharged": False,
        "from_phase": "debrief",
    }
    assert [(a["code"], a["priority"], a["state"]) for a in ended["open_alarms"]] == [
        ("emergency", "high", "active")
    ]


def test_end_session_from_check_in(room: Harness) -> None:
    room.plan()
    room.ok("start_session")
    room.ok("end_session", reason="patient unwell, rescheduled")
    assert room.room.phase == "ended"
    reply = room.cmd("advance")
    assert reply.error is not None and reply.error.code == "invalid_state"
    # The same plan cannot run twice; a new plan can.
    assert room.cmd("start_session").error is not None
    room.plan(session_id="s-002")
    assert room.ok("start_session") == {"session_id": "s-002"}


def test_start_session_without_a_plan(room: Harness) -> None:
    reply = room.cmd("start_session")
    assert reply.error is not None and reply.error.code == "invalid_state"
    assert "no session plan" in reply.error.message


def test_inline_plan(room: Harness) -> None:
    from tests.controller.harness import plan_dict

    assert room.ok("start_session", plan=plan_dict(session_id="inline-1")) == {
        "session_id": "inline-1"
    }


BAD_PAYLOADS = [
    ("advance", b"not json", "invalid_payload"),
    ("advance", b"[1, 2, 3]", "invalid_payload"),
    ("advance", b"\xff\xfe", "invalid_payload"),
    ("advance", b'{"request_id": "x1"}', "invalid_payload"),
    ("confirm", b'{"request_id": "x2", "by": "a", "item": "everything"}', "invalid_payload"),
    ("alarm_silence", b'{"request_id": "x3", "by": "a", "seconds": 600}', "invalid_payload"),
    ("lights", b'{"request_id": "x4", "by": "a", "level": "bright"}', "invalid_payload"),
    ("advance", b'{"request_id": "x5", "by": "a", "surprise": 1}', "invalid_payload"),
    ("launch", b'{"request_id": "x6", "by": "a"}', "unknown_verb"),
    ("advance", b"{" + b" " * (70 * 1024) + b"}", "invalid_payload"),
]


def test_malformed_commands_change_nothing(room: Harness) -> None:
    room.to_pre_infusion()
    before = room.room.state().model_dump(exclude={"updated_at"})
    for verb, payload, code in BAD_PAYLOADS:
        reply = room.send(verb, payload)
        assert not reply.ok and reply.error is not None
        assert reply.error.code == code, (verb, payload[:40], reply.error)
    assert room.room.state().model_dump(exclude={"updated_at"}) == before
    # the message names the field at fault (a second later: the burst above is journaled,
    # coalesced, when its interval is over)
    room.clock.advance(COALESCE_S)
    reply = room.send("confirm", b'{"request_id": "y", "by": "a", "item": 3}')
    assert reply.error is not None and "'item'" in reply.error.message
    rejected = room.events("command_rejected")
    assert sum(e.get("count", 1) for e in rejected) == len(BAD_PAYLOADS) + 1
    assert len(rejected) < len(BAD_PAYLOADS), "a burst of refusals is not one event each"


def test_duplicate_request_id_is_not_run_twice(room: Harness) -> None:
    room.plan()
    room.ok("start_session")
    payload = json.dumps({"request_id": "same", "by": "dr-lee"}).encode()
    first = room.send("advance", payload)
    assert first.ok and room.room.phase == "integration"
    again = room.send("advance", payload)
    assert again.error is not None and again.error.code == "duplicate"
    assert again.error.details["first_reply"]["result"] == {"phase": "integration"}
    assert room.room.phase == "integration"
    assert len(room.events("phase_changed")) == 2


def test_reply_goes_to_response_topic_with_correlation(room: Harness) -> None:
    payload = json.dumps({"request_id": "q1", "by": "t"}).encode()
    room.deliver(CommandReceived("status", payload, "tablet/7/replies", b"corr-7"))
    reply, topic, corr = room.link.replies[-1]
    assert reply.ok and reply.result is not None and reply.result["room_id"] == "room-1"
    assert (topic, corr) == ("tablet/7/replies", b"corr-7")


def test_events_command_pages_within_payload_limit(room: Harness) -> None:
    room.to_infusion_running()
    room.run(20 * 60, step=1)
    result = room.ok("events", since_seq=1, limit=1000)
    got = result["events"]
    assert got[0]["seq"] == 1
    assert [e["seq"] for e in got] == list(range(1, len(got) + 1))
    assert result["last_seq"] == room.journal.last_seq
    reply = room.cmd("events", since_seq=1, limit=1000)
    assert len(reply.to_json()) <= 64 * 1024


def test_events_published_while_offline_follow_after_reconnect(room: Harness) -> None:
    room.plan()
    room.ok("start_session")
    room.deliver(LinkDown())
    published = len(room.link.events)
    room.ok("advance")
    room.ok("advance")
    assert len(room.link.events) == published  # nothing goes on the wire while offline
    room.clock.advance(30)
    room.deliver(LinkUp())
    # The backlog goes out oldest first, link_restored in its place: all in seq order.
    seqs = [e.seq for e in room.link.events[published:]]
    restored_seq = room.journal.last_event("link_restored").seq
    assert seqs == list(range(room.link.events[published - 1].seq + 1, restored_seq + 1))
    restored = room.events("link_restored")[-1]
    assert restored["offline_s"] == 30.0 and restored["queued"] >= 4
    assert room.journal.count_undelivered() == 0


def test_plan_rejected_with_reasons_changes_nothing(room: Harness) -> None:
    from controller.events import PlanReceived

    room.deliver(
        PlanReceived(b'{"session_id": "s-9", "patient_ref": "Jane Doe", "session_number": 9}')
    )
    rejected = room.events("plan_rejected")[-1]["reasons"]
    assert any("patient_ref" in r for r in rejected)
    assert any("session_number" in r for r in rejected)
    assert room.room.session.state.pending_plan is None
    room.library.missing = {"b.ogg"}
    room.plan()
    assert "missing music file 'b.ogg'" in room.events("plan_rejected")[-1]["reasons"][0]
    room.library.missing = set()
    room.plan(session_id="s-10")
    room.ok("start_session")
    room.plan(session_id="s-11")
    assert "is running" in room.events("plan_rejected")[-1]["reasons"][0]
    assert room.room.session.state.session_id == "s-10"


def test_same_retained_plan_again_is_ignored(room: Harness) -> None:
    room.plan()
    room.plan()
    assert room.types().count("session_configured") == 1


def test_config_overrides_from_plan(tmp_path) -> None:
    h = Harness(tmp_path, make_config(protocol={"infusion_minutes": 30}))
    h.to_infusion_running(protocol={"nibp_interval_minutes": 15})
    assert h.room.session.state.infusion_target_s == 30 * 60
    h.run(15 * 60)
    assert len(h.events("nibp_due")) == 1
    h.run(15 * 60)
    assert "infusion_completed" in h.types()
    h.close()


def test_backlog_is_resent_in_seq_order_in_batches(room: Harness) -> None:
    room.plan()
    room.ok("start_session")
    room.deliver(LinkDown())
    for level in range(120):
        room.ok("lights", level=level / 200)
    before = len(room.link.events)
    vitals_before = len(room.link.vitals)
    room.inbox.append(LinkUp())
    room.room.handle(room.inbox.popleft())  # one loop turn: the first batch only
    assert len(room.link.events) - before == 50
    room.vitals()  # live vitals are not held up behind the backlog
    assert len(room.link.vitals) == vitals_before + 1
    room.drain()
    while room.room.log.backlog is not None:
        room.room.tick()
    room.drain()
    resent = [e.seq for e in room.link.events[before:]]
    # Everything, link_restored and events emitted meanwhile included, in seq order.
    assert resent == list(range(resent[0], room.journal.last_seq + 1))
    assert "link_restored" in [e.type for e in room.link.events[before:]]
    assert room.journal.count_undelivered() == 0


def test_stale_command_is_not_executed(tmp_path) -> None:
    from datetime import timedelta

    from controller.models import iso_utc

    h = Harness(tmp_path)
    h.room.commands.max_age_s = 30.0
    h.plan()
    old = iso_utc(h.clock.now() - timedelta(seconds=95))
    reply = h.cmd("start_session", sent_at=old)
    assert reply.error is not None and reply.error.code == "invalid_payload"
    assert "95 s old" in reply.error.message
    assert h.room.phase == "idle"
    fresh = iso_utc(h.clock.now() - timedelta(seconds=2))
    assert h.cmd("start_session", sent_at=fresh).ok
    h.close()


def test_guidance_plays_first_then_the_playlist(room: Harness) -> None:
    room.to_infusion_running(guidance="breathing")
    assert room.audio.calls[0] == (
        "play",
        (["guidance/breathing.ogg", "a.ogg", "b.ogg", "c.ogg"], 0, 0.0),
    )


def test_no_music_mode_plays_only_the_guidance(room: Harness) -> None:
    room.to_infusion_running(music_mode="no_music", playlist=[], guidance="body_scan")
    assert room.audio.calls[0] == ("play", (["guidance/body_scan.ogg"], 0, 0.0))
    room.audio.finish()
    room.drain()
    room.run(40 * 60)
    assert "debrief_ready" in room.types()


def test_missing_guidance_file_rejects_the_plan(room: Harness) -> None:
    room.library.missing = {"guidance/body_scan.ogg"}
    room.plan(guidance="body_scan")
    reasons = room.events("plan_rejected")[-1]["reasons"]
    assert reasons == ["field 'guidance': missing music file 'guidance/body_scan.ogg'"]


def test_unsynchronised_clock_alarms_and_blocks_a_new_session(tmp_path) -> None:
    from controller.events import ClockSync

    h = Harness(tmp_path)
    h.plan()
    h.deliver(ClockSync(False))
    assert "clock_unsynced" in [a.code for a in h.room.alarms.current()]
    reply = h.cmd("start_session")
    assert reply.error is not None and "not synchronised" in reply.error.message
    h.deliver(ClockSync(True))
    assert "clock_unsynced" not in [a.code for a in h.room.alarms.current()]
    assert h.ok("start_session") == {"session_id": "s-001"}
    h.close()


def test_unsynchronised_clock_override_by_config(tmp_path) -> None:
    from controller.events import ClockSync

    h = Harness(tmp_path, make_config(room={"id": "room-1", "allow_unsynced_clock": True}))
    h.plan()
    h.deliver(ClockSync(False))
    assert h.ok("start_session") == {"session_id": "s-001"}
    h.close()


def test_journal_recovery_is_announced_and_alarmed(room: Harness) -> None:
    room.room.health.journal_recovered("/data/journal.sqlite.damaged-x", 812, "failed its check")
    room.drain()
    assert room.events("journal_recovered")[-1]["last_seq"] == 812
    alarm = [a for a in room.room.alarms.current() if a.code == "journal_recovered"]
    assert alarm and alarm[0].kind == "technical"


def test_discharge_takes_an_override_but_never_past_a_high_alarm(room: Harness) -> None:
    room.to_infusion_running()
    room.run(INFUSION_S)
    finish_scheduled_nibp(room)
    room.audio.finish()
    room.drain()
    for _ in range(3):
        room.ok("advance")
    override = {"reason": "transferred to the ward with monitoring"}
    room.ok("emergency", reason="vasovagal episode")
    reply = room.cmd("discharge", override=override)
    assert reply.error is not None and reply.error.code == "gate_not_met"
    assert reply.error.details["not_overridable"] == ["alarms"]
    assert room.room.phase == "discharge"
    alarm = room.room.alarms.unacknowledged_high()[0]
    room.ok("alarm_ack", alarm_id=alarm.id)
    assert room.ok("discharge", override=override) == {"phase": "ended"}
    checked = room.events("gate_checked")[-1]
    assert checked["override"] == {**override, "by": "dr-lee"} and not checked["met"]


def test_a_plan_with_a_nan_limit_is_rejected_naming_the_field(room: Harness) -> None:
    from controller.events import PlanReceived

    # JSON's NaN literal reaches the room as a float; it must never become a limit.
    payload = (
        b'{"session_id": "s-9", "patient_ref": "P-1", "session_number": 1,'
        b' "alarms": {"spo2_low": {"limit": NaN, "priority": "medium", "delay_s": 10}}}'
    )
    room.deliver(PlanReceived(payload))
    (rejected,) = room.events("plan_rejected")
    assert any(r.startswith("alarms.spo2_low.limit:") for r in rejected["reasons"]), rejected
    assert room.room.session.state.pending_plan is None


def test_debrief_ready_when_the_playlist_was_stopped(room: Harness) -> None:
    # The debrief follows the infusion or the playlist: a playlist stopped by a clinician
    # (or whose audio failed) must not hold the debrief back for ever.
    room.to_infusion_running()
    room.ok("music", action="stop")
    room.run(INFUSION_S)
    assert room.events("debrief_ready") == [{}]


def test_a_session_already_run_is_refused_even_with_its_plan_passed_again(
    room: Harness,
) -> None:
    from tests.controller.harness import plan_dict

    room.plan()
    room.ok("start_session")
    room.ok("end_session", reason="rescheduled")
    reply = room.cmd("start_session", plan=plan_dict())
    assert reply.error is not None and reply.error.code == "invalid_state"
    assert reply.error.message == "session 's-001' has already been run in this room"
    assert room.types().count("session_started") == 1


def test_the_next_session_starts_from_where_the_room_was(room: Harness) -> None:
    room.plan()
    room.ok("start_session")
    assert room.events("phase_changed")[-1] == {"from": "idle", "to": "check_in", "by": "dr-lee"}
    room.ok("end_session", reason="rescheduled")
    room.plan(session_id="s-002")
    room.ok("start_session")
    assert room.events("phase_changed")[-1] == {"from": "ended", "to": "check_in", "by": "dr-lee"}


def test_a_stopped_infusion_never_completes(room: Harness) -> None:
    """Stopping cancels the infusion's end: the record must not say it ran its 40 minutes."""
    room.to_infusion_running()
    room.run(60)
    room.ok("stop_infusion", reason="patient asked to stop")
    room.run(INFUSION_S)
    assert "infusion_completed" not in room.types()
    assert room.room.session.state.infusion_stopped


def test_start_session_refusals_say_exactly_what_to_do(tmp_path) -> None:
    from controller.events import ClockSync

    h = Harness(tmp_path, devices={"oximeter": "absent", "nibp": "absent"})
    try:
        reply = h.cmd("start_session")
        assert reply.error is not None and reply.error.message == (
            "Can't start_session: no oximeter, so no continuous SpO2 (connect one, or a "
            'technician sets [room] monitoring = "manual" for hand entries every few minutes)'
        )
        h.deliver(ClockSync(False))
        reply = h.cmd("start_session")
        assert reply.error is not None and reply.error.message == (
            "Can't start_session: the room's clock is not synchronised (check NTP; "
            "a technician can set [room] allow_unsynced_clock = true)"
        )
    finally:
        h.close()
    ok = Harness(tmp_path / "2")
    try:
        reply = ok.cmd("start_session")
        assert reply.error is not None and reply.error.message == (
            "Can't start_session: no session plan (publish one on 'plan' or pass 'plan')"
        )
    finally:
        ok.close()


def refusal(h: Harness, verb: str, **args: object) -> str:
    """The message of the error ``verb`` is refused with."""
    reply = h.cmd(verb, **args)
    assert reply.error is not None, f"{verb} was not refused"
    return reply.error.message


def test_the_infusion_steps_refuse_word_for_word(room: Harness) -> None:
    room.to_pre_infusion()
    room.ok("advance")
    assert refusal(room, "advance") == (
        "Can't advance while in infusion: the infusion has not started (start_infusion, or "
        "end_session)"
    )
    assert refusal(room, "stop_infusion", reason="x") == (
        "Can't stop_infusion: the infusion is not running"
    )
    assert room.ok("confirm", item="iv_line") == {"item": "iv_line"}
    room.ok("start_infusion")
    assert refusal(room, "advance") == (
        "Can't advance while in infusion: the infusion is running (stop_infusion or wait for "
        "it to complete)"
    )
    room.run(61.2344)
    assert room.ok("stop_infusion", reason="nausea") == {"elapsed_s": 61.234}
    # Stopped is final: the same session's infusion never starts again.
    again = room.cmd("start_infusion")
    assert again.error is not None and again.error.code == "invalid_state"
    assert again.error.message == (
        "Can't start_infusion: this session's infusion has already started"
    )
    assert refusal(room, "advance") == (
        "Can't advance while in infusion: the playlist is still playing (the debrief follows "
        "the infusion or the playlist); give a reason to cut it short"
    )


def test_a_completed_infusion_never_starts_again(room: Harness) -> None:
    room.to_infusion_running(music_mode="no_music", playlist=[])
    room.run(INFUSION_S)
    assert room.room.session.state.infusion_completed
    reply = room.cmd("start_infusion")
    assert reply.error is not None and reply.error.code == "invalid_state"


def test_a_check_in_clears_the_missed_check_in_alarm(room: Harness) -> None:
    room.to_infusion_running(music_mode="no_music", playlist=[])
    room.run(10 * 60)  # the first prompt, then nobody came
    assert "checkin_missed" in [a.code for a in room.room.alarms.current()]
    room.ok("checkin", note="awake, calm")
    assert "checkin_missed" not in [a.code for a in room.room.alarms.current()]


def test_ending_during_the_infusion_stops_it_and_closes_the_call(room: Harness) -> None:
    room.to_infusion_running()
    room.run(60)
    room.button.press()
    room.drain()
    room.ok("end_session", reason="transfer")
    assert room.events("infusion_stopped")[-1] == {"reason": "session_ended", "by": "dr-lee"}
    assert room.events("call_cleared")[-1] == {"by": "dr-lee", "where": "session_end"}


def test_leaving_the_infusion_clears_a_missed_check_in_and_records_its_length(
    room: Harness,
) -> None:
    room.to_infusion_running(music_mode="no_music", playlist=[])
    room.run(INFUSION_S)
    assert room.events("infusion_completed") == [{"elapsed_s": INFUSION_S}]
    assert "checkin_missed" in [a.code for a in room.room.alarms.current()]
    room.ok("advance")
    assert "checkin_missed" not in [a.code for a in room.room.alarms.current()]


def test_entering_discharge_asks_for_a_blood_pressure(room: Harness) -> None:
    room.to_infusion_running(music_mode="no_music", playlist=[])
    room.run(INFUSION_S)
    finish_scheduled_nibp(room)
    for _ in ("debrief", "preparation"):
        room.ok("advance")
    before = len(room.events("nibp_due"))
    room.ok("advance")
    assert room.room.phase == "discharge"
    assert len(room.events("nibp_due")) == before + 1


def test_nothing_is_prompted_or_measured_after_the_session_ends(room: Harness) -> None:
    room.to_infusion_running(music_mode="no_music", playlist=[])
    room.run(60)
    room.ok("end_session", reason="transfer")
    ended = len(room.types())
    room.run(60 * 60)
    finish_scheduled_nibp(room)
    after = room.types()[ended:]
    assert not {"nibp_due", "nibp_requested", "checkin_due", "infusion_completed"} & set(after)
