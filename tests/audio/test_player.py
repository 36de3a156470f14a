"""The player's timeline and failures, on real libVLC (events rather than rendered levels)."""

from __future__ import annotations

import time
from pathlib import Path

from audio.player import VlcAudioPlayer
from controller.config import AudioSection
from controller.events import AudioFailed, DeviceChanged, PlaylistEnded, TrackEnded, TrackStarted

from .conftest import Inbox, Rig, load_render, tone_wav


def _kinds(inbox: Inbox) -> list[str]:
    return [type(m).__name__ for _, m in inbox.messages if not isinstance(m, DeviceChanged)]


def test_playlist_timeline_with_played_seconds(rig: Rig, music: Path) -> None:
    tone_wav(music / "a.wav", [(440.0, 2.0)])
    tone_wav(music / "b.wav", [(550.0, 2.0)])
    player, inbox, _, _ = rig()
    start = time.monotonic()
    player.play(["a.wav", "b.wav"])
    inbox.wait_for(lambda m: isinstance(m, PlaylistEnded), 10)
    assert time.monotonic() - start < 6.0
    assert _kinds(inbox) == [
        "TrackStarted", "TrackEnded", "TrackStarted", "TrackEnded", "PlaylistEnded"
    ]  # fmt: skip
    ended = inbox.of(TrackEnded)
    assert [e.track for e in ended] == ["a.wav", "b.wav"]
    assert all(abs(e.played_s - 2.0) < 0.05 for e in ended)  # the whole track was heard
    assert inbox.of(DeviceChanged)[0].status == "ok"


def test_resume_at_an_index_and_offset(rig: Rig, music: Path) -> None:
    tone_wav(music / "a.wav", [(440.0, 2.0)])
    tone_wav(music / "b.wav", [(550.0, 3.0)])
    player, inbox, _, _ = rig()
    player.play(["a.wav", "b.wav"], start_index=1, offset_s=1.5)
    ended = inbox.wait_for(lambda m: isinstance(m, TrackEnded), 8)
    assert inbox.of(TrackStarted)[0].track == "b.wav"
    assert abs(ended.played_s - 1.5) < 0.1  # the rest of b after 1.5 s


def test_skip_pause_resume_and_stop(rig: Rig, music: Path) -> None:
    tone_wav(music / "a.wav", [(440.0, 6.0)])
    tone_wav(music / "b.wav", [(550.0, 6.0)])
    player, inbox, _, _ = rig(fade_out_s=0.5)
    player.play(["a.wav", "b.wav"])
    time.sleep(0.5)
    player.skip()  # a 1 s fade, then b
    inbox.wait_for(lambda m: isinstance(m, TrackStarted) and m.track == "b.wav", 5)
    skipped = inbox.of(TrackEnded)[0]
    assert 1.2 < skipped.played_s < 2.2
    time.sleep(1.2)  # b's 1 s fade-in is over
    player.pause()  # a 0.5 s fade, then paused
    time.sleep(1.0)  # paused: not counted
    player.resume()
    time.sleep(0.3)
    player.stop()  # fade_out_s = 0.5
    stopped = inbox.wait_for(lambda m: isinstance(m, TrackEnded) and m.track == "b.wav", 5)
    assert 1.8 < stopped.played_s < 2.6  # 1.2 + 0.5 + 0.3 + a short fade, not the pause
    assert not inbox.of(PlaylistEnded)  # stopping is not the playlist's end


def test_skip_on_the_last_track_ends_the_playlist(rig: Rig, music: Path) -> None:
    tone_wav(music / "a.wav", [(440.0, 5.0)])
    player, inbox, _, _ = rig()
    player.play(["a.wav"])
    time.sleep(0.3)
    player.skip()
    inbox.wait_for(lambda m: isinstance(m, PlaylistEnded), 4)
    player.stop(fade=False)  # nothing playing: a no-op


def test_a_failed_output_reports_and_the_other_keeps_playing(rig: Rig, music: Path) -> None:
    tone_wav(music / "a.wav", [(440.0, 3.0)])
    player, inbox, _, sp = rig(headphones_device="roomd_no_such_device")
    player.play(["a.wav"])
    failed = inbox.wait_for(lambda m: isinstance(m, AudioFailed), 5)
    assert failed.output == "headphones"
    assert "roomd_no_such_device" in failed.message or "alsa" in failed.message
    ended = inbox.wait_for(lambda m: isinstance(m, TrackEnded), 8)
    assert abs(ended.played_s - 3.0) < 0.1
    assert len(inbox.of(AudioFailed)) == 1
    assert not [m for m in inbox.of(DeviceChanged) if m.status == "lost"]
    player.close()
    samples, rate = load_render(sp)
    assert len(samples) / rate > 2.5  # the speakers played the whole track


def test_both_outputs_failing_is_the_audio_device_lost(rig: Rig, music: Path) -> None:
    tone_wav(music / "a.wav", [(440.0, 3.0)])
    player, inbox, _, _ = rig(headphones_device="roomd_nope_1", speakers_device="roomd_nope_2")
    player.play(["a.wav"])
    lost = inbox.wait_for(lambda m: isinstance(m, DeviceChanged) and m.status == "lost", 5)
    assert lost.device == "audio"
    assert {m.output for m in inbox.of(AudioFailed)} == {"headphones", "speakers"}
    inbox.wait_for(lambda m: isinstance(m, TrackEnded), 3)
    assert not inbox.of(PlaylistEnded)


def test_a_missing_track_is_skipped(rig: Rig, music: Path) -> None:
    tone_wav(music / "b.wav", [(440.0, 1.5)])
    player, inbox, _, _ = rig()
    player.play(["gone.wav", "b.wav"])
    inbox.wait_for(lambda m: isinstance(m, PlaylistEnded), 8)
    ended = inbox.of(TrackEnded)
    assert [e.track for e in ended] == ["gone.wav", "b.wav"]
    assert ended[0].played_s < 0.5


def test_without_libvlc_options_it_accepts_the_audio_is_absent(music: Path) -> None:
    inbox = Inbox()
    player = VlcAudioPlayer(
        AudioSection(music_dir=str(music)), inbox, instance_args=["--roomd-bogus-option"]
    )
    assert inbox.of(DeviceChanged)[0].status == "absent"
    player.play(["a.wav"])  # accepted and ignored: the room goes on without music
    player.cue()
    player.close()
    assert len(inbox.messages) == 1


def test_methods_return_at_once(rig: Rig, music: Path) -> None:
    tone_wav(music / "a.wav", [(440.0, 3.0)])
    player, _, _, _ = rig(fade_out_s=30)
    began = time.monotonic()
    player.play(["a.wav"])
    player.set_volume("both", 0.5)
    player.duck(True)
    player.stop()
    player.preview("a.wav", None, 2.0)
    assert time.monotonic() - began < 0.05
    began = time.monotonic()
    player.close()
    assert time.monotonic() - began < 3.0
