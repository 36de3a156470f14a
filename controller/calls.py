"""The patient's call: placed from the bedside button, escalated, acknowledged, cleared.

A call belongs to the room, not the session: a patient may call before the session starts.
An unacknowledged call escalates every ``call_escalate_s``; an acknowledged call nobody
cleared comes back after ``call_reminder_s`` (the nurse-call reminder).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from controller.errors import InvalidState
from controller.eventlog import EventLog
from controller.models import Event
from controller.ports import AudioPlayer, CallLamp, LampMode
from controller.state import SessionState
from controller.timers import Timers

LAMP: dict[str, LampMode] = {"idle": "off", "placed": "pulse", "escalated": "pulse"}
"""The call lamp for each call state (acknowledged: steady)."""


class Calls:
    """The call's state, its timers, and the lamp and cue that go with it."""

    def __init__(
        self,
        *,
        log: EventLog,
        timers: Timers,
        session: SessionState,
        lamp: CallLamp | None,
        audio: AudioPlayer | None,
    ) -> None:
        self._log = log
        self._timers = timers
        self._session = session
        self._lamp = lamp
        self._audio = audio
        self.state = "idle"

    def timer_table(self) -> dict[str, Callable[[], None]]:
        """The timers this part owns, by name."""
        return {"call_escalate": self._escalate, "call_reminder": self._remind}

    def apply(self, event: Event) -> None:
        """Fold call events into the call's state and timers."""
        protocol = self._session.protocol
        match event.type:
            case "call_placed" | "call_escalated":
                self.state = "placed" if event.type == "call_placed" else "escalated"
                self._timers.cancel("call_reminder")
                due = event.ts + timedelta(seconds=protocol.call_escalate_s)
                self._timers.set_at("call_escalate", due)
            case "call_acknowledged":
                self.state = "acknowledged"
                self._timers.cancel("call_escalate")
                due = event.ts + timedelta(seconds=protocol.call_reminder_s)
                self._timers.set_at("call_reminder", due)
            case "call_cleared":
                self.state = "idle"
                self._timers.cancel("call_escalate", "call_reminder")
            case _:
                pass

    @property
    def open(self) -> bool:
        """Whether a call is open (placed, escalated or acknowledged)."""
        return self.state != "idle"

    @property
    def waiting(self) -> bool:
        """Whether a call waits for a clinician (placed or escalated)."""
        return self.state in ("placed", "escalated")

    def place(self, *, reminder: bool = False) -> None:
        """The patient called (or an acknowledged call came back as a reminder)."""
        if self.open and not reminder:
            return  # one open call at a time: pressing again changes nothing
        self._log.emit("call_placed", {"reminder": reminder} if reminder else {})
        if self._lamp is not None:
            self._lamp.set_lamp("pulse")
        if self._audio is not None:
            self._audio.duck(True)
            self._audio.cue()

    def clear(self, by: str, where: str) -> None:
        """Close the open call (from the tablet, the bedside, or the session's end)."""
        if not self.open:
            return
        self._log.emit("call_cleared", {"by": by, "where": where})
        if self._lamp is not None:
            self._lamp.set_lamp("off")
        if self._audio is not None:
            self._audio.duck(False)

    def restore(self) -> None:
        """Show the call's lamp again after a restart."""
        if self._lamp is not None:
            self._lamp.set_lamp(LAMP.get(self.state, "steady"))

    def _escalate(self) -> None:
        self._log.emit("call_escalated", {})

    def _remind(self) -> None:
        # An acknowledged call nobody cleared comes back as a new call (nurse-call reminder).
        self.place(reminder=True)

    # --- commands -------------------------------------------------------------------

    def acknowledge(self, cmd: Any) -> dict[str, Any]:
        """``call_ack``: a clinician answers the call."""
        if not self.waiting:
            raise InvalidState(f"Can't call_ack: no call waiting (call is {self.state})")
        self._log.emit("call_acknowledged", {"by": cmd.by})
        if self._lamp is not None:
            self._lamp.set_lamp("steady")
        return {"call": self.state}

    def clear_command(self, cmd: Any) -> dict[str, Any]:
        """``call_clear``: the call is dealt with."""
        if not self.open:
            raise InvalidState("Can't call_clear: there is no open call")
        self.clear(cmd.by, "tablet")
        return {"call": self.state}
