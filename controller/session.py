"""The room's core: the session machine, fed one inbox message at a time.

Every decision is an event: ``_emit`` journals it, ``apply`` folds it into the room's state,
and only then is it published. ``apply`` is the same code that rebuilds the room from the
journal after a restart, so a resumed session is the session that was running.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol

from pydantic import ValidationError

from controller import events as ev
from controller.alarms import AlarmEngine
from controller.config import AlarmsSection, Config, ProtocolSection
from controller.errors import (
    CommandError,
    DeviceUnavailable,
    GateNotMet,
    InvalidPayload,
    InvalidState,
    UnknownVerb,
)
from controller.journal import Journal
from controller.models import (
    COMMANDS,
    MAX_PAYLOAD_BYTES,
    Command,
    ErrorBody,
    Event,
    Phase,
    Reply,
    SessionPlan,
    iso_utc,
    parse_utc,
)
from controller.phases import (
    ACTIVE,
    GATE_ON_ENTRY,
    NEXT,
    VERB_PHASES,
    GateResult,
    check_vitals,
    wrong_phase_message,
)
from controller.ports import (
    Annunciator,
    AudioPlayer,
    CallLamp,
    ClinicLink,
    Clock,
    LampMode,
    Lighting,
    Nibp,
)
from controller.state import RoomView

log = logging.getLogger("roomd.core")

NIBP_OVERDUE_S = 5 * 60
"""A due blood pressure not taken within this long is a technical alarm."""
EVENTS_REPLY_BUDGET = MAX_PAYLOAD_BYTES - 4096
"""The ``events`` reply stops adding events before it would pass the contract's 64 KiB."""


class MusicLibrary(Protocol):
    """Resolves a plan's playlist to playable files (the audio adapter implements it)."""

    def resolve(self, playlist: Sequence[str] | str) -> list[str]:
        """The tracks, in order; raises ValueError naming a missing or unreadable file."""
        ...


class Room(RoomView):
    """One treatment room: phases, gates, timers, alarms, calls, music, lights, journal."""

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
        self.devices.update(devices or {})
        self.alarms = AlarmEngine(clock, config.alarms, self._emit)
        self._dirty = True
        self._alarms_dirty = True
        self._last_state_at: float | None = None
        self._offline_since: float | None = self._clock.monotonic()
        self._annunciating = "off"
        self._handlers: dict[type, Callable[[Any], None]] = {
            ev.CommandReceived: self._on_command,
            ev.PlanReceived: self._on_plan,
            ev.LinkUp: self._on_link_up,
            ev.LinkDown: self._on_link_down,
            ev.EventDelivered: lambda m: self.journal.mark_delivered(m.seq),
            ev.VitalsArrived: self._on_vitals,
            ev.NibpCompleted: self._on_nibp_completed,
            ev.NibpFailed: self._on_nibp_failed,
            ev.DeviceChanged: self._on_device,
            ev.CallPressed: lambda m: self._place_call(),
            ev.CallHeld: lambda m: self._clear_call("bedside", "bedside"),
            ev.TrackStarted: self._on_track_started,
            ev.TrackEnded: self._on_track_ended,
            ev.PlaylistEnded: self._on_playlist_ended,
            ev.AudioFailed: self._on_audio_failed,
        }
        if simulator is not None:
            self._handlers[ev.SimAction] = simulator

    # === the loop's entry points ========================================================

    def handle(self, message: ev.InboxMessage) -> None:
        """Act on one inbox message, then publish what changed."""
        handler = self._handlers.get(type(message))
        if handler is None:
            log.warning("no handler for %r", message)
            return
        handler(message)
        self.tick()

    def tick(self) -> None:
        """Fire due timers and alarm delays; publish state when changed or on heartbeat."""
        # One at a time, so a timer's events are journaled before the next one fires.
        while (name := self.timers.pop_next_due()) is not None:
            getattr(self, f"_timer_{name}")()
        self._check_stale()
        self.alarms.tick()
        self._update_annunciation()
        self._publish_state()

    def next_deadline(self) -> float:
        """The monotonic time by which ``tick`` must run again."""
        now = self._clock.monotonic()
        deadlines = [self.timers.next_deadline(), self.alarms.next_deadline()]
        deadlines.append((self._last_state_at or now) + self._heartbeat_s)
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
        if self.link_online:
            self._link.publish_event(event)
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

    # === commands ========================================================================

    def _on_command(self, msg: ev.CommandReceived) -> None:
        request_id, verb = "", msg.verb
        try:
            obj = _parse_json_object(msg.payload)
            rid = obj.get("request_id")
            if isinstance(rid, str) and 0 < len(rid) <= 64:
                request_id = rid
            if verb not in COMMANDS:
                raise UnknownVerb(f"unknown verb '{verb}'; verbs are {', '.join(COMMANDS)}")
            first = self.journal.find_reply(request_id) if request_id else None
            if first is not None:
                self._reply(
                    msg,
                    Reply(
                        request_id=request_id,
                        verb=verb,
                        ok=False,
                        error=ErrorBody(
                            code="duplicate",
                            message=f"request_id '{request_id}' was already executed; "
                            "its first reply is in details",
                            details={"first_reply": json.loads(first)},
                        ),
                    ),
                    record=False,
                )
                return
            command = _validate(verb, obj)
            if self.phase not in VERB_PHASES[verb]:
                raise InvalidState(wrong_phase_message(verb, self.phase))
            result = getattr(self, f"_cmd_{verb}")(command)
            reply = Reply(request_id=request_id, verb=verb, ok=True, result=result or {})
        except CommandError as exc:
            reply = self._reject(request_id, verb, exc.code, exc.message, exc.details)
        except Exception:  # a bug must not stop the room; say so and keep the room running
            log.exception("command %s failed", verb)
            reply = self._reject(request_id, verb, "internal", "internal error; see the room's log")
        self._reply(msg, reply, record=bool(request_id))

    def _reject(
        self, request_id: str, verb: str, code: str, message: str, details: Any = None
    ) -> Reply:
        data: dict[str, Any] = {"verb": verb[:64], "code": code, "request_id": request_id}
        self._emit("command_rejected", data)
        return Reply(
            request_id=request_id,
            verb=verb[:64],
            ok=False,
            error=ErrorBody(code=code, message=message, details=details),
        )

    def _reply(self, msg: ev.CommandReceived, reply: Reply, *, record: bool) -> None:
        if record:
            self.journal.record_reply(reply.request_id, reply.to_json().decode())
        self._link.publish_reply(reply, msg.response_topic, msg.correlation_data)

    def _cmd_start_session(self, cmd: Any) -> dict[str, Any]:
        plan: SessionPlan | None = cmd.plan or self.pending_plan
        if plan is None:
            raise InvalidState(
                "Can't start_session: no session plan (publish one on 'plan' or pass 'plan')"
            )
        if self.journal.last_event("session_started") is not None and any(
            e.type == "session_started" for e in self.journal.session_events(plan.session_id)
        ):
            raise InvalidState(f"session '{plan.session_id}' has already been run in this room")
        tracks = self._resolve_tracks(plan)
        self._emit(
            "session_started",
            {"plan": plan.model_dump(mode="json"), "tracks": tracks, "by": cmd.by},
            session_id=plan.session_id,
        )
        self._enter_phase("check_in", cmd.by)
        return {"session_id": plan.session_id}

    def _cmd_advance(self, cmd: Any) -> dict[str, Any]:
        if self.phase == "discharge":
            return self._cmd_discharge(cmd)
        if self.phase == "infusion" and not (self.infusion_completed or self.infusion_stopped):
            raise InvalidState(
                "Can't advance while in infusion: "
                + (
                    "the infusion is running (stop_infusion or wait for it to complete)"
                    if self.infusion_running
                    else "the infusion has not started (start_infusion, or end_session)"
                )
            )
        target = NEXT[self.phase]
        self._pass_gate(GATE_ON_ENTRY.get(target), cmd)
        self._enter_phase(target, cmd.by)
        return {"phase": self.phase}

    def _cmd_confirm(self, cmd: Any) -> dict[str, Any]:
        self._emit("confirmed", {"item": cmd.item, "by": cmd.by})
        return {"item": cmd.item}

    def _cmd_start_infusion(self, cmd: Any) -> dict[str, Any]:
        if self.infusion_running or self.infusion_completed or self.infusion_stopped:
            raise InvalidState("Can't start_infusion: this session's infusion has already started")
        gate = GateResult("infusion_start")
        if "iv_line" not in self.confirmed:
            gate.unmet["iv_line"] = "IV line not confirmed"
        self._check_gate(gate, cmd)
        self._emit(
            "infusion_started",
            {"target_s": self.infusion_target_s, "by": cmd.by},
        )
        if self.plan is not None and self.plan.music_mode == "music" and self.tracks:
            self._start_music(cmd.by)
        return {"target_s": self.infusion_target_s}

    def _cmd_stop_infusion(self, cmd: Any) -> dict[str, Any]:
        if not self.infusion_running:
            raise InvalidState("Can't stop_infusion: the infusion is not running")
        self._emit("infusion_stopped", {"reason": cmd.reason, "by": cmd.by})
        return {"elapsed_s": round(self.infusion_elapsed_s(), 3)}

    def _cmd_music(self, cmd: Any) -> dict[str, Any]:
        audio = self._audio
        if audio is None or self.devices.get("audio") == "lost":
            raise DeviceUnavailable("no audio output is available")
        match cmd.action:
            case "preview":
                if self.phase not in ("check_in", "integration", "intentions", "pre_infusion"):
                    raise InvalidState(f"Can't preview music while in {self.phase}")
                if not cmd.track:
                    raise InvalidPayload("field 'track': required for a preview")
                track = self._resolve_one(cmd.track)
                duration = cmd.duration_s or self.config.audio.preview_s
                audio.preview(track, cmd.offset_s, duration)
                self._emit(
                    "preview_started",
                    {"track": cmd.track, "offset_s": cmd.offset_s, "duration_s": duration},
                )
            case "play":
                if self.music_playing:
                    raise InvalidState("Can't play: the music is already playing")
                if not self.tracks:
                    raise InvalidState("Can't play: this session has no playlist")
                self._start_music(cmd.by)
            case "pause" | "resume" | "skip":
                if not self.music_playing:
                    raise InvalidState(f"Can't {cmd.action}: no music is playing")
                getattr(audio, cmd.action)()
                self._emit(
                    f"music_{cmd.action}d" if cmd.action != "skip" else "music_skipped",
                    {"by": cmd.by},
                )
            case "stop":
                audio.stop(fade=True)
                if self.music_playing:
                    self._emit("music_stopped", {"reason": "stopped", "by": cmd.by})
            case "volume":
                if cmd.level is None:
                    raise InvalidPayload("field 'level': required for volume")
                audio.set_volume(cmd.output, cmd.level)
                self._emit(
                    "volume_changed", {"output": cmd.output, "level": cmd.level, "by": cmd.by}
                )
        return {"action": cmd.action}

    def _cmd_lights(self, cmd: Any) -> dict[str, Any]:
        if self._lighting is None or self.devices.get("lighting") == "lost":
            raise DeviceUnavailable("the room's lights are not available")
        scenes = self.config.hardware.lighting.scenes
        if cmd.scene is None and cmd.level is None:
            raise InvalidPayload("field 'scene' or 'level': one of them is required")
        if cmd.scene is not None and cmd.scene not in scenes:
            raise InvalidPayload(
                f"field 'scene': unknown scene '{cmd.scene}'; scenes are {', '.join(scenes)}"
            )
        base = scenes[cmd.scene] if cmd.scene else scenes.get(self.phase, scenes["idle"])
        level = cmd.level if cmd.level is not None else base.level
        fade = cmd.fade_s if cmd.fade_s is not None else base.fade_s
        self._set_lights(cmd.scene or "manual", level, base.colour, fade, cmd.by)
        return {"scene": cmd.scene or "manual", "level": level}

    def _cmd_call_ack(self, cmd: Any) -> dict[str, Any]:
        if self.call not in ("placed", "escalated"):
            raise InvalidState(f"Can't call_ack: no call waiting (call is {self.call})")
        self._emit("call_acknowledged", {"by": cmd.by})
        if self._lamp is not None:
            self._lamp.set_lamp("steady")
        return {"call": self.call}

    def _cmd_call_clear(self, cmd: Any) -> dict[str, Any]:
        if self.call == "idle":
            raise InvalidState("Can't call_clear: there is no open call")
        self._clear_call(cmd.by, "tablet")
        return {"call": self.call}

    def _cmd_alarm_ack(self, cmd: Any) -> dict[str, Any]:
        alarm = self.alarms.acknowledge(cmd.alarm_id, cmd.by)
        if alarm is None:
            raise InvalidPayload(f"field 'alarm_id': no current alarm '{cmd.alarm_id}'")
        return {"alarm_id": cmd.alarm_id}

    def _cmd_alarm_silence(self, cmd: Any) -> dict[str, Any]:
        silenced = self.alarms.silence(cmd.seconds, cmd.by)
        return {"silenced": [a.id for a in silenced], "seconds": cmd.seconds}

    def _cmd_nibp_now(self, cmd: Any) -> dict[str, Any]:
        if self._nibp is None or self.devices.get("nibp") != "ok":
            raise DeviceUnavailable(
                "no commandable blood-pressure module; measure by hand and use record_vitals"
            )
        self._request_nibp(cmd.by)
        return {}

    def _cmd_record_vitals(self, cmd: Any) -> dict[str, Any]:
        values = {k: getattr(cmd, k) for k in ("sys", "dia", "hr", "spo2")}
        given = {k: v for k, v in values.items() if v is not None}
        if not given:
            raise InvalidPayload("fields 'sys', 'dia', 'hr', 'spo2': give at least one")
        if (cmd.sys is None) != (cmd.dia is None):
            raise InvalidPayload("fields 'sys' and 'dia': give both or neither")
        if cmd.sys is not None and cmd.dia is not None and cmd.dia >= cmd.sys:
            raise InvalidPayload("field 'dia': must be below 'sys'")
        self._emit("vitals_recorded", {**given, "by": cmd.by, "source": "manual"})
        if cmd.sys is not None and self.latest_nibp is not None:
            self._link.publish_nibp(self.latest_nibp)
            self.journal.record_vitals(
                self.latest_nibp.ts, self.session_id, "nibp", self.latest_nibp.model_dump_json()
            )
            self.alarms.check_nibp(self.latest_nibp)
        return given

    def _cmd_checkin(self, cmd: Any) -> dict[str, Any]:
        self._emit("checkin_recorded", {"by": cmd.by, "note": cmd.note})
        return {}

    def _cmd_emergency(self, cmd: Any) -> dict[str, Any]:
        self._emit("emergency", {"reason": cmd.reason, "by": cmd.by})
        scene = self.config.hardware.lighting.scenes["emergency"]
        self._set_lights("emergency", scene.level, scene.colour, 0.0, cmd.by)
        if self._audio is not None:
            self._audio.stop(fade=False)
        if self.music_playing:
            self._emit("music_stopped", {"reason": "emergency"})
        if self.infusion_running:
            self._emit("infusion_stopped", {"reason": "emergency", "by": cmd.by})
        self.alarms.raise_now(
            "emergency", kind="physiological", priority="high", message=f"Emergency: {cmd.reason}"
        )
        return {}

    def _cmd_discharge(self, cmd: Any) -> dict[str, Any]:
        self._pass_gate("discharge", cmd)
        self._emit("discharged", {"by": cmd.by})
        self._end_session("discharged", cmd.by)
        return {"phase": self.phase}

    def _cmd_end_session(self, cmd: Any) -> dict[str, Any]:
        self._end_session(cmd.reason, cmd.by)
        return {"phase": self.phase}

    def _cmd_events(self, cmd: Any) -> dict[str, Any]:
        out: list[dict[str, Any]] = []
        size = 0
        for event in self.journal.events_since(cmd.since_seq, cmd.limit):
            item = event.model_dump(mode="json")
            size += len(json.dumps(item, separators=(",", ":"))) + 1
            if size > EVENTS_REPLY_BUDGET and out:
                break  # the caller continues from the last seq it got
            out.append(item)
        return {"events": out, "last_seq": self.journal.last_seq}

    def _cmd_status(self, cmd: Any) -> dict[str, Any]:
        return self.state().model_dump(mode="json")

    # === gates and phases ===============================================================

    def gate(self, name: str) -> GateResult:
        """Evaluate a gate as things stand now."""
        result = GateResult(name)
        if name == "safety":
            for item in ("readiness", "consent"):
                if item not in self.confirmed:
                    result.unmet[item] = f"{item} not confirmed by a clinician"
        if name in ("safety", "discharge"):
            vitals = self.current_vitals()
            manual = vitals is not None and vitals.source == "manual"
            # A hand-measured SpO2/HR stays valid as long as a baseline NIBP would.
            max_age = (
                self.protocol.baseline_max_age_minutes * 60 if manual else self.alarm_limits.stale_s
            )
            check_vitals(
                result,
                now=self._clock.now(),
                nibp=self.latest_nibp,
                nibp_max_age_s=self.protocol.baseline_max_age_minutes * 60,
                sample=vitals,
                sample_max_age_s=max_age,
                limits=self.alarm_limits,
            )
        return result

    def _pass_gate(self, name: str | None, cmd: Any) -> None:
        if name is not None:
            self._check_gate(self.gate(name), cmd)

    def _check_gate(self, result: GateResult, cmd: Any) -> None:
        override = getattr(cmd, "override", None)
        data: dict[str, Any] = {"gate": result.gate, "met": result.met, "unmet": list(result.unmet)}
        if not result.met:
            data["reasons"] = result.unmet
        if not result.met and override is not None:
            data["override"] = {"reason": override.reason, "by": cmd.by}
        self._emit("gate_checked", data)
        if not result.met and override is None:
            raise GateNotMet(result.message(), {"gate": result.gate, "unmet": result.unmet})

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
        self._emit("phase_changed", {"from": self.phase, "to": "ended", "by": by})
        self._emit("session_ended", {"reason": reason, "by": by})
        scene = self.config.hardware.lighting.scenes["ended"]
        self._set_lights("ended", scene.level, scene.colour, scene.fade_s, by)

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

    # === devices and the link ===========================================================

    def _on_plan(self, msg: ev.PlanReceived) -> None:
        if not msg.payload:
            return  # a cleared retained plan
        digest = _digest(msg.payload)
        if digest == self.journal.get_meta("last_plan_digest"):
            return  # the same retained plan again (a reconnect): already handled
        self.journal.set_meta("last_plan_digest", digest)
        try:
            plan = SessionPlan.model_validate(_parse_json_object(msg.payload))
            if self.phase in ACTIVE:
                raise ValueError(
                    f"a session ({self.session_id}) is running in this room; end it first"
                )
            tracks = self._resolve_tracks(plan)
        except (CommandError, ValidationError, ValueError) as exc:
            self._emit("plan_rejected", {"reasons": _reasons(exc)})
            return
        self._emit(
            "session_configured",
            {"plan": plan.model_dump(mode="json"), "tracks": tracks},
            session_id=plan.session_id,
        )

    def _on_link_up(self, msg: ev.LinkUp) -> None:
        self.link_online = True
        queued = self.journal.undelivered(limit=100_000)
        for event in queued:
            self._link.publish_event(event)
        self._link.publish_alarms(self.alarms.current())
        if self.latest_nibp is not None:
            self._link.publish_nibp(self.latest_nibp)
        if self._offline_since is not None and self._link_was_up:
            offline = self._clock.monotonic() - self._offline_since
            self._emit("link_restored", {"offline_s": round(offline, 3), "queued": len(queued)})
        self._offline_since = None
        self._link_was_up = True
        self._dirty = True

    def _on_link_down(self, msg: ev.LinkDown) -> None:
        self.link_online = False
        self._offline_since = self._clock.monotonic()
        self._dirty = True

    def _on_vitals(self, msg: ev.VitalsArrived) -> None:
        sample = msg.sample
        self.latest_sample = sample
        if sample.spo2 is not None or sample.hr is not None:
            self.last_valid_sample_mono = self._clock.monotonic()
        self.journal.record_vitals(sample.ts, self.session_id, "sample", sample.model_dump_json())
        if self.link_online:
            self._link.publish_vitals(sample)
        if self.phase in ACTIVE:
            self.alarms.check_sample(sample)
            self.alarms.set_condition(
                "sensor_off",
                sample.quality in ("sensor_off", "no_sensor"),
                kind="technical",
                priority="medium",
                message=f"Oximeter: {sample.quality.replace('_', ' ')}",
                delay_s=self.alarm_limits.stale_s,
            )

    def _on_nibp_completed(self, msg: ev.NibpCompleted) -> None:
        r = msg.reading
        self._emit(
            "nibp_result",
            {"sys": r.sys, "dia": r.dia, "map": r.map, "hr": r.hr, "source": r.source},
        )
        self.journal.record_vitals(r.ts, self.session_id, "nibp", r.model_dump_json())
        self._link.publish_nibp(r)
        self.alarms.clear("nibp_failed")
        self.alarms.clear("nibp_overdue")
        if self.phase in ACTIVE:
            self.alarms.check_nibp(r)

    def _on_nibp_failed(self, msg: ev.NibpFailed) -> None:
        self._emit("nibp_failed", {"code": msg.code})
        self.alarms.raise_now(
            "nibp_failed", kind="technical", priority="low", message=f"NIBP failed: {msg.code}"
        )

    def _on_device(self, msg: ev.DeviceChanged) -> None:
        if self.devices.get(msg.device) == msg.status:
            return
        type_ = "device_connected" if msg.status == "ok" else "device_lost"
        self._emit(type_, {"device": msg.device, "status": msg.status, "detail": msg.detail})
        code = f"{msg.device}_lost"
        if msg.status == "lost":
            self.alarms.raise_now(
                code,
                kind="technical",
                priority="medium",
                message=f"{msg.device} lost: {msg.detail}",
            )
        else:
            self.alarms.clear(code)

    def _on_track_started(self, msg: ev.TrackStarted) -> None:
        self._emit("track_started", {"track": msg.track, "outputs": list(msg.outputs)})

    def _on_track_ended(self, msg: ev.TrackEnded) -> None:
        self._emit("track_ended", {"track": msg.track, "played_s": round(msg.played_s, 3)})

    def _on_playlist_ended(self, msg: ev.PlaylistEnded) -> None:
        if self.music_playing:
            self._emit("music_stopped", {"reason": "playlist_ended"})
        self._maybe_debrief_ready()

    def _on_audio_failed(self, msg: ev.AudioFailed) -> None:
        self.alarms.raise_now(
            f"audio_{msg.output}_failed",
            kind="technical",
            priority="low",
            message=f"Audio output {msg.output} failed: {msg.message}",
        )

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

    def _resolve_tracks(self, plan: SessionPlan) -> list[str]:
        if plan.music_mode != "music" or self._library is None:
            return [] if plan.music_mode != "music" else _as_list(plan.playlist)
        try:
            return self._library.resolve(plan.playlist)
        except ValueError as exc:
            raise InvalidPayload(f"field 'playlist': {exc}") from None

    def _resolve_one(self, track: str) -> str:
        if self._library is None:
            return track
        try:
            return self._library.resolve([track])[0]
        except ValueError as exc:
            raise InvalidPayload(f"field 'track': {exc}") from None

    _link_was_up = False

    @property
    def protocol(self) -> ProtocolSection:
        """The protocol settings in force (the plan's overrides over the config)."""
        return self.effective_protocol

    @property
    def alarm_limits(self) -> AlarmsSection:
        """The alarm limits in force."""
        return self.alarms.limits


def _parse_json_object(payload: bytes) -> dict[str, Any]:
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise InvalidPayload(f"payload is {len(payload)} bytes; the limit is {MAX_PAYLOAD_BYTES}")
    try:
        obj = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidPayload(f"payload is not UTF-8 JSON ({exc})") from None
    if not isinstance(obj, dict):
        raise InvalidPayload(f"payload must be a JSON object, not {type(obj).__name__}")
    return obj


def _validate(verb: str, obj: dict[str, Any]) -> Command:
    try:
        return COMMANDS[verb].model_validate(obj)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "(payload)"
        raise InvalidPayload(
            f"field '{field}': {first['msg']}",
            {"fields": {".".join(str(p) for p in e["loc"]): e["msg"] for e in exc.errors()}},
        ) from None


def _reasons(exc: Exception) -> list[str]:
    if isinstance(exc, ValidationError):
        return [f"{'.'.join(str(p) for p in e['loc']) or 'plan'}: {e['msg']}" for e in exc.errors()]
    if isinstance(exc, CommandError):
        return [exc.message]
    return [str(exc)]


def _digest(payload: bytes) -> str:
    return hashlib.sha256(payload).hexdigest()


def _iso(ts: datetime) -> str:
    return iso_utc(ts)


def _as_list(playlist: Sequence[str] | str) -> list[str]:
    return [playlist] if isinstance(playlist, str) else list(playlist)
