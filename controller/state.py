"""The room's state as a fold over journal events, and the RoomState built from it."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, TypeVar

from controller.alarms import AlarmEngine
from controller.config import Config, ProtocolSection
from controller.journal import Journal
from controller.models import (
    CallState,
    Devices,
    Event,
    Gates,
    InfusionState,
    LightingState,
    LinkState,
    MusicState,
    NibpReading,
    Phase,
    RoomState,
    SessionPlan,
    VitalsSample,
)
from controller.phases import GateResult
from controller.ports import Clock
from controller.timers import Timers

T = TypeVar("T", VitalsSample, NibpReading)


class RoomView:
    """What the room knows, rebuilt from events by ``apply``; no decisions, no I/O."""

    journal: Journal
    alarms: AlarmEngine

    def gate(self, name: str) -> GateResult:
        """Evaluate a gate as things stand now (the session machine decides how)."""
        raise NotImplementedError

    def __init__(self, config: Config, clock: Clock) -> None:
        self.config = config
        self._clock = clock
        self.timers = Timers(clock)
        self.devices: dict[str, str] = {
            "oximeter": "absent",
            "nibp": "absent",
            "call_button": "absent",
            "lighting": "absent",
            "audio": "absent",
        }
        self.link_online = False
        # A call belongs to the room: a patient may call before the session starts.
        self.call = "idle"
        self.clock_synced = True  # until the daemon's clock check says otherwise
        self.latest_sample: VitalsSample | None = None
        self.latest_sample_mono: float | None = None
        self.last_valid_sample_mono: float | None = None
        self.lighting_scene = "idle"
        self.lighting_level = 0.0
        self.pending_plan: SessionPlan | None = None
        self.pending_tracks: list[str] = []
        self._reset_session()

    def _reset_session(self) -> None:
        self.phase: Phase = "idle" if not hasattr(self, "phase") else self.phase
        self.phase_started_at: datetime | None = getattr(self, "phase_started_at", None)
        self._phase_started_mono: float | None = getattr(self, "_phase_started_mono", None)
        self.session_id: str | None = None
        self.plan: SessionPlan | None = None
        self.tracks: list[str] = []
        self.effective_protocol: ProtocolSection = self.config.protocol
        self.confirmed: dict[str, str] = {}
        self.infusion_started_at: datetime | None = None
        self._infusion_start_mono: float | None = None
        self._infusion_end_mono: float | None = None
        self.infusion_target_s = self.config.protocol.infusion_minutes * 60
        self.infusion_running = False
        self.infusion_completed = False
        self.infusion_stopped = False
        self.music_started = False
        self.music_playing = False
        self.playlist_ended = False
        self.current_track: str | None = None
        self.track_index = -1
        self.track_started_at: datetime | None = None
        self.headphones_volume = self.config.audio.headphones_volume
        self.speakers_volume = self.config.audio.speakers_volume
        self.debrief_ready_sent = False
        self.emergency_declared = False
        self.checkin_done = True
        self.manual_spo2_hr: tuple[datetime, int | None, int | None] | None = None
        # A reading belongs to the patient it was taken on: never to the next one's gate.
        self.latest_nibp: NibpReading | None = None
        self.latest_nibp_mono: float | None = None
        self.manual_mono = float("-inf")

    # --- the fold ---------------------------------------------------------------------

    def apply(self, event: Event) -> None:
        """Fold one event into the state."""
        data: dict[str, Any] = event.data
        ts = event.ts
        match event.type:
            case "session_configured":
                self.pending_plan = SessionPlan.model_validate(data["plan"])
                self.pending_tracks = list(data.get("tracks", []))
            case "session_started":
                self._reset_session()
                plan = SessionPlan.model_validate(data["plan"])
                self.plan = plan
                self.session_id = plan.session_id
                self.tracks = list(data.get("tracks", []))
                self.pending_plan = None
                overrides = plan.protocol.model_dump(exclude_none=True)
                self.effective_protocol = self.config.protocol.model_copy(update=overrides)
                self.infusion_target_s = self.effective_protocol.infusion_minutes * 60
            case "phase_changed":
                self.phase = data["to"]
                self.phase_started_at = ts
                self._phase_started_mono = self._mono_at(ts)
            case "confirmed":
                self.confirmed[data["item"]] = data["by"]
            case "infusion_started":
                self.infusion_started_at = ts
                self._infusion_start_mono = self._mono_at(ts)
                self.infusion_target_s = float(data["target_s"])
                self.infusion_running = True
            case "infusion_completed":
                self.infusion_running = False
                self.infusion_completed = True
                self._infusion_end_mono = self._mono_at(ts)
            case "infusion_stopped":
                if self.infusion_running:
                    self._infusion_end_mono = self._mono_at(ts)
                self.infusion_running = False
                self.infusion_stopped = True
            case "music_started":
                self.music_started = self.music_playing = True
                self.playlist_ended = False
                self.track_index = -1
            case "track_started":
                self.current_track = data["track"]
                # By name from the current position: a track restarted after a resume is the
                # same track, not the next one.
                try:
                    index = self.tracks.index(data["track"], max(self.track_index, 0))
                except ValueError:
                    index = self.track_index + 1
                if index != self.track_index or self.track_started_at is None:
                    self.track_started_at = ts  # a resumed track keeps its first start
                self.track_index = index
            case "track_ended":
                self.current_track = None
            case "music_stopped":
                self.music_playing = False
                self.current_track = None
                if data.get("reason") == "playlist_ended":
                    self.playlist_ended = True
            case "volume_changed":
                if data["output"] in ("headphones", "both"):
                    self.headphones_volume = data["level"]
                if data["output"] in ("speakers", "both"):
                    self.speakers_volume = data["level"]
            case "debrief_ready":
                self.debrief_ready_sent = True
            case "emergency":
                self.emergency_declared = True
            case "call_placed":
                self.call = "placed"
            case "call_escalated":
                self.call = "escalated"
            case "call_acknowledged":
                self.call = "acknowledged"
            case "call_cleared":
                self.call = "idle"
            case "checkin_due":
                self.checkin_done = False
            case "checkin_recorded":
                self.checkin_done = True
            case "nibp_result":
                self.latest_nibp_mono = self._mono_at(ts)
                self.latest_nibp = NibpReading(
                    ts=ts,
                    sys=data["sys"],
                    dia=data["dia"],
                    map=data["map"],
                    hr=data.get("hr"),
                    source=data["source"],
                )
            case "vitals_recorded":
                if "sys" in data:
                    self.latest_nibp_mono = self._mono_at(ts)
                    self.latest_nibp = NibpReading(
                        ts=ts,
                        sys=data["sys"],
                        dia=data["dia"],
                        map=round((data["sys"] + 2 * data["dia"]) / 3),
                        hr=data.get("hr"),
                        source="manual",
                        by=data["by"],
                    )
                if "spo2" in data or "hr" in data:
                    self.manual_spo2_hr = (ts, data.get("spo2"), data.get("hr"))
                    self.manual_mono = self._mono_at(ts)
            case "lighting_changed":
                self.lighting_scene = data["scene"]
                self.lighting_level = data["level"]
            case "device_connected" | "device_lost":
                self.devices[data["device"]] = data["status"]
            case "session_ended":
                self.phase = "ended"
                self._reset_session()
            case _:
                pass

    def _mono_at(self, ts: datetime) -> float:
        """The monotonic reading that corresponds to UTC ``ts`` (past events after a restart)."""
        return self._clock.monotonic() - (self._clock.now() - ts).total_seconds()

    # --- derived values ---------------------------------------------------------------

    def infusion_elapsed_s(self) -> float:
        """Seconds the infusion has run (frozen once completed or stopped)."""
        if self._infusion_start_mono is None:
            return 0.0
        end = self._infusion_end_mono if not self.infusion_running else self._clock.monotonic()
        end = end if end is not None else self._clock.monotonic()
        return max(0.0, end - self._infusion_start_mono)

    def music_position(self) -> tuple[int, float]:
        """The current track index and seconds into it (for resuming after a restart)."""
        if self.track_started_at is None:
            return 0, 0.0
        return max(self.track_index, 0), (self._clock.now() - self.track_started_at).total_seconds()

    def checkin_missed(self) -> bool:
        """Whether the last check-in prompt went unanswered."""
        return not self.checkin_done

    def current_vitals(self) -> VitalsSample | None:
        """The oximeter's latest sample, or a recent manual SpO2/HR when it is newer.

        Its ``ts`` is re-stated as now minus its monotonic age, so a wall-clock step can
        neither freshen nor age a reading.
        """
        sample, at = self.latest_sample, self.latest_sample_mono
        manual = self.manual_spo2_hr
        if manual is not None and (at is None or self.manual_mono > at):
            sample = VitalsSample(ts=manual[0], spo2=manual[1], hr=manual[2], source="manual")
            at = self.manual_mono
        return None if sample is None or at is None else self._aged(sample, at)

    def current_nibp(self) -> NibpReading | None:
        """The latest blood pressure, its ``ts`` re-stated by monotonic age (see above)."""
        if self.latest_nibp is None or self.latest_nibp_mono is None:
            return self.latest_nibp
        return self._aged(self.latest_nibp, self.latest_nibp_mono)

    def _aged(self, reading: T, at_mono: float) -> T:
        age = self._clock.monotonic() - at_mono
        return reading.model_copy(update={"ts": self._clock.now() - timedelta(seconds=age)})

    # --- the retained state -----------------------------------------------------------

    def state(self) -> RoomState:
        """The room as the contract's RoomState."""
        now = self._clock.now()
        mono = self._clock.monotonic()
        plan = self.plan
        gate_safety = self.gate("safety")
        gate_discharge = self.gate("discharge")
        alarms = self.alarms.current()
        return RoomState(
            room_id=self.config.room.id,
            session_id=self.session_id,
            patient_ref=plan.patient_ref if plan else None,
            session_number=plan.session_number if plan else None,
            phase=self.phase,
            phase_started_at=self.phase_started_at,
            phase_elapsed_s=round(mono - self._phase_started_mono, 3)
            if self._phase_started_mono is not None
            else 0.0,
            infusion=InfusionState(
                running=self.infusion_running,
                started_at=self.infusion_started_at,
                elapsed_s=round(self.infusion_elapsed_s(), 3),
                target_s=self.infusion_target_s,
                completed=self.infusion_completed,
            ),
            music=MusicState(
                mode=plan.music_mode if plan else None,
                playing=self.music_playing,
                track=self.current_track,
                headphones_volume=self.headphones_volume,
                speakers_volume=self.speakers_volume,
            ),
            lighting=LightingState(scene=self.lighting_scene, level=self.lighting_level),
            call=CallState(state=self.call),
            alarms=[a.code for a in alarms],
            devices=Devices(**self.devices),
            gates=Gates(
                readiness="readiness" in self.confirmed,
                consent="consent" in self.confirmed,
                baseline_vitals=not ({"nibp", "spo2", "hr"} & set(gate_safety.unmet)),
                discharge_vitals=gate_discharge.met,
            ),
            next_nibp_due_at=self.timers.due_at("nibp"),
            link=LinkState(online=self.link_online, queued=self.journal.count_undelivered()),
            updated_at=now,
        )
