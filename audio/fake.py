"""A fake music player for the core's tests: records calls, ``finish()`` and ``fail()``."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Any

from controller.events import AudioFailed, PlaylistEnded, TrackEnded, TrackStarted
from controller.ports import Clock, Emit, Output


class FakeLibrary:
    """A music library where every track exists, except those named in ``missing``.

    ``tracks`` (path → duration) and ``playlists`` (name → paths) make its catalog; a
    playlist name resolves to its paths, any other string to itself as one track.
    """

    def __init__(
        self,
        missing: Sequence[str] = (),
        *,
        tracks: Mapping[str, float | None] | None = None,
        playlists: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        self.missing = set(missing)
        self.tracks = dict(tracks or {})
        self.playlists = {name: list(paths) for name, paths in (playlists or {}).items()}
        self.rescans = 0

    def resolve(self, playlist: Sequence[str] | str) -> list[str]:
        """The playlist's tracks; ValueError naming the first missing one."""
        if isinstance(playlist, str):
            tracks = self.playlists.get(playlist, [playlist])
        else:
            tracks = list(playlist)
        for track in tracks:
            if track in self.missing:
                raise ValueError(f"missing music file '{track}'")
        return tracks

    def catalog(self) -> dict[str, list[dict[str, Any]]]:
        """The tracks and playlists given, titled after their file names."""
        tracks = [
            {"path": p, "title": p.rsplit("/", 1)[-1].rsplit(".", 1)[0], "duration_s": d}
            for p, d in self.tracks.items()
        ]
        playlists = []
        for name, paths in self.playlists.items():
            durations = [self.tracks.get(p) for p in paths]
            total = None if None in durations else sum(d or 0.0 for d in durations)
            playlists.append({"name": name, "tracks": list(paths), "duration_s": total})
        return {"tracks": tracks, "playlists": playlists}

    def rescan(self) -> bool:
        """Count the rescan (the fake's catalog is what it was given)."""
        self.rescans += 1
        return True


class FakeAudioPlayer:
    """Plays nothing; reports tracks like the real player when told to."""

    def __init__(self, emit: Emit) -> None:
        self._emit = emit
        self.calls: list[tuple[str, tuple[object, ...]]] = []
        self.tracks: list[str] = []
        self.index = -1
        self.playing = False
        self.ducked = False
        self.volumes: dict[str, float] = {}

    def play(self, tracks: Sequence[str], start_index: int = 0, offset_s: float = 0.0) -> None:
        """Start the playlist at ``start_index``: emits TrackStarted for it."""
        self.calls.append(("play", (list(tracks), start_index, offset_s)))
        self.tracks = list(tracks)
        self.index = start_index
        self.playing = True
        self._emit(TrackStarted(self.tracks[self.index], ("headphones", "speakers")))

    def preview(self, track: str, offset_s: float | None, duration_s: float) -> None:
        """Record the preview."""
        self.calls.append(("preview", (track, offset_s, duration_s)))

    def pause(self) -> None:
        """Record the pause."""
        self.calls.append(("pause", ()))

    def resume(self) -> None:
        """Record the resume."""
        self.calls.append(("resume", ()))

    def stop(self, fade: bool = True) -> None:
        """Stop playing."""
        self.calls.append(("stop", (fade,)))
        self.playing = False

    def skip(self) -> None:
        """Go to the next track (as ``finish_track`` does)."""
        self.calls.append(("skip", ()))
        self.finish_track()

    def set_volume(self, output: Output, level: float) -> None:
        """Record the volume."""
        self.calls.append(("set_volume", (output, level)))
        self.volumes[output] = level

    def duck(self, on: bool) -> None:
        """Record the duck."""
        self.calls.append(("duck", (on,)))
        self.ducked = on

    def cue(self) -> None:
        """Record the cue."""
        self.calls.append(("cue", ()))

    def finish_track(self, played_s: float = 300.0) -> None:
        """The current track ends; the next starts, or the playlist ends."""
        if not self.playing:
            return
        self._emit(TrackEnded(self.tracks[self.index], played_s))
        self.index += 1
        if self.index < len(self.tracks):
            self._emit(TrackStarted(self.tracks[self.index], ("headphones", "speakers")))
        else:
            self.playing = False
            self._emit(PlaylistEnded())

    def finish(self) -> None:
        """Every remaining track ends: the playlist is over."""
        while self.playing:
            self.finish_track()

    def fail(self, output: str = "speakers", message: str = "device gone") -> None:
        """An output fails."""
        self._emit(AudioFailed(output, message))


class SimulatedAudioPlayer(FakeAudioPlayer):
    """A stand-in player for ``--simulate``: each track 'plays' for ``track_s`` session seconds."""

    def __init__(self, emit: Emit, clock: Clock, *, track_s: float = 9 * 60) -> None:
        super().__init__(emit)
        self._clock = clock
        self._track_s = track_s
        self._timer: threading.Timer | None = None
        self._lock = threading.Lock()

    def play(self, tracks: Sequence[str], start_index: int = 0, offset_s: float = 0.0) -> None:
        """Start the playlist; tracks end by themselves."""
        with self._lock:
            super().play(tracks, start_index, offset_s)
            self._schedule(max(0.0, self._track_s - offset_s))

    def stop(self, fade: bool = True) -> None:
        """Stop playing."""
        with self._lock:
            super().stop(fade)
            self._cancel()

    def skip(self) -> None:
        """End the current track now."""
        self.finish_track()

    def finish_track(self, played_s: float | None = None) -> None:
        """End the current track (as if it played out)."""
        with self._lock:
            self._cancel()
            super().finish_track(self._track_s if played_s is None else played_s)
            if self.playing:
                self._schedule(self._track_s)

    def finish(self) -> None:
        """End the whole playlist now (the ``finish_playlist`` sim action)."""
        while self.playing:
            self.finish_track()

    def close(self) -> None:
        """Stop the track timer."""
        self._cancel()

    def _schedule(self, session_s: float) -> None:
        self._timer = threading.Timer(self._clock.real_seconds(session_s), self.finish_track)
        self._timer.daemon = True
        self._timer.start()

    def _cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
