"""The room's outputs: the lights, the music, and the local annunciation (buzzer).

Each keeps the state its events leave (scene and level; playing, track, volumes) so that a
restarted room shows and plays what it did before.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from controller.alarms import AlarmEngine
from controller.calls import Calls
from controller.config import Config
from controller.errors import DeviceUnavailable, InvalidPayload, InvalidState
from controller.eventlog import EventLog
from controller.health import Health
from controller.models import Event
from controller.models import Lights as LightsCommand
from controller.models import Music as MusicCommand
from controller.plans import Plans
from controller.ports import Annunciation as Pattern
from controller.ports import Annunciator, AudioPlayer, Clock, Lighting
from controller.state import SessionState

PREVIEW_PHASES = ("check_in", "integration", "intentions", "pre_infusion")
"""Where excerpts may be previewed on the speakers (the intentions step and around it)."""


class Lights:
    """The room's lighting scene and level."""

    def __init__(
        self, *, config: Config, log: EventLog, session: SessionState, health: Health,
        lighting: Lighting | None,
    ) -> None:  # fmt: skip
        self._scenes = config.hardware.lighting.scenes
        self._log = log
        self._session = session
        self._health = health
        self._lighting = lighting
        self.scene = "idle"
        self.level = 0.0

    def apply(self, event: Event) -> None:
        """Fold ``lighting_changed`` into the scene and level."""
        if event.type == "lighting_changed":
            self.scene = event.data["scene"]
            self.level = event.data["level"]

    def show(self, scene: str, by: str, *, fade_s: float | None = None) -> None:
        """Show a configured scene (a phase's, ``ended``, ``emergency``)."""
        s = self._scenes[scene]
        self.set(scene, s.level, s.colour, s.fade_s if fade_s is None else fade_s, by)

    def show_phase(self, phase: str, by: str) -> None:
        """Show the phase's scene, if it has one and no emergency holds the lights."""
        if phase in self._scenes and not self._session.emergency_declared:
            self.show(phase, by)

    def set(
        self, scene: str, level: float, colour: tuple[int, int, int], fade_s: float, by: str
    ) -> None:
        """Fade the lights to ``level`` and record it."""
        if self._lighting is not None:
            self._lighting.set_scene(scene, level, colour, fade_s)
        self._log.emit(
            "lighting_changed", {"scene": scene, "level": level, "fade_s": fade_s, "by": by}
        )

    def restore(self) -> None:
        """Show the recorded scene again at once (after a restart)."""
        if self._lighting is None:
            return
        scenes = self._scenes
        base = scenes.get(self.scene) or scenes.get(self._session.phase) or scenes["idle"]
        self._lighting.set_scene(self.scene, self.level, base.colour, 0.0)

    def command(self, cmd: LightsCommand) -> dict[str, Any]:
        """``lights``: a clinician's scene or level."""
        if self._lighting is None or self._health.devices.get("lighting") == "lost":
            raise DeviceUnavailable("the room's lights are not available")
        scenes = self._scenes
        if cmd.scene is None and cmd.level is None:
            raise InvalidPayload("field 'scene' or 'level': one of them is required")
        if cmd.scene is not None and cmd.scene not in scenes:
            raise InvalidPayload(
                f"field 'scene': unknown scene '{cmd.scene}'; scenes are {', '.join(scenes)}"
            )
        base = scenes[cmd.scene] if cmd.scene else scenes.get(self._session.phase, scenes["idle"])
        level = cmd.level if cmd.level is not None else base.level
        fade = cmd.fade_s if cmd.fade_s is not None else base.fade_s
        self.set(cmd.scene or "manual", level, base.colour, fade, cmd.by)
        return {"scene": cmd.scene or "manual", "level": level}


class Music:
    """The session's playlist on headphones and speakers, and excerpts previewed."""

    def __init__(
        self, *, config: Config, clock: Clock, log: EventLog, session: SessionState,
        health: Health, plans: Plans, audio: AudioPlayer | None,
    ) -> None:  # fmt: skip
        self._audio_config = config.audio
        self._clock = clock
        self._log = log
        self._session = session
        self._health = health
        self._plans = plans
        self._audio = audio
        self._reset()

    def _reset(self) -> None:
        self.failed = False  # an output failed or was lost: the playlist may never end
        self.started = False
        self.playing = False
        self.playlist_ended = False
        self.track: str | None = None
        self.track_index = -1
        self.track_started_at: datetime | None = None
        self.headphones_volume = self._audio_config.headphones_volume
        self.speakers_volume = self._audio_config.speakers_volume

    def apply(self, event: Event) -> None:
        """Fold music events into what plays."""
        data = event.data
        match event.type:
            case "session_started" | "session_ended":
                self._reset()
            case "music_started":
                self.started = self.playing = True
                self.playlist_ended = False
                self.track_index = -1
            case "track_started":
                self.track = data["track"]
                # By name from the current position: a track restarted after a resume is the
                # same track, not the next one.
                try:
                    index = self._session.tracks.index(data["track"], max(self.track_index, 0))
                except ValueError:
                    index = self.track_index + 1
                if index != self.track_index or self.track_started_at is None:
                    self.track_started_at = event.ts  # a resumed track keeps its first start
                self.track_index = index
            case "track_ended":
                self.track = None
            case "music_stopped":
                self.playing = False
                self.track = None
                if data.get("reason") == "playlist_ended":
                    self.playlist_ended = True
            case "alarm_raised" if data["alarm"]["code"].startswith("audio_"):
                self.failed = True
            case "device_lost" if data["device"] == "audio":
                self.failed = True
            case "volume_changed":
                if data["output"] in ("headphones", "both"):
                    self.headphones_volume = data["level"]
                if data["output"] in ("speakers", "both"):
                    self.speakers_volume = data["level"]
            case _:
                pass

    @property
    def audible(self) -> bool:
        """Whether the playlist is playing and its audio has not failed (it may still end)."""
        return self.playing and not self.failed

    def position(self) -> tuple[int, float]:
        """The current track index and seconds into it (for resuming after a restart)."""
        if self.track_started_at is None:
            return 0, 0.0
        offset = (self._clock.now() - self.track_started_at).total_seconds()
        return max(self.track_index, 0), offset

    def start(self, by: str) -> None:
        """Play the session's tracks from the start."""
        if self._audio is None:
            return
        self._audio.play(self._session.tracks)
        self._log.emit("music_started", {"playlist": list(self._session.tracks), "by": by})

    def stop(
        self, reason: str, *, fade: bool = True, by: str | None = None, note: str | None = None
    ) -> None:
        """Stop what plays, and record why (only when something played)."""
        if self._audio is not None:
            self._audio.stop(fade=fade)
        if self.playing:
            data: dict[str, Any] = {"reason": reason}
            data |= {"by": by} if by else {}
            data |= {"note": note} if note else {}
            self._log.emit("music_stopped", data)

    def restore(self) -> None:
        """Resume the playlist where it was (after a restart)."""
        if self.playing and self._audio is not None:
            index, offset = self.position()
            if index < len(self._session.tracks):
                self._audio.play(self._session.tracks, index, offset)

    def on_track_started(self, track: str, outputs: tuple[str, ...]) -> None:
        """The player began a track."""
        self._log.emit("track_started", {"track": track, "outputs": list(outputs)})

    def on_track_ended(self, track: str, played_s: float) -> None:
        """The player finished a track."""
        self._log.emit("track_ended", {"track": track, "played_s": round(played_s, 3)})

    def on_playlist_ended(self) -> None:
        """The player reached the playlist's end."""
        if self.playing:
            self._log.emit("music_stopped", {"reason": "playlist_ended"})

    def command(self, cmd: MusicCommand) -> dict[str, Any]:
        """``music``: preview, play, pause, resume, skip, stop, volume."""
        audio = self._audio
        if audio is None or self._health.devices.get("audio") == "lost":
            raise DeviceUnavailable("no audio output is available")
        self._actions(audio)[cmd.action](cmd)
        return {"action": cmd.action}

    def _actions(self, audio: AudioPlayer) -> dict[str, Callable[[MusicCommand], None]]:
        return {
            "preview": lambda cmd: self._preview(audio, cmd),
            "play": self._play,
            "pause": lambda cmd: self._transport(audio.pause, "music_paused", cmd),
            "resume": lambda cmd: self._transport(audio.resume, "music_resumed", cmd),
            "skip": lambda cmd: self._transport(audio.skip, "music_skipped", cmd),
            "stop": lambda cmd: self.stop("stopped", by=cmd.by),
            "volume": lambda cmd: self._volume(audio, cmd),
        }

    def _preview(self, audio: AudioPlayer, cmd: MusicCommand) -> None:
        if self._session.phase not in PREVIEW_PHASES:
            raise InvalidState(f"Can't preview music while in {self._session.phase}")
        if not cmd.track:
            raise InvalidPayload("field 'track': required for a preview")
        track = self._plans.resolve_one(cmd.track)
        duration = cmd.duration_s or self._audio_config.preview_s
        audio.preview(track, cmd.offset_s, duration)
        self._log.emit(
            "preview_started",
            {"track": cmd.track, "offset_s": cmd.offset_s, "duration_s": duration},
        )

    def _play(self, cmd: MusicCommand) -> None:
        if self.playing:
            raise InvalidState("Can't play: the music is already playing")
        if not self._session.tracks:
            raise InvalidState("Can't play: this session has no playlist")
        self.start(cmd.by)

    def _transport(self, action: Callable[[], None], event: str, cmd: MusicCommand) -> None:
        if not self.playing:
            raise InvalidState(f"Can't {cmd.action}: no music is playing")
        action()
        self._log.emit(event, {"by": cmd.by})

    def _volume(self, audio: AudioPlayer, cmd: MusicCommand) -> None:
        if cmd.level is None:
            raise InvalidPayload("field 'level': required for volume")
        audio.set_volume(cmd.output, cmd.level)
        self._log.emit("volume_changed", {"output": cmd.output, "level": cmd.level, "by": cmd.by})


class Annunciation:
    """The room's own buzzer: it speaks up for alarms and calls while the clinic link is down."""

    def __init__(
        self, *, log: EventLog, alarms: AlarmEngine, calls: Calls, annunciator: Annunciator | None
    ) -> None:
        self._log = log
        self._alarms = alarms
        self._calls = calls
        self._annunciator = annunciator
        self.pattern: Pattern = "off"

    def update(self) -> None:
        """Sound what needs sounding now (nothing while the tablet is reachable)."""
        if self._annunciator is None:
            return
        pattern: Pattern = "off"
        if not self._log.online:
            # Nobody may be looking at the tablet: the room itself must speak up.
            sounding = self._alarms.sounding()
            if sounding == "high":
                pattern = "high"
            elif self._calls.waiting:
                pattern = "call"
            elif sounding is not None:
                pattern = sounding
        if pattern != self.pattern:
            self.pattern = pattern
            self._annunciator.annunciate(pattern)
