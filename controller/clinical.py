"""What a clinic's note needs, recorded and never controlling anything: clinicians' notes,
the dose given, side effects, adverse events, and the debrief's length.

Free text is clinical content: it is kept in the journal's ``notes`` table, returned by
``notes`` to the clinician who asks (on their own response topic) and put in the session's
record, but never on an event or a retained topic, which observers may read. The events say
that a note exists (``note_id``, kind, who, length).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from controller.config import Config
from controller.errors import InvalidPayload
from controller.eventlog import EventLog
from controller.journal import Journal
from controller.models import Event
from controller.ports import Clock
from controller.state import SessionState
from controller.timers import Timers

DOSE_TOLERANCE = 0.05
"""``total_mg`` may differ from weight × dose by this fraction before a warning."""


class Clinical:
    """Keeps the clinicians' notes and documentation of the session, and times the debrief."""

    def __init__(
        self,
        *,
        config: Config,
        clock: Clock,
        journal: Journal,
        log: EventLog,
        timers: Timers,
        session: SessionState,
    ) -> None:
        self._config = config
        self._clock = clock
        self._journal = journal
        self._log = log
        self._timers = timers
        self._session = session
        self._debrief_bound: str | None = None  # the last debrief_due bound announced

    def timer_table(self) -> dict[str, Callable[[], None]]:
        """The timers this part owns, by name."""
        return {"debrief": self._debrief_due}

    def apply(self, event: Event) -> None:
        """Arm and cancel the debrief timer from one journal event."""
        data = event.data
        match event.type:
            case "phase_changed" if data["to"] == "debrief":
                least = self._session.protocol.debrief_minutes[0]
                self._debrief_bound = None
                self._timers.set_at("debrief", event.ts + timedelta(minutes=least))
            case "phase_changed" | "session_ended":
                self._timers.cancel("debrief")
            case "debrief_due":
                self._debrief_bound = data["bound"]
                started = self._session.phase_started_at
                if data["bound"] == "least" and started is not None:
                    most = self._session.protocol.debrief_minutes[1]
                    self._timers.set_at("debrief", started + timedelta(minutes=most))
                else:
                    self._timers.cancel("debrief")
            case _:
                pass

    def _debrief_due(self) -> None:
        least, most = self._session.protocol.debrief_minutes
        if self._debrief_bound is None:
            self._log.emit("debrief_due", {"bound": "least", "minutes": float(least)})
        else:
            self._log.emit("debrief_due", {"bound": "most", "minutes": float(most)})

    # --- notes ----------------------------------------------------------------------

    def note(self, cmd: Any) -> dict[str, Any]:
        """``note``: keep the text in the journal; the event says only that it exists."""
        note_id = self._keep(cmd.kind, cmd.by, cmd.text)
        chars = len(cmd.text)
        self._log.emit(
            "note_recorded", {"note_id": note_id, "kind": cmd.kind, "by": cmd.by, "chars": chars}
        )
        return {"note_id": note_id, "chars": chars}

    def notes(self, cmd: Any) -> dict[str, Any]:
        """``notes``: one session's notes with their text (the current or last session)."""
        session_id = cmd.session_id or self._session.session_id
        if session_id is None:
            last = self._journal.last_event("session_started")
            session_id = last.session_id if last is not None else None
        if session_id is None:
            return {"session_id": None, "notes": []}
        return {"session_id": session_id, "notes": self._journal.notes(session_id)}

    def _keep(self, kind: str, by: str, text: str) -> str:
        return self._journal.add_note(self._clock.now(), self._session.session_id, kind, by, text)

    # --- documentation --------------------------------------------------------------

    def record_dose(self, cmd: Any) -> dict[str, Any]:
        """``record_dose``: document the dose; warn when it does not add up or differs from
        the protocol's (the room never doses)."""
        expected = cmd.weight_kg * cmd.dose_mg_per_kg
        warnings: list[str] = []
        if abs(cmd.total_mg - expected) > DOSE_TOLERANCE * expected:
            warnings.append(
                f"total_mg {cmd.total_mg:g} mg is not weight × dose "
                f"({cmd.weight_kg:g} kg × {cmd.dose_mg_per_kg:g} mg/kg = {expected:.1f} mg, ±5 %)"
            )
        protocol = self._session.protocol.dose_mg_per_kg
        if abs(cmd.dose_mg_per_kg - protocol) > 1e-9:
            warnings.append(
                f"dose {cmd.dose_mg_per_kg:g} mg/kg differs from the protocol's {protocol:g} "
                "mg/kg ([protocol] dose_mg_per_kg)"
            )
        data = {
            "weight_kg": float(cmd.weight_kg),
            "dose_mg_per_kg": float(cmd.dose_mg_per_kg),
            "total_mg": float(cmd.total_mg),
            "by": cmd.by,
            "warnings": warnings,
        }
        self._log.emit("dose_recorded", data)
        return {"expected_total_mg": round(expected, 3), "warnings": warnings}

    def side_effects(self, cmd: Any) -> dict[str, Any]:
        """``side_effects``: the side effects seen, each from the clinic's list."""
        allowed = {item.casefold(): item for item in self._session.protocol.side_effects}
        items: list[str] = []
        for index, item in enumerate(cmd.items):
            known = allowed.get(item.strip().casefold())
            if known is None:
                raise InvalidPayload(
                    f"field 'items.{index}': '{item}' is not in the clinic's list "
                    f"([protocol] side_effects: {', '.join(allowed.values())})"
                )
            if known in items:
                raise InvalidPayload(f"field 'items.{index}': '{item}' is listed twice")
            items.append(known)
        note_id = self._keep("debrief", cmd.by, cmd.note) if cmd.note else None
        self._log.emit("side_effects_recorded", {"items": items, "by": cmd.by, "note_id": note_id})
        return {"items": items, "note_id": note_id}

    def adverse_event(self, cmd: Any) -> dict[str, Any]:
        """``adverse_event``: what happened, how severe, what was done."""
        note_id = self._keep("observation", cmd.by, cmd.text) if cmd.text else None
        data = {"kind": cmd.kind, "severity": cmd.severity, "action": cmd.action, "by": cmd.by}
        self._log.emit("adverse_event_recorded", data | {"note_id": note_id})
        return {"note_id": note_id}
