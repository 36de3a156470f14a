"""The room's core: events journaled, applied and published; gates, timers, calls, outputs.

Every decision is an event: ``_emit`` journals it, ``apply`` folds it into the room's state,
and only then is it published. ``apply`` is the same code that rebuilds the room from the
journal after a restart, so a resumed session is the session that was running.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from controller import events as ev
from controller.alarms import AlarmEngine
from controller.config import AlarmsSection, Config, ProtocolSection
from controller.journal import Journal
from controller.models import (
    Event,
    Phase,
    iso_utc,
    parse_utc,
)
from controller.phases import (
    ACTIVE,
)
from controller.ports import (
    Annunciator,
    AudioPlayer,
    CallLamp,
    ClinicLink,
    Clock,
    LampMode,
    Lighting,
    MusicLibrary,
    Nibp,
    SessionRecords,
)
from controller.state import RoomView

log = logging.getLogger("roomd.core")

NIBP_OVERDUE_S = 5 * 60
"""A due blood pressure not taken within this long is a technical alarm."""
RESEND_BATCH = 50
"""Events re-sent per loop turn after a reconnect."""


class RoomCore(RoomView):
    """The room's machinery: ports, the journal-first emit, timers, gates, calls, outputs."""

    def __init__(
        self,
        config: Config,
        *,
        clock: Clock,
        journal: Journal,
        link: ClinicLink,
        lighting: Lighting | None = None,
        call_lamp: CallLamp | None = None,
        annunciator: Annunciator | None = None,
        nibp: Nibp | None = None,
        audio: AudioPlayer | None = None,
        library: MusicLibrary | None = None,
        devices: dict[str, str] | None = None,
        heartbeat_s: float = 10.0,
        simulator: Callable[[ev.SimAction], None] | None = None,
        listeners: Sequence[Callable[[Event], None]] = (),
        records: SessionRecords | None = None,
        command_max_age_s: float | None = None,
    ) -> None:
        super().__init__(config, clock)
        self.journal = journal
        self._link = link
        self._lighting = lighting
        self._lamp = call_lamp
        self._annunciator = annunciator
        self._nibp = nibp
        self._audio = audio
        self._library = library
        self._heartbeat_s = heartbeat_s
        self._listeners = list(listeners)
        self._simulator = simulator
        self._backlog: int | None = None  # the first seq still to re-send after a reconnect
        self._command_max_age_s = command_max_age_s  # None: sent_at not checked
        self._records = records  # writes an ended session's record off the core thread
        self.devices.update(devices or {})
        self.alarms = AlarmEngine(clock, config.alarms, self._emit)
        self._dirty = True
        self._alarms_dirty = True
        self._last_state_at: float | None = None
        self._offline_since: float | None = self._clock.monotonic()
        self._annunciating = "off"

    def add_listener(self, listener: Callable[[Event], None]) -> None:
        """Call ``listener`` with every event after it is journaled and applied."""
        self._listeners.append(listener)

    # === the loop's entry points ========================================================

    def tick(self) -> None:
        """Fire due timers and alarm delays; publish state when changed or on heartbeat."""
        # One at a time, so a timer's events are journaled before the next one fires.
        while (name := self.timers.pop_next_due()) is not None:
            getattr(self, f"_timer_{name}")()
        self._send_backlog()
        self._check_stale()
        self.alarms.tick()
        self._update_annunciation()
        self._publish_state()

    def next_deadline(self) -> float:
        """The monotonic time by which ``tick`` must run again."""
        now = self._clock.monotonic()
        deadlines = [self.timers.next_deadline(), self.alarms.next_deadline()]
        deadlines.append((self._last_state_at or now) + self._heartbeat_s)
        if self._backlog is not None:
            deadlines.append(now)  # more of the backlog to send on the next turn
        if self.phase in ACTIVE and self.devices.get("oximeter") != "absent":
            deadlines.append(now + 1.0)  # staleness is judged at least once a second
        return min(d for d in deadlines if d is not None)

    def resume(self) -> None:
        """Rebuild the room from the journal after a start; announce a resumed session."""
        boundary = self.journal.last_event("session_started", "session_ended")
        lights = self.journal.last_event("lighting_changed")
        if lights is not None and boundary is not None and lights.seq < boundary.seq:
            self.apply(lights)  # the room's lights outlive sessions
        # Everything since the last session boundary: the open session, or what happened in
        # the room since the last one ended (a plan configured, lights, devices).
        for event in self.journal.events_since(boundary.seq if boundary else 1, 10**9):
            self.apply(event)
        if boundary is not None and boundary.type == "session_started":
            newest = self.journal.events_since(self.journal.last_seq, 1)[0]
            downtime = max(0.0, (self._clock.now() - newest.ts).total_seconds())
            self._emit("session_resumed", {"downtime_s": round(downtime, 3), "phase": self.phase})
        self._restore_outputs()
        if self.music_playing and self._audio is not None:
            index, offset = self.music_position()
            if index < len(self.tracks):
                self._audio.play(self.tracks, index, offset)

    # === events: journal first, then state, then the wire ===============================

    def _emit(self, type_: str, data: dict[str, Any], *, session_id: str | None = None) -> Event:
        sid = session_id or self.session_id
        event = self.journal.append(self._clock.now(), sid, type_, data)
        self.apply(event)
        if self.link_online and self._backlog is None:
            self._link.publish_event(event)  # else it goes out in seq order with the backlog
        self._dirty = True
        if type_.startswith("alarm_"):
            self._alarms_dirty = True
        for listener in self._listeners:
            listener(event)
        return event

    def apply(self, event: Event) -> None:
        """Fold one journal event into the room's state (live and when replaying)."""
        super().apply(event)
        self.alarms.apply(event)
        ts, data = event.ts, event.data
        match event.type:
            case "infusion_started":
                self.timers.set_at("infusion_end", ts + timedelta(seconds=self.infusion_target_s))
                if not self.timers.pending("nibp"):
                    self.timers.set_at(
                        "nibp", ts + timedelta(minutes=self.protocol.nibp_interval_minutes)
                    )
                if self.plan is not None and self.plan.music_mode == "no_music":
                    self.timers.set_at(
                        "checkin", ts + timedelta(minutes=self.protocol.checkin_interval_minutes)
                    )
            case "infusion_completed" | "infusion_stopped":
                self.timers.cancel("infusion_end")
            case "nibp_due":
                self.timers.set_at("nibp", parse_utc(data["next_due_at"]))
                # Only while no overdue alarm stands: a firing that changes nothing would
                # leave no trace in the journal, and a resumed room must hold the same timers.
                if (
                    not self.timers.pending("nibp_overdue")
                    and "nibp_overdue" not in self.alarms.alarms
                ):
                    self.timers.set_at("nibp_overdue", ts + timedelta(seconds=NIBP_OVERDUE_S))
            case "nibp_result" | "vitals_recorded" if "sys" in data:
                self.timers.cancel("nibp_overdue")
            case "alarm_raised" if data["alarm"]["code"] == "nibp_overdue":
                self.timers.cancel("nibp_overdue")  # fired: the alarm is its trace
            case "checkin_due":
                self.timers.set_at("checkin", parse_utc(data["next_due_at"]))
            case "call_placed" | "call_escalated":
                self.timers.cancel("call_reminder")
                self.timers.set_at(
                    "call_escalate", ts + timedelta(seconds=self.protocol.call_escalate_s)
                )
            case "call_acknowledged":
                self.timers.cancel("call_escalate")
                self.timers.set_at(
                    "call_reminder", ts + timedelta(seconds=self.protocol.call_reminder_s)
                )
            case "call_cleared":
                self.timers.cancel("call_escalate", "call_reminder")
            case "phase_changed":
                if data["to"] != "infusion":
                    self.timers.cancel("checkin")
                if data["to"] not in ("infusion", "debrief", "discharge"):
                    self.timers.cancel("nibp", "nibp_overdue")
            case "session_ended":
                self.timers.clear()
            case _:
                pass

    # === gates and phases ===============================================================

    def _enter_phase(self, target: Phase, by: str) -> None:
        previous = self.phase
        self._emit("phase_changed", {"from": previous, "to": target, "by": by})
        scene = self.config.hardware.lighting.scenes.get(target)
        if scene is not None and not self.emergency_declared:
            self._set_lights(target, scene.level, scene.colour, scene.fade_s, by)
        if previous == "infusion" and self.music_playing and self._audio is not None:
            self._audio.stop(fade=True)
            self._emit("music_stopped", {"reason": "phase_changed"})
        if target == "discharge":
            self._nibp_due()

    def _end_session(self, reason: str, by: str) -> None:
        if self.music_playing:
            if self._audio is not None:
                self._audio.stop(fade=True)
            self._emit("music_stopped", {"reason": "session_ended"})
        if self.infusion_running:
            self._emit("infusion_stopped", {"reason": "session_ended", "by": by})
        if self.call != "idle":
            self._clear_call(by, "session_end")
        self.alarms.clear_all("physiological")
        for code in ("vitals_stale", "nibp_overdue", "nibp_failed", "sensor_off"):
            self.alarms.clear(code)
        session_id = self.session_id
        self._emit("phase_changed", {"from": self.phase, "to": "ended", "by": by})
        self._emit("session_ended", {"reason": reason, "by": by})
        scene = self.config.hardware.lighting.scenes["ended"]
        self._set_lights("ended", scene.level, scene.colour, scene.fade_s, by)
        if self._records is not None and session_id is not None:
            self._records.write(session_id)  # ReportWritten comes back on the inbox

    # === timers =========================================================================

    def _timer_infusion_end(self) -> None:
        self._emit("infusion_completed", {"elapsed_s": round(self.infusion_elapsed_s(), 3)})
        self._maybe_debrief_ready()

    def _timer_nibp(self) -> None:
        self._nibp_due()

    def _timer_nibp_overdue(self) -> None:
        self.alarms.raise_now(
            "nibp_overdue",
            kind="technical",
            priority="medium",
            message="Blood pressure due and not measured",
        )

    def _timer_checkin(self) -> None:
        minutes = self.protocol.checkin_interval_minutes
        next_due = self._clock.now() + timedelta(minutes=minutes)
        self._emit(
            "checkin_due",
            {"escalated": self.checkin_missed(), "next_due_at": _iso(next_due)},
        )

    def _timer_call_escalate(self) -> None:
        self._emit("call_escalated", {})

    def _timer_call_reminder(self) -> None:
        # An acknowledged call nobody cleared comes back as a new call (nurse-call reminder).
        self._place_call(reminder=True)

    def _nibp_due(self) -> None:
        minutes = self.protocol.nibp_interval_minutes
        next_due = self._clock.now() + timedelta(minutes=minutes)
        self._emit("nibp_due", {"next_due_at": _iso(next_due)})
        if self._nibp is not None and self.devices.get("nibp") == "ok":
            self._request_nibp("schedule")

    def _request_nibp(self, by: str) -> None:
        assert self._nibp is not None
        self._nibp.start_measurement()
        self._emit("nibp_requested", {"by": by})

    def _maybe_debrief_ready(self) -> None:
        if self.debrief_ready_sent or not self.infusion_completed:
            return
        music = self.plan is not None and self.plan.music_mode == "music" and bool(self.tracks)
        if music and not self.playlist_ended and self.music_started:
            return
        self._emit("debrief_ready", {})

    # === calls ==========================================================================

    def _place_call(self, *, reminder: bool = False) -> None:
        if self.call != "idle" and not reminder:
            return  # one open call at a time: pressing again changes nothing
        self._emit("call_placed", {"reminder": reminder} if reminder else {})
        if self._lamp is not None:
            self._lamp.set_lamp("pulse")
        if self._audio is not None:
            self._audio.duck(True)
            self._audio.cue()

    def _clear_call(self, by: str, where: str) -> None:
        if self.call == "idle":
            return
        self._emit("call_cleared", {"by": by, "where": where})
        if self._lamp is not None:
            self._lamp.set_lamp("off")
        if self._audio is not None:
            self._audio.duck(False)

    def _check_stale(self) -> None:
        if self.phase not in ACTIVE or self.devices.get("oximeter") == "absent":
            return
        last = self.last_valid_sample_mono
        age = None if last is None else self._clock.monotonic() - last
        stale = age is None or age > self.alarm_limits.stale_s
        self.alarms.set_condition(
            "vitals_stale",
            stale,
            kind="technical",
            priority="medium",
            message=f"No valid oximeter data for over {self.alarm_limits.stale_s:g} s",
            delay_s=0,
        )

    def _send_backlog(self) -> None:
        if self._backlog is None or not self.link_online:
            return
        # Up to the newest seq, not the one at reconnect: events emitted meanwhile were held
        # back so that everything goes out in seq order.
        batch = self.journal.undelivered_between(self._backlog, self.journal.last_seq, RESEND_BATCH)
        for event in batch:
            self._link.publish_event(event)
        self._backlog = batch[-1].seq + 1 if len(batch) == RESEND_BATCH else None

    # === outputs ========================================================================

    def _set_lights(
        self, scene: str, level: float, colour: tuple[int, int, int], fade_s: float, by: str
    ) -> None:
        if self._lighting is not None:
            self._lighting.set_scene(scene, level, colour, fade_s)
        self._emit("lighting_changed", {"scene": scene, "level": level, "fade_s": fade_s, "by": by})

    def _start_music(self, by: str) -> None:
        if self._audio is None:
            return
        self._audio.play(self.tracks)
        self._emit("music_started", {"playlist": list(self.tracks), "by": by})

    def _restore_outputs(self) -> None:
        if self._lighting is not None:
            scenes = self.config.hardware.lighting.scenes
            scene = scenes.get(self.lighting_scene) or scenes.get(self.phase) or scenes["idle"]
            self._lighting.set_scene(self.lighting_scene, self.lighting_level, scene.colour, 0.0)
        if self._lamp is not None:
            lamp: dict[str, LampMode] = {"idle": "off", "acknowledged": "steady"}
            self._lamp.set_lamp(lamp.get(self.call, "pulse"))

    def _update_annunciation(self) -> None:
        if self._annunciator is None:
            return
        pattern = "off"
        if not self.link_online:
            # Nobody may be looking at the tablet: the room itself must speak up.
            sounding = self.alarms.sounding()
            if sounding == "high":
                pattern = "high"
            elif self.call in ("placed", "escalated"):
                pattern = "call"
            elif sounding is not None:
                pattern = sounding
        if pattern != self._annunciating:
            self._annunciating = pattern
            self._annunciator.annunciate(pattern)  # type: ignore[arg-type]

    def _publish_state(self) -> None:
        now = self._clock.monotonic()
        due = self._last_state_at is None or now - self._last_state_at >= self._heartbeat_s
        if not (self._dirty or due):
            return
        if self.link_online:
            self._link.publish_state(self.state())
            if self._alarms_dirty:
                self._link.publish_alarms(self.alarms.current())
                self._alarms_dirty = False
        self._dirty = False
        self._last_state_at = now

    @property
    def protocol(self) -> ProtocolSection:
        """The protocol settings in force (the plan's overrides over the config)."""
        return self.effective_protocol

    @property
    def alarm_limits(self) -> AlarmsSection:
        """The alarm limits in force."""
        return self.alarms.limits


def _iso(ts: datetime) -> str:
    return iso_utc(ts)
