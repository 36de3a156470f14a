"""The room's own session record and HL7 builder, seen from the archive.

The one place the archive reaches into the room's record code (``controller/record/``): the
session summary (``summarize``) and the ORU^R01 builder, so a message from the archive is the
message the room would build.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from controller.models import Event
from controller.record import hl7
from controller.record import summary as report


def session_record(events: Sequence[Event]) -> dict[str, Any]:
    """The room's ``session.json`` record of a session's events (no live vitals samples:
    the archive keeps events, not the 1 Hz stream)."""
    return report.summarize(events, [])


def oru_message(events: Sequence[Event], room_id: str) -> str:
    """The session's ORU^R01 text (segments ending in ``\\r``), as the room would build it."""
    rows = report.vitals_rows(events, [])
    return hl7.session_message(session_record(events), rows, hl7.Sender(room_id=room_id))
