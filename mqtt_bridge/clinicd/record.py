"""The room's own session record and HL7 builder, seen from the archive.

The one place the archive reaches into ``controller``'s record code: the session summary
(``summarize``) and the ORU^R01 builder. When they move to ``controller/record/``, the import
becomes ``from controller.record import hl7, summary as report`` and ``oru_message`` passes
``hl7.Sender(room_id=room_id)`` where it passes ``room_id`` now.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from controller import hl7, report
from controller.models import Event


def session_record(events: Sequence[Event]) -> dict[str, Any]:
    """The room's ``session.json`` record of a session's events (no live vitals samples:
    the archive keeps events, not the 1 Hz stream)."""
    return report.summarize(events, [])


def oru_message(events: Sequence[Event], room_id: str) -> str:
    """The session's ORU^R01 text (segments ending in ``\\r``), as the room would build it."""
    return hl7.session_message(session_record(events), report.vitals_rows(events, []), room_id)
