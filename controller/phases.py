"""The session's phases, which commands each allows, and the gates between them — declared.

The Montreal model's session runs in a fixed order; the table below is that order. Commands
are allowed per phase by ``VERB_PHASES``; a refused command gets a message that tells the
clinician what to do instead.
"""

from __future__ import annotations

import itertools
import typing
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

from controller.config import AlarmsSection
from controller.models import NibpReading, Phase, VitalsSample

PHASES: Final[tuple[Phase, ...]] = typing.get_args(Phase)
"""The phases in session order (the order ``models.Phase`` declares them in)."""
ACTIVE: Final[frozenset[Phase]] = frozenset(PHASES[1:-1])
"""Phases with a patient in the room."""

NEXT: Final[dict[Phase, Phase]] = dict(itertools.pairwise(PHASES[1:]))
"""Where ``advance`` goes from each active phase (leaving ``discharge`` ends the session)."""

GATE_ON_ENTRY: Final[dict[Phase, str]] = {"infusion": "safety", "ended": "discharge"}
"""The gate checked when entering a phase."""

ANY: Final[frozenset[Phase]] = frozenset(PHASES)
VERB_PHASES: Final[dict[str, frozenset[Phase]]] = {
    "start_session": frozenset({"idle", "ended"}),
    "advance": ACTIVE,
    "confirm": frozenset({"check_in", "integration", "intentions", "pre_infusion", "infusion"}),
    "start_infusion": frozenset({"infusion"}),
    "stop_infusion": frozenset({"infusion"}),
    "music": ACTIVE,
    "lights": ANY,
    "call_ack": ANY,
    "call_clear": ANY,
    "alarm_ack": ANY,
    "alarm_silence": ANY,
    "nibp_now": ANY,
    "record_vitals": ACTIVE,
    "checkin": ACTIVE,
    "emergency": ANY,
    "discharge": frozenset({"discharge"}),
    "end_session": ACTIVE,
    "events": ANY,
    "status": ANY,
}


def wrong_phase_message(verb: str, phase: Phase) -> str:
    """Words for a command refused in ``phase``: what the clinician should do instead."""
    allowed = VERB_PHASES[verb]
    head = f"Can't {verb} while in {phase}"
    if phase in ("idle", "ended") and allowed <= ACTIVE:
        return f"{head}: no session is running (start_session first)"
    if verb == "start_session":
        return f"{head}: a session is running (end_session or discharge first)"
    here = PHASES.index(phase)
    if phase in NEXT and any(p in allowed for p in PHASES[here + 1 :]):
        return f"{head}: advance to {NEXT[phase]} first"
    return f"{head}: only allowed in {', '.join(p for p in PHASES if p in allowed)}"


@dataclass
class GateResult:
    """A gate's verdict: ``unmet`` items, each with the reason in words."""

    gate: str
    unmet: dict[str, str] = field(default_factory=dict)

    @property
    def met(self) -> bool:
        """Whether nothing is unmet."""
        return not self.unmet

    def message(self) -> str:
        """The unmet items in one sentence."""
        return f"{self.gate} gate not met: " + "; ".join(f"{k}: {v}" for k, v in self.unmet.items())


def check_vitals(
    result: GateResult,
    *,
    now: datetime,
    nibp: NibpReading | None,
    nibp_max_age_s: float,
    sample: VitalsSample | None,
    sample_max_age_s: float,
    limits: AlarmsSection,
) -> None:
    """Add to ``result`` what keeps the vitals from being valid and within limits."""
    if nibp is None:
        result.unmet["nibp"] = "no blood pressure recorded"
    else:
        age = (now - nibp.ts).total_seconds()
        if age > nibp_max_age_s:
            result.unmet["nibp"] = (
                f"last blood pressure is {age / 60:.0f} min old (max {nibp_max_age_s / 60:g})"
            )
        elif nibp.sys > limits.sys_high.limit or nibp.dia > limits.dia_high.limit:
            result.unmet["nibp"] = f"blood pressure {nibp.sys}/{nibp.dia} above limits"
        elif nibp.sys < limits.sys_low.limit:
            result.unmet["nibp"] = f"systolic {nibp.sys} below {limits.sys_low.limit:g}"
    fresh = sample is not None and (now - sample.ts).total_seconds() <= sample_max_age_s
    if not fresh or sample is None or sample.spo2 is None:
        result.unmet["spo2"] = "no valid SpO2 reading"
    elif sample.spo2 < limits.spo2_low.limit:
        result.unmet["spo2"] = f"SpO2 {sample.spo2} below {limits.spo2_low.limit:g}"
    if not fresh or sample is None or sample.hr is None:
        result.unmet["hr"] = "no valid heart rate reading"
    elif not limits.hr_low.limit <= sample.hr <= limits.hr_high.limit:
        result.unmet["hr"] = (
            f"heart rate {sample.hr} outside {limits.hr_low.limit:g}-{limits.hr_high.limit:g}"
        )
