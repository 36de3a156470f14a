"""The room's music through libVLC: headphones and speakers, fades, preview, duck and cue.

Threads. The core calls the public methods; they only put a command on a queue and return.
One worker thread (``roomd-audio``) owns every libVLC call after construction: it runs the
commands, moves fades and glides every :data:`TICK_S`, and reports to the core through
``emit``. libVLC's event and log callbacks run on libVLC's own threads and *only* post to
the same queue, because calling libVLC from inside its callbacks hangs.

Outputs. Each output (headphones, speakers, and the cue) has its own libVLC instance and
media player on its own ALSA device, so each has its own volume and its own log. libVLC does
not report a dead audio device as a player error (the player keeps "playing" into nothing),
so the log is how a failed output is noticed: an error from the audio-output module of that
instance → :class:`AudioFailed` for that output; the other output keeps playing. A failed
output is tried again at the next track.

Levels. Volumes, fades and the duck go through :mod:`audio.fades` (perceived level, linear in
dB; libVLC's cubic volume law undone).
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from audio.cue import default_cue_path
from audio.fades import FADE_FLOOR, Fader, Playing, Ramp, Timeline, vlc_volume
from audio.library import open_output, probe_duration, vlc_options, watch_errors
from controller.config import AudioSection
from controller.events import AudioFailed, DeviceChanged, PlaylistEnded, TrackEnded, TrackStarted
from controller.ports import Emit, Output

log = logging.getLogger(__name__)

OUTPUTS = ("headphones", "speakers")
TICK_S = 0.05
"""Fades and glides move 20 times a second: steps of a fraction of a dB."""
PREVIEW_FADE_MAX_S = 1.0
SKIP_FADE_S = 1.0
PAUSE_FADE_S = 0.5
OFFSET_FADE_MIN_S = 0.5
LEVEL_GLIDE_S = 0.5
"""A volume change from 0 to 1 takes this long: no sudden jump in a patient's ears."""
DUCK_RAMP_S = 0.8
CUE_MIN_LEVEL = 0.3
"""The cue is never quieter than this, even if the headphones were turned right down."""
END_GRACE_S = 2.0
"""After one output reports the end of a track, wait at most this long for the other."""
RECOVER_AFTER_S = 3.0
"""A failed output that plays this long without a new error counts as working again."""
AOUT_MODULES = frozenset({"alsa", "pulse", "afile", "amem", "adummy", "oss", "jack", "sndio"})


@dataclass
class _Out:
    """One libVLC output: instance, player, level and health (worker-thread state)."""

    name: str
    device: str
    instance: Any
    player: Any
    level: Ramp
    failed: bool = False
    fail_posted: bool = False  # set by the log callback, reset by the worker
    retry_since: float | None = None
    ended: bool = False
    volume: int = -1
    keep: list[Any] = field(default_factory=list)  # ctypes callbacks must outlive libVLC's use


class VlcAudioPlayer:
    """The :class:`controller.ports.AudioPlayer` port on libVLC (two outputs, fades, duck, cue).

    ``instance_args`` are extra libVLC options after ``section.vlc_args``. ``null_output``
    (``--simulate``) plays to ALSA's ``null`` device unless ``vlc_args`` chooses an output.
    Emits TrackStarted / TrackEnded / PlaylistEnded / AudioFailed / DeviceChanged("audio").
    """

    def __init__(
        self,
        section: AudioSection,
        emit: Emit,
        *,
        instance_args: Sequence[str] | None = None,
        null_output: bool = False,
    ) -> None:
        self._section = section
        self._emit_fn = emit
        self._q: queue.SimpleQueue[tuple[Any, ...]] = queue.SimpleQueue()
        self._outs: dict[str, _Out] = {}
        self._tracks: list[str] = []
        self._index = 0
        self._item: Playing | None = None
        self._fader = Fader()
        self._gen = 0
        self._lost = False
        self._closed = False
        self._cue_media: Any = None
        args, devices = vlc_options(section, instance_args, null_output)
        levels = {"headphones": section.headphones_volume, "speakers": section.speakers_volume}
        try:
            import vlc

            self._vlc = vlc
            for name in (*OUTPUTS, "cue"):
                device = devices["headphones" if name == "cue" else name]
                self._outs[name] = self._make_out(name, device, args, levels.get(name, 1.0))
        except Exception as exc:  # no libVLC, or it refused the options: the room goes on
            log.error("audio unavailable: %s", exc)
            self._release_all()
            self._outs = {}
            self._emit(DeviceChanged(device="audio", status="absent", detail=str(exc)))
            return
        self._thread = threading.Thread(target=self._run, name="roomd-audio", daemon=True)
        self._thread.start()
        self._emit(DeviceChanged(device="audio", status="ok"))

    def play(self, tracks: Sequence[str], start_index: int = 0, offset_s: float = 0.0) -> None:
        """Play ``tracks`` on both outputs from ``start_index`` at ``offset_s``, fading in."""
        self._post("play", list(tracks), start_index, offset_s)

    def preview(self, track: str, offset_s: float | None, duration_s: float) -> None:
        """An excerpt on the speakers only (default a third of the way in), then stop."""
        self._post("preview", track, offset_s, duration_s)

    def pause(self) -> None:
        """Pause after a short fade."""
        self._post("pause")

    def resume(self) -> None:
        """Resume with a short fade."""
        self._post("resume")

    def stop(self, fade: bool = True) -> None:
        """Stop, fading out over ``fade_out_s`` unless ``fade`` is false."""
        self._post("stop", fade)

    def skip(self) -> None:
        """Short fade, then the next track (or the playlist's end)."""
        self._post("skip")

    def set_volume(self, output: Output, level: float) -> None:
        """Set an output's perceived level 0..1 (glides there in at most 0.5 s)."""
        self._post("volume", output, min(max(float(level), 0.0), 1.0))

    def duck(self, on: bool) -> None:
        """Lower the music by ``duck_db`` (``on``) or bring it back."""
        self._post("duck", bool(on))

    def cue(self) -> None:
        """The short reassurance cue in the headphones (over the music)."""
        self._post("cue")

    def close(self, timeout_s: float = 5.0) -> None:
        """Stop everything and release libVLC (waits for the worker at most ``timeout_s``)."""
        if self._closed:
            return
        self._closed = True
        if not self._outs:
            return
        self._q.put(("close",))
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            log.error("audio worker did not stop within %.1f s", timeout_s)

    def _make_out(self, name: str, device: str, args: list[str], level: float) -> _Out:
        instance, player = open_output(args, device)
        out = _Out(name, device, instance, player, Ramp.hold(level))

        def on_error(module: str, message: str) -> None:
            # libVLC's thread: post once and return.
            if out.fail_posted:
                return
            if module in AOUT_MODULES or "audio output" in message.lower():
                out.fail_posted = True
                self._q.put(("out_failed", out.name, f"{module}: {message}"))
            else:
                log.debug("libVLC %s (%s): %s", out.name, module, message)

        out.keep.append(watch_errors(out.instance, on_error))
        if name != "cue":
            em = player.event_manager()
            for etype, error in (
                (self._vlc.EventType.MediaPlayerEndReached, False),
                (self._vlc.EventType.MediaPlayerEncounteredError, True),
            ):
                em.event_attach(etype, self._on_vlc_event, error, out)
        return out

    def _on_vlc_event(self, _event: Any, error: bool, out: _Out) -> None:
        # libVLC's event thread: post and return; the worker acts.
        self._q.put(("end", out.name, self._gen, error))

    def _post(self, *cmd: Any) -> None:
        if self._outs and not self._closed:
            self._q.put(cmd)

    def _emit(self, msg: Any) -> None:
        try:
            self._emit_fn(msg)
        except Exception:
            log.exception("emit failed for %r", msg)

    def _run(self) -> None:
        running = True
        while running:
            busy = self._item is not None or not self._fader.duck.done(time.monotonic())
            try:
                cmd = self._q.get(timeout=TICK_S if busy else 0.5)
            except queue.Empty:
                cmd = None
            while cmd is not None:
                if cmd[0] == "close":
                    running = False
                    break
                try:
                    getattr(self, f"_do_{cmd[0]}")(*cmd[1:])
                except Exception:
                    log.exception("audio command %s failed", cmd[0])
                try:
                    cmd = self._q.get_nowait()
                except queue.Empty:
                    cmd = None
            if running:
                try:
                    self._tick(time.monotonic())
                except Exception:
                    log.exception("audio tick failed")
        self._halt(time.monotonic())
        self._release_all()

    def _release_all(self) -> None:
        for out in self._outs.values():
            with contextlib.suppress(Exception):
                out.player.stop()
                out.player.release()
                out.instance.log_unset()  # before release: no callback into a dying Python
                out.instance.release()
        with contextlib.suppress(Exception):
            self._cue_media and self._cue_media.release()
        self._cue_media = None

    def _do_play(self, tracks: list[str], start_index: int, offset_s: float) -> None:
        now = time.monotonic()
        self._halt(now)
        self._tracks, self._index = tracks, max(0, start_index)
        if self._index >= len(tracks):
            self._emit(PlaylistEnded())
            return
        fade_s = self._section.fade_in_s
        if offset_s > 0:
            # libVLC may output ~0.1 s of the track's start before :start-time lands: a
            # fade from the floor (−49 dB) keeps that blip inaudible.
            fade_s = max(fade_s, OFFSET_FADE_MIN_S)
        self._fader.start(now, fade_s)
        self._start(now, self._tracks[self._index], max(0.0, offset_s), list(OUTPUTS))

    def _do_preview(self, track: str, offset_s: float | None, duration_s: float) -> None:
        now = time.monotonic()
        self._halt(now)
        self._tracks = []
        length = probe_duration(self._path(track), self._outs["speakers"].instance)
        if offset_s is None:
            offset_s = length / 3.0 if length else 0.0
        if length and offset_s + duration_s > length:
            offset_s = max(0.0, length - duration_s)  # a whole excerpt rather than a stub
        self._fader.start(now, min(PREVIEW_FADE_MAX_S, duration_s / 4))
        self._start(now, track, offset_s, ["speakers"], length, duration_s)

    def _do_pause(self) -> None:
        item = self._item
        if item is None or item.clock.paused_at is not None or self._fader.then is not None:
            return  # already pausing, or fading out to stop/skip: that wins
        self._fader.fade_to(time.monotonic(), 0.0, PAUSE_FADE_S, "pause")

    def _do_resume(self) -> None:
        item, now = self._item, time.monotonic()
        if item is None:
            return
        if item.clock.paused_at is None:
            if self._fader.then == "pause":  # still fading down: come back up
                self._fader.fade_to(now, 1.0, PAUSE_FADE_S, None)
            return
        item.clock.resume(now)
        for name in item.outputs:
            self._outs[name].player.set_pause(0)
        self._fader.start(now, 2 * PAUSE_FADE_S)  # also plans the playlist's end fade again

    def _do_stop(self, fade: bool) -> None:
        item, now = self._item, time.monotonic()
        if item is None:
            return
        if fade and item.clock.paused_at is None and self._section.fade_out_s > 0:
            self._fader.fade_to(now, 0.0, self._section.fade_out_s, "stop")
        else:
            self._halt(now)

    def _do_skip(self) -> None:
        if self._item is not None:
            self._fader.fade_to(time.monotonic(), 0.0, SKIP_FADE_S, "next")

    def _do_volume(self, output: str, level: float) -> None:
        now = time.monotonic()
        for name in OUTPUTS if output == "both" else (output,):
            out = self._outs[name]
            out.level = Ramp(out.level.value(now), level, now, LEVEL_GLIDE_S)
        self._apply_volumes(now)

    def _do_duck(self, on: bool) -> None:
        self._fader.set_duck(time.monotonic(), on, DUCK_RAMP_S)

    def _do_cue(self) -> None:
        out = self._outs["cue"]
        if self._cue_media is None:
            path = self._section.cue_file or str(default_cue_path())
            self._cue_media = out.instance.media_new_path(path)
        out.player.stop()
        out.fail_posted = False
        out.player.set_media(self._cue_media)
        level = max(self._outs["headphones"].level.end, CUE_MIN_LEVEL)
        out.player.audio_set_volume(vlc_volume(level))
        if out.player.play() != 0:
            log.warning("the reassurance cue could not start")

    def _do_out_failed(self, name: str, message: str) -> None:
        out, now = self._outs[name], time.monotonic()
        if name == "cue":
            # The cue shares the headphones' device; its failure is not the music's.
            log.warning("reassurance cue failed: %s", message)
            out.player.stop()
            return
        was_failed, out.retry_since = out.failed, None
        out.failed = True
        out.player.stop()  # else libVLC retries the dead device on every buffer
        item = self._item
        if item is not None and name in item.outputs:
            item.outputs.remove(name)
        if not was_failed:
            log.warning("audio output %s failed: %s", name, message)
            self._emit(AudioFailed(output=name, message=message))
        if all(self._outs[n].failed for n in OUTPUTS):
            if item is not None:
                self._halt(now)
            if not self._lost:
                self._lost = True
                self._emit(DeviceChanged(device="audio", status="lost", detail=message))
        elif item is not None and not item.outputs:
            self._halt(now)  # a preview whose only output died

    def _do_end(self, name: str, gen: int, error: bool = False) -> None:
        item = self._item
        if item is None or gen != self._gen or name not in item.outputs:
            return
        if error:  # the input failed (file vanished or corrupt): end it like a natural end
            log.warning("track %s could not be played on %s", item.track, name)
        self._outs[name].ended = True
        item.clock.first_end = item.clock.first_end or time.monotonic()
        if all(self._outs[n].ended for n in item.outputs):
            self._track_done(time.monotonic(), natural=True)

    def _path(self, track: str) -> str:
        return track if os.path.isabs(track) else os.path.join(self._section.music_dir, track)

    def _start(
        self,
        now: float,
        track: str,
        offset_s: float,
        outputs: list[str],
        length: float | None = None,
        preview_s: float | None = None,
    ) -> None:
        path = self._path(track)
        if length is None:
            length = probe_duration(path, self._outs["speakers"].instance)
        self._gen += 1
        started: list[str] = []
        for name in outputs:
            out = self._outs[name]
            out.ended, out.fail_posted = False, False
            if out.failed:
                out.retry_since = now
            media = out.instance.media_new_path(path)
            if offset_s > 0:
                media.add_option(f":start-time={offset_s:.3f}")
            out.player.set_media(media)
            media.release()
            out.volume = self._fader.volume(now, out.level.value(now), 0.0)
            out.player.audio_set_volume(out.volume)
            if out.player.play() == 0:
                started.append(name)
            else:
                self._do_out_failed(name, "libVLC could not start playback")
        if not started:
            return
        self._item = Playing(track, offset_s, started, Timeline(now), length, preview_s)
        self._emit(TrackStarted(track=track, outputs=tuple(started)))

    def _halt(self, now: float) -> None:
        """Stop the current item at once (no fade) and report how long it played."""
        if self._item is not None:
            self._track_done(now, natural=False)

    def _track_done(self, now: float, *, natural: bool) -> None:
        item = self._item
        assert item is not None
        self._item = None
        for name in OUTPUTS:
            self._outs[name].player.stop()
        played = item.clock.played(now)
        if natural and item.length_s and item.preview_s is None:
            # The end event can come ~1 s before the audio drains: the whole rest was heard.
            played = max(played, item.length_s - item.offset_s)
        self._emit(TrackEnded(track=item.track, played_s=round(played, 3)))
        if not natural or item.preview_s is not None:
            return
        self._advance(now, 0.0, 1.0)  # between tracks the level carries on: music has ends

    def _advance(self, now: float, fade_s: float, start: float = FADE_FLOOR) -> None:
        self._index += 1
        if self._index < len(self._tracks):
            self._fader.start(now, fade_s, start)
            self._start(now, self._tracks[self._index], 0.0, list(OUTPUTS))
        else:
            self._emit(PlaylistEnded())

    def _tick(self, now: float) -> None:
        item = self._item
        if item is not None:
            self._check_recovery(now, item)
            then = self._fader.due(now)
            if then is not None:
                self._fade_finished(now, item, then)
            elif item.clock.paused_at is None:
                self._schedule_end_fade(now, item)
            first_end = item.clock.first_end
            if self._item is item and first_end is not None and now - first_end > END_GRACE_S:
                self._track_done(now, natural=True)
        self._apply_volumes(now)

    def _fade_finished(self, now: float, item: Playing, then: str) -> None:
        if then == "pause":
            item.clock.pause(now)
            for name in item.outputs:
                self._outs[name].player.set_pause(1)
        elif then == "next" and item.preview_s is None:
            self._track_done(now, natural=False)
            self._advance(now, SKIP_FADE_S)
        else:  # "stop", or the end of a preview / a skipped preview
            self._halt(now)

    def _schedule_end_fade(self, now: float, item: Playing) -> None:
        if self._fader.then is not None or self._fader.ending:
            return
        if item.preview_s is not None:
            fade_s = min(PREVIEW_FADE_MAX_S, item.preview_s / 4)
            if item.clock.played(now) >= item.preview_s - fade_s:
                self._fader.fade_to(now, 0.0, fade_s, "end_preview")
            return
        if self._index != len(self._tracks) - 1 or self._section.fade_out_s <= 0:
            return
        player = self._outs[item.outputs[0]].player
        length_ms, time_ms = player.get_length(), player.get_time()
        if length_ms <= 0 or time_ms < 0:
            return
        remaining = (length_ms - time_ms) / 1000.0
        if remaining <= self._section.fade_out_s:
            # Reach silence as the last track ends (the end event then finishes it).
            self._fader.end_in(now, max(remaining, TICK_S))

    def _check_recovery(self, now: float, item: Playing) -> None:
        for name in item.outputs:
            out = self._outs[name]
            since = out.retry_since
            if out.failed and since is not None and now - since > RECOVER_AFTER_S:
                out.failed, out.retry_since = False, None
                log.info("audio output %s works again", name)
                if self._lost:
                    self._lost = False
                    self._emit(DeviceChanged(device="audio", status="ok", detail=f"{name} back"))

    def _apply_volumes(self, now: float) -> None:
        item = self._item
        if item is None:
            return
        for name in item.outputs:
            out = self._outs[name]
            volume = self._fader.volume(now, out.level.value(now), self._section.duck_db)
            if volume != out.volume:
                out.volume = volume
                out.player.audio_set_volume(volume)
