"""Resume after a crash: a journal cut at every event of a session rebuilds the same room."""

from __future__ import annotations

import shutil
import sqlite3
from datetime import timedelta
from pathlib import Path
from typing import Any

from controller.clock import FakeClock
from controller.models import Event
from tests.controller.harness import Harness


def snapshot(h: Harness) -> dict[str, Any]:
    """What must survive a restart, as the room sees it now."""
    r = h.room
    s = r.session.state
    return {
        "phase": r.phase,
        "session_id": s.session_id,
        "confirmed": dict(s.confirmed),
        "infusion": (
            s.infusion_running,
            s.infusion_completed,
            s.infusion_stopped,
            round(s.infusion_elapsed_s(), 3),
            s.infusion_started_at,
        ),
        "call": r.calls.state,
        "alarms": sorted((a.code, a.state, a.id) for a in r.alarms.current()),
        "music": (r.music.playing, r.music.playlist_ended, r.music.track_index, r.music.track),
        "debrief_ready": s.debrief_ready_sent,
        "nibp": None
        if r.monitoring.latest_nibp is None
        else (r.monitoring.latest_nibp.sys, r.monitoring.latest_nibp.dia),
        "timers": {
            n: r.timers.due_at(n)
            for n in (
                "infusion_end",
                "nibp",
                "nibp_overdue",
                "checkin",
                "call_escalate",
                "call_reminder",
                "debrief",
            )
        },
        "choice": (list(s.tracks), s.music_mode, None if s.plan is None else s.plan.guidance),
        "lights": (r.lights.scene, r.lights.level),
        "plan": None if s.plan is None else s.plan.session_id,
        "pending_plan": None if s.pending_plan is None else s.pending_plan.session_id,
    }


def run_recorded_session(h: Harness, music_mode: str) -> dict[int, tuple[Any, dict[str, Any]]]:
    """A whole session with an alarm, a call and an override; the snapshot after each event."""
    snaps: dict[int, tuple[Any, dict[str, Any]]] = {}

    def record(event: Event) -> None:
        snaps[event.seq] = (h.clock.now(), snapshot(h))

    h.room.add_listener(record)
    playlist = [] if music_mode == "no_music" else ["a.ogg", "b.ogg"]
    h.to_pre_infusion(music_mode=music_mode, playlist=playlist)
    if music_mode == "music":  # the patient's choice, amended before the infusion
        h.ok("choose", playlist=["b.ogg", "a.ogg"], guidance="breathing")
    h.ok("advance")
    h.ok("confirm", item="iv_line")
    h.ok("start_infusion")
    h.run(60)
    h.button.press()
    h.drain()
    h.run(40)  # escalates
    h.ok("call_ack")
    h.run(200)  # the reminder brings the call back
    h.button.hold()
    h.drain()
    h.run(20, spo2=86)  # a critical desaturation latches
    h.run(20)
    alarm = h.room.alarms.current()[0]
    h.ok("alarm_ack", alarm_id=alarm.id)
    h.run(6 * 60)
    if h.nibp.measuring:
        h.nibp.finish(130, 84, 80)
        h.drain()
    if music_mode == "music":
        h.audio.finish_track()
        h.drain()
    h.run(40 * 60 - 11 * 60)
    if h.nibp.measuring:
        h.nibp.finish(128, 82, 78)
        h.drain()
    if music_mode == "music":
        h.audio.finish()
        h.drain()
    h.ok("advance")
    h.run(21 * 60, step=60)  # the debrief's least minutes: debrief_due, then timed to its most
    assert [d["bound"] for d in h.events("debrief_due")] == ["least"]
    for _ in range(2):
        h.ok("advance")
    h.nibp.finish(126, 80, 74)
    h.drain()
    h.run(5)
    h.ready_to_leave()
    h.ok("discharge")
    return snaps


def cut_journal(source: Path, target_dir: Path, last_seq: int) -> None:
    target_dir.mkdir(parents=True)
    target = target_dir / "journal.sqlite"
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)
    with sqlite3.connect(target) as db:
        db.execute("DELETE FROM events WHERE seq > ?", (last_seq,))


def check_every_cut(tmp_path: Path, music_mode: str) -> int:
    live = Harness(tmp_path / "live")
    snaps = run_recorded_session(live, music_mode)
    live.journal.close()
    source = tmp_path / "live" / "journal.sqlite"
    assert sorted(snaps) == list(range(1, len(snaps) + 1)), "a snapshot after every event"
    checked = 0
    for seq, (at, expected) in sorted(snaps.items()):
        cut_dir = tmp_path / f"cut-{seq}"
        cut_journal(source, cut_dir, seq)
        h = Harness(cut_dir, clock=FakeClock(start=at, monotonic=50_000.0), online=False)
        got = snapshot(h)
        assert got == expected, f"resume after seq {seq}"
        h.close()
        shutil.rmtree(cut_dir)
        checked += 1
    return checked


def test_resume_from_every_cut_music_mode(tmp_path: Path) -> None:
    assert check_every_cut(tmp_path, "music") > 50


def test_resume_from_every_cut_no_music_mode(tmp_path: Path) -> None:
    assert check_every_cut(tmp_path, "no_music") > 50


def test_resume_mid_infusion_after_downtime(tmp_path: Path) -> None:
    clock = FakeClock()
    h = Harness(tmp_path, clock=clock)
    h.to_infusion_running()
    h.run(12 * 60)
    if h.nibp.measuring:
        h.nibp.finish()
        h.drain()
    last_seq = h.journal.last_seq
    h.journal.close()  # the crash

    clock.advance(5 * 60)  # five minutes of downtime
    again = Harness(tmp_path, clock=clock)
    resumed = again.events("session_resumed")
    assert resumed == [{"downtime_s": 300.0, "phase": "infusion"}]
    first_new = again.journal.events_since(last_seq + 1, 10)[0]
    assert first_new.seq == last_seq + 1 and first_new.type == "session_resumed"
    assert again.room.session.state.infusion_running
    assert abs(again.room.session.state.infusion_elapsed_s() - 17 * 60) < 1e-6
    # music continues at the right track and offset
    play = [c for c in again.audio.calls if c[0] == "play"][-1]
    assert play[1][1] == 0 and abs(play[1][2] - 17 * 60) < 1e-6
    # the infusion completes at 40:00 of infusion time, not 40 minutes after the restart
    again.run(23 * 60 - 5)
    assert "infusion_completed" not in again.types()
    again.run(10)
    assert "infusion_completed" in again.types()
    # the NIBP schedule kept its cadence: due at 20, 30, 40 min after the infusion start
    due = [e for e in again.journal.events_since(1, 10**6) if e.type == "nibp_due"]
    started = again.journal.last_event("infusion_started")
    assert started is not None
    offsets = [round((e.ts - started.ts) / timedelta(minutes=1)) for e in due]
    assert offsets[:2] == [10, 17] or offsets[:3] == [10, 20, 30], offsets
    again.close()


def test_ended_session_is_not_resumed(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    h.plan()
    h.ok("start_session")
    h.ok("end_session", reason="test")
    h.journal.close()
    again = Harness(tmp_path)
    assert again.room.phase == "ended"
    assert "session_resumed" not in again.types()
    assert again.room.lights.scene == "ended"
    again.close()


def test_resumed_track_is_not_counted_as_the_next_one(tmp_path: Path) -> None:
    clock = FakeClock()
    h = Harness(tmp_path, clock=clock)
    h.to_infusion_running()
    h.run(60)
    h.audio.finish_track(60.0)  # a.ogg ends, b.ogg starts
    h.drain()
    h.run(120)
    assert h.room.music.track_index == 1
    h.journal.close()
    for _ in range(2):  # two crashes in a row: each resume restarts b.ogg where it was
        clock.advance(30)
        again = Harness(tmp_path, clock=clock)
        play = [c for c in again.audio.calls if c[0] == "play"][-1]
        assert play[1][1] == 1, play
        assert play[1][2] == 120.0 + 30.0 * (_ + 1)  # the offset counts both downtimes
        assert again.room.music.track_index == 1 and again.room.music.track == "b.ogg"
        again.journal.close()


def test_a_call_and_an_emergency_before_start_session_survive_a_resume(tmp_path: Path) -> None:
    clock = FakeClock()
    h = Harness(tmp_path, clock=clock)
    h.plan(session_id="s-000")  # an earlier session, ended: replay starts at its end
    h.ok("start_session")
    h.ok("end_session", reason="test")
    h.plan(session_id="s-001")
    h.button.press()  # the patient calls while the room is still idle
    h.drain()
    h.ok("emergency", reason="fainted in the chair")
    h.ok("start_session")
    live = snapshot(h)
    assert live["call"] == "placed"
    assert "emergency" in [code for code, _, _ in live["alarms"]]
    h.journal.close()  # the crash

    again = Harness(tmp_path, clock=clock)
    resumed = snapshot(again)
    assert resumed["call"] == live["call"]
    assert resumed["alarms"] == live["alarms"]
    assert resumed["lights"] == live["lights"]
    assert resumed["timers"]["call_escalate"] == live["timers"]["call_escalate"]
    again.close()


def test_a_room_killed_right_after_session_started_resumes_at_check_in(tmp_path: Path) -> None:
    # Between session_started and the phase_changed that follows, a kill -9 left a session
    # running in "ended"; every step refused ("no session is running").
    live = Harness(tmp_path / "live")
    live.plan()
    live.ok("start_session")
    started = live.journal.last_event("session_started")
    assert started is not None
    live.journal.close()
    cut_journal(tmp_path / "live" / "journal.sqlite", tmp_path / "cut", started.seq)
    again = Harness(tmp_path / "cut", online=False)
    assert again.room.phase == "check_in"
    assert again.room.session.state.session_id == "s-001"
    reply = again.send("advance", b'{"request_id": "after-resume", "by": "dr-lee"}')
    assert reply.ok and reply.result == {"phase": "integration"}
    again.close()
