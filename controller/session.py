"""The room: the session machine, fed one inbox message at a time; the clinicians' commands.

Every decision is an event: ``_emit`` journals it, ``apply`` folds it into the room's state,
and only then is it published. ``apply`` is the same code that rebuilds the room from the
journal after a restart, so a resumed session is the session that was running.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from functools import cached_property
from typing import Any

from controller import events as ev
from controller.errors import (
    CommandError,
    DeviceUnavailable,
    GateNotMet,
    InvalidPayload,
    InvalidState,
    UnknownVerb,
)
from controller.inputs import RoomInputs
from controller.models import (
    COMMANDS,
    MAX_PAYLOAD_BYTES,
    Command,
    ErrorBody,
    Reply,
    SessionPlan,
    parse_json_object,
    validate_command,
)
from controller.phases import (
    GATE_ON_ENTRY,
    NEXT,
    VERB_PHASES,
    GateResult,
    check_vitals,
    wrong_phase_message,
)

log = logging.getLogger("roomd.core")

EVENTS_REPLY_BUDGET = MAX_PAYLOAD_BYTES - 4096
"""The ``events`` reply stops adding events before it would pass the contract's 64 KiB."""


class Room(RoomInputs):
    """One treatment room: phases, gates, timers, alarms, calls, music, lights, journal."""

    def handle(self, message: ev.InboxMessage) -> None:
        """Act on one inbox message, then publish what changed."""
        handler = self._handlers.get(type(message))
        if handler is None:
            log.warning("no handler for %r", message)
            return
        handler(message)
        self.tick()

    @cached_property
    def _handlers(self) -> dict[type, Callable[[Any], None]]:
        table: dict[type, Callable[[Any], None]] = {
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
            ev.ClockSync: self._on_clock_sync,
            ev.ReportWritten: self._on_report_written,
        }
        if self._simulator is not None:
            table[ev.SimAction] = self._simulator
        return table

    def _on_report_written(self, msg: ev.ReportWritten) -> None:
        # A record that could not be written is logged by the writer; the journal keeps all.
        if msg.result is not None:
            self._emit("report_ready", msg.result, session_id=msg.session_id)

    # === commands ========================================================================

    def _on_command(self, msg: ev.CommandReceived) -> None:
        request_id, verb = "", msg.verb
        try:
            obj = parse_json_object(msg.payload)
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
            command = validate_command(verb, obj)
            self._check_fresh(command)
            if self.phase not in VERB_PHASES[verb]:
                raise InvalidState(wrong_phase_message(verb, self.phase))
            result = getattr(self, f"_cmd_{verb}")(command)
            reply = Reply(request_id=request_id, verb=verb, ok=True, result=result or {})
        except CommandError as exc:
            reply = self._reject(request_id, verb, exc.code, exc.message, exc.details)
        except Exception:  # a bug must not stop the room; say so and keep the room running
            log.exception("command %s failed", verb)
            reply = self._reject(request_id, verb, "internal", "internal error; see the room's log")
        try:
            self._reply(msg, reply, record=bool(request_id))
        except Exception:  # the command is decided and journaled; a failed reply must not jam
            log.exception("reply to %s could not be sent", verb)

    def _check_fresh(self, command: Command) -> None:
        """Refuse a command older than the configured age: a stale start_infusion must never
        run minutes late (the broker keeps commands for a room that was briefly away)."""
        limit = self._command_max_age_s
        if limit is None or command.sent_at is None:
            return
        age = (self._clock.now() - command.sent_at).total_seconds()
        if age > limit:
            raise InvalidPayload(
                f"field 'sent_at': the command is {age:.0f} s old (limit {limit:g} s); "
                "not executed, send it again if it still applies",
                {"age_s": round(age, 3), "limit_s": limit},
            )

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

    # === gates ===========================================================================

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
                nibp=self.current_nibp(),
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

    def _cmd_start_session(self, cmd: Any) -> dict[str, Any]:
        if not self.clock_synced and not self.config.room.allow_unsynced_clock:
            raise InvalidState(
                "Can't start_session: the room's clock is not synchronised (check NTP; "
                "a technician can set [room] allow_unsynced_clock = true)"
            )
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
        if self.tracks:  # the playlist, after the guidance if any (no-music: guidance only)
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
