"""The perceptual volume law, ramps, the fader and the chime (no libVLC)."""

from __future__ import annotations

import itertools
import math

import pytest

from audio.cue import BUNDLED, chime_wav_bytes
from audio.fades import (
    FADE_FLOOR,
    RANGE_DB,
    Fader,
    Ramp,
    Timeline,
    db_to_vlc_volume,
    level_to_db,
    vlc_volume,
    vlc_volume_to_db,
)


def test_the_cubic_law_is_undone() -> None:
    # VLC: 50 % → ×0.125 (−18 dB). Perceived 0.5 is −25 dB, i.e. VLC volume 38.
    assert vlc_volume_to_db(50) == pytest.approx(-18.06, abs=0.01)
    assert vlc_volume(1.0) == 100
    assert vlc_volume(0.0) == 0
    assert vlc_volume(0.5) == 38
    assert vlc_volume_to_db(vlc_volume(0.5)) == pytest.approx(-25.0, abs=0.3)
    for level in (0.1, 0.3, 0.6, 0.9):
        assert vlc_volume_to_db(vlc_volume(level)) == pytest.approx(level_to_db(level), abs=0.5)


def test_levels_are_linear_in_db() -> None:
    steps = [level_to_db(x / 10) for x in range(1, 11)]
    diffs = {round(b - a, 6) for a, b in itertools.pairwise(steps)}
    assert diffs == {RANGE_DB / 10}
    assert level_to_db(0) == -math.inf


def test_duck_subtracts_db_and_never_amplifies() -> None:
    assert vlc_volume_to_db(vlc_volume(1.0, duck_db=12)) == pytest.approx(-12.0, abs=0.3)
    assert db_to_vlc_volume(6.0) == 100
    assert vlc_volume(0.0, duck_db=12) == 0


def test_ramp_and_retarget_keep_the_slope() -> None:
    r = Ramp(0.0, 1.0, 10.0, 2.0)
    assert r.value(9) == 0.0 and r.value(11) == 0.5 and r.value(13) == 1.0
    assert not r.done(11.9) and r.done(12.0)
    half = r.retarget(11.0, 0.0, 30.0)  # fade out from 0.5: half the configured time
    assert half.duration_s == pytest.approx(15.0)
    assert Ramp.hold(0.7).value(0) == 0.7


def test_fader_runs_its_action_once_the_fade_is_done() -> None:
    f = Fader()
    f.start(0.0, 1.0)
    assert f.fade.value(0.0) == FADE_FLOOR
    f.fade_to(2.0, 0.0, 1.0, "stop")
    assert f.due(2.5) is None
    assert f.due(3.0) == "stop"
    assert f.due(3.1) is None
    f.set_duck(4.0, True, 1.0)
    assert f.volume(5.0, 1.0, 12.0) == 0  # faded out
    f.start(5.0, 0.0, 1.0)
    assert vlc_volume_to_db(f.volume(6.0, 1.0, 12.0)) == pytest.approx(-12.0, abs=0.3)


def test_timeline_excludes_pauses() -> None:
    t = Timeline(100.0)
    t.pause(110.0)
    assert t.played(120.0) == 10.0
    t.resume(130.0)
    assert t.played(135.0) == 15.0


def test_bundled_chime_is_the_generated_one_and_small() -> None:
    assert BUNDLED.read_bytes() == chime_wav_bytes()
    assert len(chime_wav_bytes()) < 100_000
