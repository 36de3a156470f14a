"""The session machine: the Montreal model's phases, their gates, and the clinicians' steps.

It decides every step of a session — start, advance, confirmations, the infusion, check-ins,
emergency, discharge and end — and leaves the facts in ``SessionState`` through events. The
phase order and which verb each phase allows are declared in ``phases.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from controller import events as ev
from controller.alarms import AlarmEngine
from controller.calls import Calls
from controller.config import Config
from controller.errors import InvalidState
from controller.eventlog import EventLog
from controller.gates import Gates
from controller.health import Health
from controller.journal import Journal
from controller.models import Event, Phase, SessionPlan, parse_utc
from controller.monitoring import Monitoring
from controller.outputs import Lights, Music
from controller.phases import GATE_ON_ENTRY, NEXT
from controller.plans import Plans
from controller.ports import Clock, SessionRecords
from controller.prompts import Prompt, give_prompt
from controller.state import SessionState
from controller.timers import Timers

CHECKIN = Prompt("checkin_due", "checkin_missed", "No-music check-in missed: check on the patient")
"""No-music mode: a clinician checks on the patient every few minutes of the infusion."""


class SessionMachine:
    """Runs the session's steps; every decision becomes an event in ``SessionState``."""

    def __init__(
        self,
        *,
        config: Config,
        clock: Clock,
        journal: Journal,
        log: EventLog,
        timers: Timers,
        state: SessionState,
        gates: Gates,
        plans: Plans,
        health: Health,
        monitoring: Monitoring,
        alarms: AlarmEngine,
        calls: Calls,
        lights: Lights,
        music: Music,
        records: SessionRecords | None,
    ) -> None:
        self._config = config
        self._clock = clock
        self._journal = journal
        self._log = log
        self._timers = timers
        self.state = state
        self._gates = gates
        self._plans = plans
        self._health = health
        self._monitoring = monitoring
        self._alarms = alarms
        self._calls = calls
        self._lights = lights
        self._music = music
        self.records = records  # public: the daemon and tests may give one later

    def timer_table(self) -> dict[str, Callable[[], None]]:
        """The timers this part owns, by name."""
        return {"infusion_end": self._infusion_end, "checkin": self._checkin_due}

    def apply(self, event: Event) -> None:
        """Arm and cancel the session's timers from one journal event."""
        s, data = self.state, event.data
        match event.type:
            case "infusion_started":
                self._timers.set_at(
                    "infusion_end", event.ts + timedelta(seconds=s.infusion_target_s)
                )
                if s.music_mode == "no_music":
                    minutes = s.protocol.checkin_interval_minutes
                    self._timers.set_at("checkin", event.ts + timedelta(minutes=minutes))
            case "infusion_completed" | "infusion_stopped":
                self._timers.cancel("infusion_end")
            case "checkin_due":
                self._timers.set_at("checkin", parse_utc(data["next_due_at"]))
            case "phase_changed" if data["to"] != "infusion":
                self._timers.cancel("checkin")
            case "session_ended":
                self._timers.clear()
            case _:
                pass

    # --- the steps ------------------------------------------------------------------

    def start_session(self, cmd: Any) -> dict[str, Any]:
        """``start_session``: begin the plan's session at check-in."""
        if not self._health.clock_synced and not self._config.room.allow_unsynced_clock:
            raise InvalidState(
                "Can't start_session: the room's clock is not synchronised (check NTP; "
                "a technician can set [room] allow_unsynced_clock = true)"
            )
        if (
            self._health.devices.get("oximeter") == "absent"
            and self._config.room.monitoring != "manual"
        ):
            raise InvalidState(
                "Can't start_session: no oximeter, so no continuous SpO2 (connect one, or a "
                'technician sets [room] monitoring = "manual" for hand entries every few minutes)'
            )
        plan: SessionPlan | None = cmd.plan or self.state.pending_plan
        if plan is None:
            raise InvalidState(
                "Can't start_session: no session plan (publish one on 'plan' or pass 'plan')"
            )
        if self._journal.last_event("session_started") is not None and any(
            e.type == "session_started" for e in self._journal.session_events(plan.session_id)
        ):
            raise InvalidState(f"session '{plan.session_id}' has already been run in this room")
        tracks = self._plans.resolve_tracks(plan)
        previous = self.state.phase
        self._log.emit(
            "session_started",
            {"plan": plan.model_dump(mode="json"), "tracks": tracks, "by": cmd.by},
            session_id=plan.session_id,
        )
        self._log.emit(
            "limits_in_force",
            {
                "alarms": self._alarms.limits_in_force(),
                "discharge": self._config.discharge.model_dump(),
                "monitoring": self._config.room.monitoring,
            },
        )
        self._enter_phase("check_in", cmd.by, previous=previous)
        return {"session_id": plan.session_id}

    def advance(self, cmd: Any) -> dict[str, Any]:
        """``advance``: to the next phase, through its gate."""
        s = self.state
        if s.phase == "discharge":
            return self.discharge(cmd)
        if s.phase == "infusion" and not (s.infusion_completed or s.infusion_stopped):
            raise InvalidState(
                "Can't advance while in infusion: "
                + (
                    "the infusion is running (stop_infusion or wait for it to complete)"
                    if s.infusion_running
                    else "the infusion has not started (start_infusion, or end_session)"
                )
            )
        if s.phase == "infusion" and self._playlist_playing() and cmd.reason is None:
            raise InvalidState(
                "Can't advance while in infusion: the playlist is still playing (the debrief "
                "follows the infusion or the playlist); give a reason to cut it short"
            )
        target = NEXT[s.phase]
        self._gates.pass_gate(GATE_ON_ENTRY.get(target), cmd)
        self._enter_phase(target, cmd.by, why=cmd.reason)
        return {"phase": s.phase}

    def confirm(self, cmd: Any) -> dict[str, Any]:
        """``confirm``: a clinician confirms readiness, consent or the IV line."""
        self._log.emit("confirmed", {"item": cmd.item, "by": cmd.by})
        return {"item": cmd.item}

    def start_infusion(self, cmd: Any) -> dict[str, Any]:
        """``start_infusion``: the 40-minute infusion begins (the IV line confirmed)."""
        s = self.state
        if s.infusion_running or s.infusion_completed or s.infusion_stopped:
            raise InvalidState("Can't start_infusion: this session's infusion has already started")
        # The gate again, at the moment that matters: readings go stale and limits are crossed
        # between entering the phase and starting the drug.
        self._gates.pass_gate("infusion_start", cmd)
        self._log.emit("infusion_started", {"target_s": s.infusion_target_s, "by": cmd.by})
        if s.tracks:  # the playlist, after the guidance if any (no-music: guidance only)
            self._music.start(cmd.by)
        return {"target_s": s.infusion_target_s}

    def stop_infusion(self, cmd: Any) -> dict[str, Any]:
        """``stop_infusion``: the infusion was stopped early."""
        if not self.state.infusion_running:
            raise InvalidState("Can't stop_infusion: the infusion is not running")
        self._log.emit("infusion_stopped", {"reason": cmd.reason, "by": cmd.by})
        return {"elapsed_s": round(self.state.infusion_elapsed_s(), 3)}

    def checkin(self, cmd: Any) -> dict[str, Any]:
        """``checkin``: a clinician checked in with the patient (no-music mode)."""
        self._log.emit("checkin_recorded", {"by": cmd.by, "note": cmd.note})
        self._alarms.clear("checkin_missed")
        return {}

    def emergency(self, cmd: Any) -> dict[str, Any]:
        """``emergency``: lights full, music off, infusion marked stopped, a high alarm."""
        self._log.emit("emergency", {"reason": cmd.reason, "by": cmd.by})
        self._lights.show("emergency", cmd.by, fade_s=0.0)
        self._music.stop("emergency", fade=False)
        if self.state.infusion_running:
            self._log.emit("infusion_stopped", {"reason": "emergency", "by": cmd.by})
        self._alarms.raise_now(
            "emergency", kind="physiological", priority="high", message=f"Emergency: {cmd.reason}"
        )
        return {}

    def discharge(self, cmd: Any) -> dict[str, Any]:
        """``discharge``: the patient leaves, through the discharge gate."""
        self._gates.pass_gate("discharge", cmd)
        self._log.emit("discharged", {"by": cmd.by})
        self._end("discharged", cmd.by, discharged=True)
        return {"phase": self.state.phase}

    def end_session(self, cmd: Any) -> dict[str, Any]:
        """``end_session``: end the session without discharge."""
        self._end(cmd.reason, cmd.by)
        return {"phase": self.state.phase}

    # --- what the devices say -------------------------------------------------------

    def on_playlist_ended(self, msg: ev.PlaylistEnded) -> None:
        """The playlist ended: the music stops, and the debrief may be ready."""
        self._music.on_playlist_ended()
        self.maybe_debrief_ready()

    def on_report_written(self, msg: ev.ReportWritten) -> None:
        """A session's record was written: say where (nothing when it failed; it is logged)."""
        if msg.result is not None:
            self._log.emit("report_ready", msg.result, session_id=msg.session_id)

    # --- inside the steps -----------------------------------------------------------

    def _enter_phase(
        self, target: Phase, by: str, *, why: str | None = None, previous: Phase | None = None
    ) -> None:
        previous = previous or self.state.phase
        self._log.emit("phase_changed", {"from": previous, "to": target, "by": by})
        self._lights.show_phase(target, by)
        if previous == "infusion":
            if self._music.playing:
                self._music.stop("phase_changed", by=by, note=why)
            self._alarms.clear("checkin_missed")  # check-ins belong to the infusion
        if target == "discharge":
            self._monitoring.nibp_due()

    def _end(self, reason: str, by: str, *, discharged: bool = False) -> None:
        if self._music.playing:
            self._music.stop("session_ended")
        if self.state.infusion_running:
            self._log.emit("infusion_stopped", {"reason": "session_ended", "by": by})
        self._calls.clear(by, "session_end")
        open_alarms = self._alarms.end_session()
        session_id, phase = self.state.session_id, self.state.phase
        self._log.emit("phase_changed", {"from": phase, "to": "ended", "by": by})
        self._log.emit(
            "session_ended",
            {
                "reason": reason,
                "by": by,
                "discharged": discharged,
                "from_phase": phase,
                "open_alarms": open_alarms,
            },
        )
        self._lights.show("ended", by)
        if self.records is not None and session_id is not None:
            self.records.write(session_id)  # off the core thread: ReportWritten comes back

    def _infusion_end(self) -> None:
        elapsed = round(self.state.infusion_elapsed_s(), 3)
        self._log.emit("infusion_completed", {"elapsed_s": elapsed})
        self.maybe_debrief_ready()

    def _checkin_due(self) -> None:
        give_prompt(
            CHECKIN,
            answered=self.state.checkin_done,
            every_minutes=self.state.protocol.checkin_interval_minutes,
            clock=self._clock,
            log=self._log,
            alarms=self._alarms,
        )

    def maybe_debrief_ready(self) -> None:
        """Say the debrief may begin: the infusion is complete and no playlist still plays
        (it ended, was stopped, or its audio failed)."""
        s = self.state
        if s.debrief_ready_sent or not s.infusion_completed or self._playlist_playing():
            return
        self._log.emit("debrief_ready", {})

    def _playlist_playing(self) -> bool:
        # Music mode's playlist, still audible: the debrief follows the infusion *or* it.
        # (No-music mode's guidance track alone holds nothing up.)
        s = self.state
        return s.music_mode == "music" and bool(s.tracks) and self._music.audible
