"""The session's phases, which commands each allows, and the gates between them — declared.

The Montreal model's session runs in a fixed order; the table below is that order. Commands
are allowed per phase by ``VERB_PHASES``; a refused command gets a message that tells the
clinician what to do instead.
"""

from __future__ import annotations

import itertools
import typing
from typing import Final

from controller.models import Phase

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
    "confirm": ACTIVE,
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
    "library": ANY,
    "choose": frozenset({"check_in", "integration", "intentions", "pre_infusion"}),
    "note": ACTIVE,
    "notes": ANY,
    "record_dose": frozenset({"pre_infusion", "infusion"}),
    "side_effects": frozenset({"debrief", "preparation", "discharge"}),
    "adverse_event": ACTIVE,
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
