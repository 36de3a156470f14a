"""Real libVLC in the real daemon: a music-mode session whose playlist end brings debrief."""

from __future__ import annotations

import json
import math
import struct
import wave
from pathlib import Path

from tests.e2e.test_session_e2e import through_the_gate


def tone(path: Path, seconds: float, hz: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rate = 22050
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        frames = (
            struct.pack("<h", int(8000 * math.sin(2 * math.pi * hz * n / rate)))
            for n in range(int(rate * seconds))
        )
        w.writeframes(b"".join(frames))


def test_playlist_end_on_libvlc_brings_debrief_ready(make_room, tmp_path: Path) -> None:
    music = tmp_path / "music"
    tone(music / "session" / "one.wav", 2.0, 440)
    tone(music / "session" / "two.wav", 2.0, 660)
    room, probe = make_room(time_scale=60, extra_toml=f'[audio]\nmusic_dir = "{music}"\n')
    plan = {
        "session_id": "music-1",
        "patient_ref": "P-MUSIC",
        "session_number": 2,
        "music_mode": "music",
        "playlist": ["session/one.wav", "session/two.wav"],
        "protocol": {"infusion_minutes": 0.05},  # 3 session s: the music outlasts it
    }
    through_the_gate(probe, plan)
    probe.wait_event("infusion_completed", timeout=20)
    ready = probe.wait_event("debrief_ready", timeout=30)
    events = probe.events()
    tracks = [e["data"]["track"] for e in events if e["type"] == "track_started"]
    assert tracks == ["session/one.wav", "session/two.wav"]
    stopped = next(e for e in events if e["type"] == "music_stopped")
    assert stopped["data"]["reason"] == "playlist_ended"
    ended = [e["data"] for e in events if e["type"] == "track_ended"]
    assert len(ended) == 2 and all(1.0 <= t["played_s"] <= 2.5 for t in ended), ended
    assert stopped["seq"] < ready["seq"]
    state = json.loads(probe.retained[f"{room.root}/state"])
    assert state["devices"]["audio"] == "ok"


def test_missing_music_file_rejects_the_plan_by_name(make_room, tmp_path: Path) -> None:
    music = tmp_path / "music"
    tone(music / "one.wav", 1.0, 440)
    _room, probe = make_room(time_scale=60, extra_toml=f'[audio]\nmusic_dir = "{music}"\n')
    plan = {
        "session_id": "music-2",
        "patient_ref": "P-M2",
        "session_number": 1,
        "music_mode": "music",
        "playlist": ["one.wav", "gone.wav"],
    }
    probe.publish("plan", json.dumps(plan).encode(), retain=True)
    rejected = probe.wait_event("plan_rejected", timeout=10)
    assert any("gone.wav" in r for r in rejected["data"]["reasons"])
