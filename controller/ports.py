"""The ports: how the core reaches the world. Adapters implement these protocols.

Every method here must return quickly and never block on I/O: the core calls them from its
one thread. Devices report back by putting ``controller.events`` messages on the inbox, through
the ``Emit`` callable they are given.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Literal, Protocol

from controller.events import InboxMessage
from controller.models import Alarm, Event, NibpReading, Reply, RoomState, VitalsSample

Emit = Callable[[InboxMessage], None]
"""Put a message on the core's inbox (thread-safe, never blocks)."""

LampMode = Literal["off", "pulse", "steady"]
Annunciation = Literal["off", "call", "high", "medium", "low", "failure"]
Output = Literal["headphones", "speakers", "both"]


class Clock(Protocol):
    """Time for the core: ``monotonic()`` for durations, ``now()`` for timestamps (UTC)."""

    def monotonic(self) -> float:
        """Seconds on a clock that never steps (session time, scaled under ``--time-scale``)."""
        ...

    def now(self) -> datetime:
        """The current time, aware, in UTC."""
        ...

    def real_seconds(self, session_seconds: float) -> float:
        """How many real seconds ``session_seconds`` of session time take."""
        ...


class Lighting(Protocol):
    """The room's lights."""

    def set_scene(
        self, scene: str, level: float, colour: tuple[int, int, int] | None, fade_s: float
    ) -> None:
        """Fade to ``level`` (0..1) and ``colour`` over ``fade_s`` seconds (0: at once)."""
        ...


class CallLamp(Protocol):
    """The bedside 'call placed' lamp next to the call button."""

    def set_lamp(self, mode: LampMode) -> None:
        """Turn the lamp off, pulse it (call placed) or hold it steady (acknowledged)."""
        ...


class Annunciator(Protocol):
    """Local annunciation in the room (buzzer/LED) for when nobody may see the tablet."""

    def annunciate(self, pattern: Annunciation) -> None:
        """Sound ``pattern`` until told otherwise (``off`` stops it)."""
        ...


class Nibp(Protocol):
    """A blood-pressure module the room can command."""

    def start_measurement(self) -> None:
        """Start an adult measurement; the result arrives as NibpCompleted or NibpFailed."""
        ...

    def abort(self) -> None:
        """Abort a measurement in progress (deflate)."""
        ...


class AudioPlayer(Protocol):
    """The room's music on headphones and speakers."""

    def play(self, tracks: Sequence[str], start_index: int = 0, offset_s: float = 0.0) -> None:
        """Play ``tracks`` in order on both outputs from track ``start_index`` at ``offset_s``."""
        ...

    def preview(self, track: str, offset_s: float | None, duration_s: float) -> None:
        """Play an excerpt on the speakers only, then stop by itself."""
        ...

    def pause(self) -> None:
        """Pause playback."""
        ...

    def resume(self) -> None:
        """Resume paused playback."""
        ...

    def stop(self, fade: bool = True) -> None:
        """Stop playback (fading out unless ``fade`` is false)."""
        ...

    def skip(self) -> None:
        """Go to the next track."""
        ...

    def set_volume(self, output: Output, level: float) -> None:
        """Set an output's perceived level (0..1)."""
        ...

    def duck(self, on: bool) -> None:
        """Lower the music while a call is open (``on``), or restore it."""
        ...

    def cue(self) -> None:
        """Play the short reassurance cue in the headphones."""
        ...


class ClinicLink(Protocol):
    """The room's connection to the clinic (MQTT)."""

    def publish_event(self, event: Event) -> None:
        """Send one journal event; delivery is reported as EventDelivered(seq)."""
        ...

    def publish_state(self, state: RoomState) -> None:
        """Replace the retained room state."""
        ...

    def publish_vitals(self, sample: VitalsSample) -> None:
        """Send one live vitals sample (best effort)."""
        ...

    def publish_nibp(self, reading: NibpReading) -> None:
        """Replace the retained latest NIBP reading."""
        ...

    def publish_alarms(self, alarms: Sequence[Alarm]) -> None:
        """Replace the retained list of current alarms."""
        ...

    def publish_reply(
        self, reply: Reply, response_topic: str | None, correlation_data: bytes | None
    ) -> None:
        """Send a command's reply (and to the MQTT 5 response topic, if one was given)."""
        ...


class MusicLibrary(Protocol):
    """Resolves a plan's playlist to playable files (the audio adapter implements it)."""

    def resolve(self, playlist: Sequence[str] | str) -> list[str]:
        """The tracks, in order; raises ValueError naming a missing or unreadable file."""
        ...

    def catalog(self) -> dict[str, list[dict[str, Any]]]:
        """What the last scan found: ``tracks`` (``path``, ``title``, ``duration_s`` or None)
        and named ``playlists`` (``name``, ``tracks``: paths, ``duration_s`` or None)."""
        ...

    def rescan(self) -> bool:
        """Scan ``music_dir`` again, off the caller's thread; False if a scan is running."""
        ...


class SessionRecords(Protocol):
    """Writes an ended session's record (report files) off the core thread.

    ``write`` returns at once; when the record is written the writer puts a
    ``ReportWritten`` message on the inbox, with ``result`` None when it could not be written.
    """

    def write(self, session_id: str) -> None:
        """Start writing the record of the session that just ended."""
        ...
