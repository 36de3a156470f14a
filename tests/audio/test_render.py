"""The music as rendered by real libVLC: fades, both outputs, the duck, preview, the cue.

Every number here is measured on audio libVLC actually produced (see conftest: ALSA's
``file`` device, no sound card). Levels are relative to the same tone at unity gain.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

from audio.fades import RANGE_DB
from controller.events import PlaylistEnded, TrackEnded, TrackStarted

from .conftest import (
    AMP,
    Inbox,
    Rig,
    frequency,
    load_render,
    rms_db,
    stepped_tone,
    tone_wav,
    windows_db,
)

UNITY_DB = 20 * math.log10(AMP / math.sqrt(2))  # the test tone's RMS at unity gain: −9.03 dBFS


def _ended(inbox: Inbox, timeout: float = 10.0) -> TrackEnded:
    return inbox.wait_for(lambda m: isinstance(m, TrackEnded), timeout)


def test_fade_in_rises_linearly_in_db(rig: Rig, music: Path) -> None:
    tone_wav(music / "a.wav", [(440.0, 5.0)])
    player, inbox, hp, _ = rig(fade_in_s=2.0)
    player.play(["a.wav"])
    _ended(inbox)
    player.close()
    samples, rate = load_render(hp)
    env = [round(db - UNITY_DB, 1) for db in windows_db(samples, rate)]
    print("fade-in envelope, dB re unity per 100 ms:", env)
    # The fade starts at the floor (−RANGE_DB) …
    assert env[0] < -RANGE_DB + 3
    # … and rises to unity; the rising part is where it is more than 1 dB from both ends.
    rising = [i for i, db in enumerate(env) if env[0] + 1.5 < db < -1.0]
    assert rising, env
    first, last = rising[0], rising[-1]
    duration = (last - first + 1) * 0.1
    assert 1.4 <= duration <= 2.4, (duration, env)
    # Linear in dB: a straight line fits the rise within a few dB (a linear-amplitude fade,
    # or VLC's raw cubic percentage, would bow far away from it).
    xs = list(range(first, last + 1))
    ys = [env[i] for i in xs]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum(
        (x - mx) ** 2 for x in xs
    )
    worst = max(abs(my + slope * (x - mx) - y) for x, y in zip(xs, ys, strict=True))
    print(
        f"slope {slope * 10:.1f} dB/s (expected {RANGE_DB / 2:.1f}), worst residual {worst:.1f} dB"
    )
    assert 0.65 * RANGE_DB / 2.0 <= slope * 10 <= 1.4 * RANGE_DB / 2.0
    assert worst < 4.0
    # Monotonic (allowing a block straddling two volume steps), then steady at unity.
    assert all(
        b >= a - 1.0 for a, b in zip(env[first:last], env[first + 1 : last + 1], strict=True)
    )
    assert abs(env[-3]) < 0.5


def test_both_outputs_play_at_their_own_levels_and_speakers_mute_alone(
    rig: Rig, music: Path
) -> None:
    tone_wav(music / "a.wav", [(440.0, 4.0)])
    player, inbox, hp, sp = rig(headphones_volume=1.0, speakers_volume=0.6)
    player.play(["a.wav"])
    started = inbox.wait_for(lambda m: isinstance(m, TrackStarted))
    assert started.outputs == ("headphones", "speakers")
    time.sleep(1.0)
    player.set_volume("speakers", 0.0)
    _ended(inbox)
    player.close()
    hp_samples, rate = load_render(hp)
    sp_samples, _ = load_render(sp)
    hp_env = windows_db(hp_samples, rate)
    sp_db = rms_db(sp_samples[int(0.2 * rate) : int(1.0 * rate)]) - UNITY_DB
    print(f"headphones {hp_env[5] - UNITY_DB:.2f} dB, speakers at 0.6: {sp_db:.2f} dB")
    # The headphones play the whole track at unity, untouched by the speakers' mute.
    assert len(hp_samples) / rate > 3.5
    assert all(abs(db - UNITY_DB) < 0.5 for db in hp_env[1:-1])
    # Speakers at perceived 0.6 → −RANGE_DB·0.4 = −20 dB, then silence after the mute.
    assert abs(sp_db - (-RANGE_DB * 0.4)) < 1.0
    assert len(sp_samples) / rate < len(hp_samples) / rate - 1.0


def test_duck_lowers_the_music_by_duck_db_then_restores_it(rig: Rig, music: Path) -> None:
    tone_wav(music / "a.wav", [(440.0, 6.0)])
    player, inbox, hp, sp = rig(duck_db=12)
    player.play(["a.wav"])
    inbox.wait_for(lambda m: isinstance(m, TrackStarted))
    time.sleep(0.8)
    player.duck(True)
    time.sleep(1.8)
    player.duck(False)
    _ended(inbox)
    player.close()
    for path in (hp, sp):
        samples, rate = load_render(path)
        env = [db - UNITY_DB for db in windows_db(samples, rate)]
        lowest = min(env[1:-1])
        print(
            f"{path.name}: unducked {env[1]:.2f} dB, ducked {lowest:.2f} dB, last {env[-2]:.2f} dB"
        )
        assert abs(env[1]) < 0.5  # before the call
        assert abs(lowest - (-12.0)) < 1.0  # during it
        assert abs(env[-2]) < 0.5  # after it
        ducked = [db for db in env if db < -11.0]
        assert 0.8 <= len(ducked) * 0.1 <= 2.5, env  # held while the call was open


def test_preview_default_starts_a_third_of_the_way_in_on_the_speakers_only(
    rig: Rig, music: Path
) -> None:
    stepped_tone(music / "steps.wav", 7)  # a third of 7 s = 2.33 s: in the 500 Hz second
    player, inbox, hp, sp = rig(preview_s=30)
    player.preview("steps.wav", None, 1.5)
    started = inbox.wait_for(lambda m: isinstance(m, TrackStarted))
    ended = _ended(inbox)
    player.close()
    assert started.outputs == ("speakers",)
    assert 1.3 <= ended.played_s <= 2.0
    assert not inbox.of(PlaylistEnded)
    samples, rate = load_render(sp)
    # Skip 0.15 s: libVLC may emit ~0.1 s of the track's start (at the fade's floor) first.
    head = frequency(samples[int(0.15 * rate) : int(0.4 * rate)], rate)
    length = len(samples) / rate
    print(f"preview: starts at {head:.0f} Hz, {length:.2f} s rendered")
    assert abs(head - 500) < 15
    # Rendered length = the excerpt plus what the non-blocking device took ahead (≤ ~1.2 s).
    assert 1.4 <= length <= 3.0
    assert load_render(hp)[0] == []


def test_preview_at_an_offset_and_its_fades(rig: Rig, music: Path) -> None:
    stepped_tone(music / "steps.wav", 10)
    player, inbox, _, sp = rig()
    player.preview("steps.wav", 5.5, 1.0)
    ended = _ended(inbox)
    player.close()
    samples, rate = load_render(sp)
    head = frequency(samples[int(0.15 * rate) : int(0.4 * rate)], rate)
    env = [db - UNITY_DB for db in windows_db(samples, rate)]
    print(f"offset preview: starts at {head:.0f} Hz; envelope {[round(x) for x in env]}")
    assert abs(head - 800) < 15  # 5.5 s is in the 800 Hz second
    assert env[0] < -20  # a short fade in, not a click
    assert max(env) > -1.0
    assert 0.9 <= ended.played_s <= 1.5


def test_cue_is_a_soft_chime_in_the_headphones(rig: Rig, music: Path) -> None:
    player, _, hp, sp = rig(headphones_volume=1.0)
    player.cue()
    time.sleep(2.3)
    player.close()
    samples, rate = load_render(hp)
    peak_db = 20 * math.log10(max(abs(s) for s in samples))
    length = len(samples) / rate
    first = frequency(samples[int(0.05 * rate) : int(0.35 * rate)], rate)
    print(f"cue: peak {peak_db:.1f} dBFS, {length:.2f} s, first note {first:.0f} Hz")
    assert -16.0 < peak_db < -12.0
    assert 1.2 < length < 2.0
    assert abs(first - 880) < 30
    assert load_render(sp)[0] == []
