"""The built-in reassurance cue: a soft two-note chime, generated (no binary in git needed).

Played in the headphones when the patient's call is placed ("someone is coming"). It must be
gentle for a patient under ketamine: a slow attack (no click), low level (−14 dBFS peak), two
descending bell-like notes (A5 then E5, with a quiet octave partial) that decay away in about
a second. ``python -m audio.cue PATH`` writes it; :func:`default_cue_path` gives the bundled
copy (``audio/chime.wav``) or writes one to the temp directory if that is missing.
"""

from __future__ import annotations

import io
import math
import struct
import sys
import tempfile
import wave
from pathlib import Path

RATE = 22050
PEAK = 10.0 ** (-14.0 / 20.0)
NOTES = ((880.0, 0.0), (659.26, 0.45))
"""(frequency Hz, start s): A5 then E5."""
LENGTH_S = 1.6
ATTACK_S = 0.02
DECAY_S = 0.35

BUNDLED = Path(__file__).with_name("chime.wav")


def chime_samples() -> list[float]:
    """The chime as mono samples in −1..1 (deterministic)."""
    n = int(RATE * LENGTH_S)
    out = [0.0] * n
    for freq, start in NOTES:
        first = int(start * RATE)
        for i in range(first, n):
            t = (i - first) / RATE
            attack = min(1.0, t / ATTACK_S)
            env = attack * math.exp(-t / DECAY_S)
            # A quiet octave partial makes it a bell rather than a test tone.
            tone = math.sin(2 * math.pi * freq * t) + 0.2 * math.sin(4 * math.pi * freq * t)
            out[i] += 0.5 * env * tone
    # A short fade at the very end so the file never stops on a non-zero sample.
    tail = int(0.05 * RATE)
    for k in range(tail):
        out[n - 1 - k] *= k / tail
    peak = max(abs(s) for s in out) or 1.0
    return [s * PEAK / peak for s in out]


def chime_wav_bytes() -> bytes:
    """The chime as a 16-bit mono WAV file."""
    frames = b"".join(
        struct.pack("<h", max(-32767, min(32767, round(s * 32767)))) for s in chime_samples()
    )
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(frames)
    return buf.getvalue()


def write_chime(path: str | Path) -> Path:
    """Write the chime WAV to ``path``."""
    target = Path(path)
    target.write_bytes(chime_wav_bytes())
    return target


def default_cue_path() -> Path:
    """The bundled chime, or a freshly written copy in the temp directory if it is missing."""
    if BUNDLED.is_file():
        return BUNDLED
    return write_chime(Path(tempfile.gettempdir()) / "roomd-chime.wav")


if __name__ == "__main__":  # pragma: no cover - a maintenance tool
    print(write_chime(sys.argv[1] if len(sys.argv) > 1 else BUNDLED))
