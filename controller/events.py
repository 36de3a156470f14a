"""What adapters tell the core: the messages that travel on the inbox queue.

Adapters (gpiozero callbacks, serial readers, libVLC's event thread, paho's network thread)
build one of these and put it on the inbox; only the core thread acts on them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from controller.models import NibpReading, VitalsSample


@dataclass(frozen=True)
class CommandReceived:
    """A command arrived on ``cmd/<verb>`` (payload still raw bytes).

    ``user`` is the broker user name from ``cmd/<verb>/by/<user>``, the path the clinic ACL
    lets each clinician write only under their own name; None on the declared ``cmd/<verb>``.
    """

    verb: str
    payload: bytes
    response_topic: str | None = None
    correlation_data: bytes | None = None
    user: str | None = None


@dataclass(frozen=True)
class PlanReceived:
    """A (retained) session plan arrived on ``plan``."""

    payload: bytes


@dataclass(frozen=True)
class LinkUp:
    """The clinic link connected (or reconnected)."""


@dataclass(frozen=True)
class LinkDown:
    """The clinic link was lost."""


@dataclass(frozen=True)
class EventDelivered:
    """The broker acknowledged the event with this ``seq`` (PUBACK)."""

    seq: int


@dataclass(frozen=True)
class EventUndeliverable:
    """The broker will never take event ``seq`` (too large for it, or refused): the outbox
    must set it aside, or it would re-send it at every reconnect and be cut off each time."""

    seq: int
    reason: str


@dataclass(frozen=True)
class VitalsArrived:
    """The oximeter produced a sample."""

    sample: VitalsSample


@dataclass(frozen=True)
class NibpCompleted:
    """The NIBP module finished a measurement."""

    reading: NibpReading


@dataclass(frozen=True)
class NibpFailed:
    """The NIBP module reported an error instead of a reading."""

    code: str


@dataclass(frozen=True)
class DeviceChanged:
    """A device was found, lost or is absent (``device`` is a RoomState.devices key)."""

    device: str
    status: str
    detail: str = ""


@dataclass(frozen=True)
class CallPressed:
    """The patient pressed the call button (already debounced)."""


@dataclass(frozen=True)
class CallHeld:
    """The call button was held for the bedside-clear time (a clinician at the bedside)."""


@dataclass(frozen=True)
class TrackStarted:
    """A track began playing on these outputs."""

    track: str
    outputs: tuple[str, ...]


@dataclass(frozen=True)
class TrackEnded:
    """A track stopped playing after ``played_s`` seconds."""

    track: str
    played_s: float


@dataclass(frozen=True)
class PlaylistEnded:
    """The last track of the playlist ended."""


@dataclass(frozen=True)
class AudioFailed:
    """An audio output failed."""

    output: str
    message: str


@dataclass(frozen=True)
class ClockSync:
    """Whether the system clock is synchronised (NTP); None when it cannot be told."""

    synced: bool | None


@dataclass(frozen=True)
class SimAction:
    """A ``sim/<action>`` message (only under ``--simulate``)."""

    action: str
    args: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ReportWritten:
    """A session's record was written off the core thread (``result`` None: it failed).

    ``result`` is the ``report_ready`` event's data: ``{"path": ..., "summary": {...}}``.
    """

    session_id: str
    result: dict[str, Any] | None


@dataclass(frozen=True)
class Shutdown:
    """Stop the core loop cleanly."""


InboxMessage = (
    CommandReceived
    | PlanReceived
    | LinkUp
    | LinkDown
    | EventDelivered
    | EventUndeliverable
    | VitalsArrived
    | NibpCompleted
    | NibpFailed
    | DeviceChanged
    | CallPressed
    | CallHeld
    | TrackStarted
    | TrackEnded
    | PlaylistEnded
    | AudioFailed
    | ClockSync
    | SimAction
    | ReportWritten
    | Shutdown
)
