"""The session's facts, folded from journal events: phase, plan, confirmations, infusion.

``SessionState`` holds what the session machine decided and nothing else; other parts read it
(the phase, the protocol in force, the tracks) and never change it. It is rebuilt by replaying
the journal, so a resumed room holds the session that was running.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from controller.clock import mono_at
from controller.config import Config, ProtocolSection
from controller.models import Event, Phase, SessionPlan
from controller.phases import ACTIVE
from controller.ports import Clock


class SessionState:
    """The running session as events left it; ``apply`` is its fold."""

    def __init__(self, config: Config, clock: Clock) -> None:
        self._config = config
        self._clock = clock
        self.phase: Phase = "idle"
        self.phase_started_at: datetime | None = None
        self.phase_started_mono: float | None = None
        # A plan published for the next session (retained on 'plan'), before start_session.
        self.pending_plan: SessionPlan | None = None
        self.pending_tracks: list[str] = []
        self._reset()

    def _reset(self) -> None:
        self.session_id: str | None = None
        self.plan: SessionPlan | None = None
        self.tracks: list[str] = []
        self.protocol: ProtocolSection = self._config.protocol
        self.confirmed: dict[str, str] = {}
        self.infusion_started_at: datetime | None = None
        self.infusion_start_mono: float | None = None
        self.infusion_end_mono: float | None = None
        self.infusion_target_s = self._config.protocol.infusion_minutes * 60
        self.infusion_running = False
        self.infusion_completed = False
        self.infusion_stopped = False
        self.debrief_ready_sent = False
        self.emergency_declared = False
        self.checkin_done = True

    @property
    def active(self) -> bool:
        """Whether a patient's session is under way (check_in … discharge)."""
        return self.phase in ACTIVE

    @property
    def music_mode(self) -> str | None:
        """The plan's music mode, None outside a session."""
        return self.plan.music_mode if self.plan else None

    def apply(self, event: Event) -> None:
        """Fold one event into the session's facts."""
        data: dict[str, Any] = event.data
        match event.type:
            case "session_configured":
                self.pending_plan = SessionPlan.model_validate(data["plan"])
                self.pending_tracks = list(data.get("tracks", []))
            case "session_started":
                self._reset()
                plan = SessionPlan.model_validate(data["plan"])
                self.plan = plan
                self.session_id = plan.session_id
                self.tracks = list(data.get("tracks", []))
                self.pending_plan = None
                overrides = plan.protocol.model_dump(exclude_none=True)
                self.protocol = self._config.protocol.model_copy(update=overrides)
                self.infusion_target_s = self.protocol.infusion_minutes * 60
                # A started session is at check-in from its first event: a room killed before
                # the phase_changed that follows must not resume a session in idle or ended.
                self._enter("check_in", event.ts)
            case "plan_amended" if self.plan is not None:
                self.plan = self.plan.model_copy(update=data["changes"])
                self.tracks = list(data["tracks"])
            case "phase_changed":
                self._enter(data["to"], event.ts)
            case "confirmed":
                self.confirmed[data["item"]] = data["by"]
            case "infusion_started":
                self.infusion_started_at = event.ts
                self.infusion_start_mono = mono_at(self._clock, event.ts)
                self.infusion_target_s = float(data["target_s"])
                self.infusion_running = True
            case "infusion_completed":
                self.infusion_running = False
                self.infusion_completed = True
                self.infusion_end_mono = mono_at(self._clock, event.ts)
            case "infusion_stopped":
                if self.infusion_running:
                    self.infusion_end_mono = mono_at(self._clock, event.ts)
                self.infusion_running = False
                self.infusion_stopped = True
            case "debrief_ready":
                self.debrief_ready_sent = True
            case "emergency":
                self.emergency_declared = True
            case "checkin_due":
                self.checkin_done = False
            case "checkin_recorded":
                self.checkin_done = True
            case "session_ended":
                self.phase = "ended"
                self._reset()
            case _:
                pass

    def _enter(self, phase: Phase, ts: datetime) -> None:
        self.phase = phase
        self.phase_started_at = ts
        self.phase_started_mono = mono_at(self._clock, ts)

    def infusion_elapsed_s(self) -> float:
        """Seconds the infusion has run (frozen once completed or stopped)."""
        if self.infusion_start_mono is None:
            return 0.0
        end = self.infusion_end_mono if not self.infusion_running else None
        end = end if end is not None else self._clock.monotonic()
        return max(0.0, end - self.infusion_start_mono)

    def phase_elapsed_s(self) -> float:
        """Seconds since the current phase began (0 before the first phase change)."""
        if self.phase_started_mono is None:
            return 0.0
        return round(self._clock.monotonic() - self.phase_started_mono, 3)
