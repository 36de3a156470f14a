"""Real libVLC, no sound card: each output renders through ALSA's ``file`` plugin.

``file:FILE=<path>,FORMAT=wav`` is an ALSA device (alsa-lib's own ``pcm.file`` over ``null``)
that writes what it is given to a WAV file. The player sees an ordinary ALSA device, so the
production path is the one under test: ``audio_output_device_set``, VLC's software (cubic)
volume, one device per output. Two artefacts of a device that never blocks:

* libVLC hands audio over ~1 s ahead of real time and pads the gaps with runs of exact
  zeros; :func:`load_render` drops those runs, leaving the audio in media time.
* the file is rewritten each time the device is opened (each track).
"""

from __future__ import annotations

import array
import itertools
import math
import threading
import time
import wave
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from controller.config import AudioSection

RATE = 44100
AMP = 0.5
"""Test tones peak at −6 dBFS: RMS −9 dBFS at unity gain."""


def tone_wav(path: Path, segments: Sequence[tuple[float, float]], amp: float = AMP) -> Path:
    """A stereo 16-bit WAV: each (frequency Hz, seconds) segment in turn, phase-continuous."""
    data = array.array("h")
    phase = 0.0
    for freq, seconds in segments:
        for _ in range(round(seconds * RATE)):
            value = round(amp * 32767 * math.sin(phase))
            data.extend((value, value))
            phase += 2 * math.pi * freq / RATE
    with wave.open(str(path), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(data.tobytes())
    return path


def stepped_tone(path: Path, seconds: int) -> Path:
    """One second per step, 300 Hz, 400 Hz, …: the frequency tells the position in the track."""
    return tone_wav(path, [(300.0 + 100.0 * k, 1.0) for k in range(seconds)])


def load_render(path: Path, min_zero_run: int = 32) -> tuple[list[float], int]:
    """The left channel of a rendered file in −1..1, zero-padding runs removed, and its rate."""
    if not path.exists():
        return [], RATE
    with wave.open(str(path), "rb") as w:
        channels, width, rate = w.getnchannels(), w.getsampwidth(), w.getframerate()
        raw = w.readframes(w.getnframes())
    assert width == 2, f"expected 16-bit output, got {8 * width}-bit"
    samples = array.array("h")
    samples.frombytes(raw[: len(raw) // 2 * 2])
    left = samples[::channels]
    out: list[float] = []
    run: list[float] = []
    for s in left:
        if s == 0:
            run.append(0.0)
            continue
        if len(run) < min_zero_run:
            out.extend(run)
        run = []
        out.append(s / 32768.0)
    return out, rate


def rms_db(samples: Sequence[float]) -> float:
    """RMS level in dBFS (−inf for silence)."""
    if not samples:
        return -math.inf
    power = sum(s * s for s in samples) / len(samples)
    return 10 * math.log10(power) if power > 0 else -math.inf


def windows_db(samples: Sequence[float], rate: int, window_s: float = 0.1) -> list[float]:
    """RMS dBFS of each ``window_s`` window."""
    n = int(rate * window_s)
    return [rms_db(samples[i : i + n]) for i in range(0, len(samples) - n + 1, n)]


def frequency(samples: Sequence[float], rate: int) -> float:
    """Frequency by counting upward zero crossings (pure tones only)."""
    crossings = sum(1 for a, b in itertools.pairwise(samples) if a < 0 <= b)
    return crossings * rate / max(1, len(samples) - 1)


class Inbox:
    """Collects what the player emits; waits (bounded) for a message."""

    def __init__(self) -> None:
        self.messages: list[tuple[float, Any]] = []
        self._cond = threading.Condition()
        self.t0 = time.monotonic()

    def __call__(self, msg: Any) -> None:
        with self._cond:
            self.messages.append((time.monotonic() - self.t0, msg))
            self._cond.notify_all()

    def of(self, kind: type) -> list[Any]:
        """Messages of one type, in order."""
        return [m for _, m in self.messages if isinstance(m, kind)]

    def wait_for(self, pred: Callable[[Any], bool], timeout: float = 10.0) -> Any:
        """The first message (old or new) matching ``pred``; fail after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for _, m in self.messages:
                    if pred(m):
                        return m
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no matching message in {timeout}s: {self.messages}")
                self._cond.wait(left)


Rig = Callable[..., Any]
"""The ``rig`` fixture: ``rig(**audio_overrides) -> (player, inbox, hp_path, sp_path)``."""


def alsa_file(path: Path) -> str:
    """The ALSA device name that renders to ``path``."""
    return f"file:FILE={path},FORMAT=wav"


@pytest.fixture
def music(tmp_path: Path) -> Path:
    """An empty music directory."""
    d = tmp_path / "music"
    d.mkdir()
    return d


@pytest.fixture
def rig(tmp_path: Path, music: Path) -> Iterator[Callable[..., Any]]:
    """Make a player whose outputs render to ``hp.wav`` / ``sp.wav``; closes it afterwards."""
    from audio.player import VlcAudioPlayer

    made: list[VlcAudioPlayer] = []

    def make(**overrides: Any) -> tuple[VlcAudioPlayer, Inbox, Path, Path]:
        hp, sp = tmp_path / "hp.wav", tmp_path / "sp.wav"
        settings: dict[str, Any] = {
            "music_dir": str(music),
            "headphones_device": alsa_file(hp),
            "speakers_device": alsa_file(sp),
            "fade_in_s": 0.0,
            "fade_out_s": 0.0,
            "headphones_volume": 1.0,
            "speakers_volume": 1.0,
        }
        settings.update(overrides)
        inbox = Inbox()
        player = VlcAudioPlayer(AudioSection(**settings), inbox)
        made.append(player)
        return player, inbox, hp, sp

    yield make
    for player in made:
        player.close()
