"""MemoryDenyWriteExecute=yes in roomd.service: does the Python/ctypes/libVLC stack cope?

The unit's seccomp filter refuses writable+executable memory. The kernel's own
PR_SET_MDWE (Linux 6.3+) enforces the same rule on one process, so the test runs, under it,
what roomd does that could need W+X memory: ctypes callbacks (libffi closures), python-vlc's
event callback from a libVLC thread while it plays a file, and the imports of every library.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

PROBE = r"""
import ctypes, mmap, sys, threading, wave
libc = ctypes.CDLL(None, use_errno=True)
if libc.prctl(65, 1, 0, 0, 0) != 0:  # PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN
    print("NO-MDWE", ctypes.get_errno()); sys.exit(0)
try:
    mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    print("W+X mapping was allowed: the policy is not active"); sys.exit(1)
except OSError:
    pass
CMP = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_int), ctypes.POINTER(ctypes.c_int))
arr = (ctypes.c_int * 4)(3, 1, 4, 2)
libc.qsort(arr, 4, ctypes.sizeof(ctypes.c_int), CMP(lambda a, b: a[0] - b[0]))
assert list(arr) == [1, 2, 3, 4]
import pydantic, paho.mqtt.client, serial, gpiozero  # noqa: F401
try:
    import vlc
    inst = vlc.Instance(["--aout=dummy", "--no-video", "--quiet"])
except (ImportError, OSError, NameError, AttributeError):
    inst = None
if inst is not None:
    with wave.open(sys.argv[1], "wb") as w:
        w.setnchannels(1); w.setsampwidth(2); w.setframerate(8000)
        w.writeframes(b"\0\0" * 800)
    done = threading.Event()
    player = inst.media_player_new()
    player.event_manager().event_attach(vlc.EventType.MediaPlayerEndReached, lambda e: done.set())
    player.set_media(inst.media_new(sys.argv[1]))
    player.play()
    assert done.wait(30), "libVLC did not finish playing under MDWE"
    print("VLC-OK")
print("MDWE-OK")
"""


def test_stack_runs_without_writable_executable_memory(tmp_path: Path) -> None:
    r = subprocess.run(
        [sys.executable, "-c", PROBE, str(tmp_path / "tone.wav")],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    if "NO-MDWE" in r.stdout:
        pytest.skip(f"kernel without PR_SET_MDWE (needs Linux 6.3+): {r.stdout.strip()}")
    assert r.returncode == 0 and "MDWE-OK" in r.stdout, r.stdout + r.stderr
    if "VLC-OK" not in r.stdout:
        pytest.skip("libVLC not installed (Debian: libvlc5 vlc-plugin-base): ctypes part passed")
