"""Loudness and timing arithmetic for the music: perceived level → libVLC volume, ramps, the
fader (fade, duck, pending action) and the played-time ledger.

libVLC's software volume (ALSA, PulseAudio, amem without a volume callback) is *cubic*: the
volume percentage ``v`` becomes an amplitude gain of ``(v/100)³``, so 50 % is ×0.125 (−18 dB),
not ×0.5. We do not expose that curve. A *perceived level* ``L`` (0..1, what a clinician sets
and what fades move) is linear in decibels over a :data:`RANGE_DB` window:

    gain_dB(L) = −RANGE_DB · (1 − L)          (L = 0 is silence)
    vlc_volume = 100 · 10^(gain_dB / 60)      (the cube root of the gain: VLC cubes it back)

so equal steps of ``L`` (and of time, during a fade) are equal steps in dB, which is how
loudness is heard. Ducking subtracts decibels on top. No libVLC here: tested without a player.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

RANGE_DB = 50.0
"""Perceived level 0+ sits this far below full scale; 0 itself is silence."""

FADE_FLOOR = 0.02
"""Fades in start here, not at digital silence: at most −49 dB (inaudible), and outputs that
buffer ahead (ALSA ``null``/``file``) keep an excerpt's first samples instead of zeros."""

MAX_VLC_VOLUME = 100
"""Never amplify above unity: software gain above 100 % clips."""


def level_to_db(level: float) -> float:
    """Gain in dB (≤ 0) for a perceived level 0..1; ``-inf`` for 0 (silence)."""
    level = min(max(level, 0.0), 1.0)
    if level <= 0.0:
        return -math.inf
    return -RANGE_DB * (1.0 - level)


def db_to_vlc_volume(gain_db: float) -> int:
    """The libVLC volume (0..100) whose cubic law gives ``gain_db`` of amplitude gain."""
    if gain_db == -math.inf:
        return 0
    gain_db = min(gain_db, 0.0)
    # VLC applies (v/100)**3, so take the cube root of the amplitude gain: dB/60, not dB/20.
    return max(0, min(MAX_VLC_VOLUME, round(100.0 * 10.0 ** (gain_db / 60.0))))


def vlc_volume_to_db(volume: int) -> float:
    """The amplitude gain in dB that libVLC applies for ``volume`` (its cubic law)."""
    if volume <= 0:
        return -math.inf
    return 60.0 * math.log10(volume / 100.0)


def vlc_volume(level: float, fade: float = 1.0, duck_db: float = 0.0) -> int:
    """libVLC volume for a perceived ``level``, a fade factor 0..1 and a duck in dB.

    The fade scales the perceived level (so a linear fade in time is linear in dB); the duck
    is subtracted in dB.
    """
    gain_db = level_to_db(level * min(max(fade, 0.0), 1.0))
    if gain_db == -math.inf:
        return 0
    return db_to_vlc_volume(gain_db - max(duck_db, 0.0))


@dataclass
class Ramp:
    """A value moving linearly from ``start`` to ``end`` over ``duration_s`` from ``t0``."""

    start: float
    end: float
    t0: float
    duration_s: float

    @classmethod
    def hold(cls, value: float) -> Ramp:
        """A ramp that already sits at ``value``."""
        return cls(value, value, 0.0, 0.0)

    def value(self, now: float) -> float:
        """The value at monotonic time ``now``."""
        if self.duration_s <= 0.0 or now >= self.t0 + self.duration_s:
            return self.end
        if now <= self.t0:
            return self.start
        return self.start + (self.end - self.start) * (now - self.t0) / self.duration_s

    def done(self, now: float) -> bool:
        """Whether the ramp has reached its end value."""
        return now >= self.t0 + self.duration_s

    def retarget(self, now: float, end: float, duration_s: float) -> Ramp:
        """A new ramp from wherever this one is now to ``end``.

        The time is scaled by the distance left, so a fade-out that starts half faded takes
        half as long: the slope (dB per second) stays the one that was configured.
        """
        here = self.value(now)
        span = abs(end - here)
        return Ramp(here, end, now, duration_s * span if span < 1.0 else duration_s)


class Fader:
    """The music's fade and duck, and what to do when the current fade ends (``then``).

    ``then`` is ``None`` for a fade that just shapes the sound (the fade-in, the fade-out
    into the playlist's end), or an action the player runs once the fade is done: ``pause``,
    ``stop``, ``next`` (skip) or ``end_preview``.
    """

    def __init__(self) -> None:
        self.fade = Ramp.hold(0.0)
        self.duck = Ramp.hold(0.0)
        self.then: str | None = None
        self.ending = False

    def start(self, now: float, duration_s: float, start: float = FADE_FLOOR) -> None:
        """A new item: fade in from ``start`` (the floor) to full over ``duration_s``."""
        self.fade = Ramp(start, 1.0, now, duration_s)
        self.then, self.ending = None, False

    def fade_to(self, now: float, end: float, duration_s: float, then: str | None) -> None:
        """Fade from wherever the fade is to ``end``, then do ``then``."""
        self.fade = self.fade.retarget(now, end, duration_s)
        self.then = then

    def end_in(self, now: float, remaining_s: float) -> None:
        """Reach silence in ``remaining_s`` (the playlist's last seconds)."""
        self.fade = Ramp(self.fade.value(now), 0.0, now, remaining_s)
        self.ending = True

    def due(self, now: float) -> str | None:
        """The pending action if its fade has finished (and forget it)."""
        if self.then is None or not self.fade.done(now):
            return None
        then, self.then = self.then, None
        return then

    def set_duck(self, now: float, on: bool, ramp_s: float) -> None:
        """Move the duck towards fully on (1) or off (0) over ``ramp_s``."""
        self.duck = Ramp(self.duck.value(now), 1.0 if on else 0.0, now, ramp_s)

    def volume(self, now: float, level: float, duck_db: float) -> int:
        """libVLC volume for an output at perceived ``level``, with this fade and duck."""
        return vlc_volume(level, self.fade.value(now), self.duck.value(now) * duck_db)


@dataclass
class Timeline:
    """One playing item's clock: when it started, its pauses, and its first end report."""

    started: float
    paused_at: float | None = None
    paused_total: float = 0.0
    first_end: float | None = None

    def played(self, now: float) -> float:
        """Seconds heard so far, pauses excluded."""
        paused = self.paused_total + (now - self.paused_at if self.paused_at is not None else 0)
        return max(0.0, now - self.started - paused)

    def pause(self, now: float) -> None:
        """The item was paused at ``now``."""
        self.paused_at = now

    def resume(self, now: float) -> None:
        """The item plays again from ``now``."""
        if self.paused_at is not None:
            self.paused_total += now - self.paused_at
            self.paused_at = None


@dataclass
class Playing:
    """What is playing now: one track on some outputs, and its timeline."""

    track: str
    offset_s: float
    outputs: list[str]
    clock: Timeline
    length_s: float | None
    preview_s: float | None = None
