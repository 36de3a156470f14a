"""The intentions step over MQTT with the real daemon, real libVLC and a music_dir made by sox:
the library, the patient's choice, notes that never reach ``events``, and a whole session
whose session.json holds the choice, notes, dose, side effects and confirmations."""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.support.probe import Probe, response_props

SECRET = "She hopes to forgive her father before the wedding"
PROTOCOL = "[protocol]\nplaylist_minutes = [0.05, 0.1]\n"  # 3–6 s: the sox tracks are short


def sox(path: Path, seconds: float, title: str | None = None) -> None:
    """A tone file made by sox (Ogg Vorbis; a title tag when given)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tag = ["--comment", f"Title={title}"] if title else []
    cmd = ["sox", "-n", "-r", "22050", "-c", "1", *tag, str(path), "synth", str(seconds)]
    subprocess.run([*cmd, "sine", "440", "vol", "0.3"], check=True, capture_output=True)


@pytest.fixture
def music(tmp_path: Path) -> Path:
    """A music_dir: two calm tracks (one tagged), a short one, guidance, an M3U playlist."""
    root = tmp_path / "music"
    sox(root / "calm" / "01-dawn.ogg", 3.0, title="Dawn Over the Lake")
    sox(root / "calm" / "02-drift.ogg", 2.0)
    sox(root / "short.ogg", 1.0)
    sox(root / "guidance" / "breathing.ogg", 1.0, title="Breathing")
    (root / "calm.m3u").write_text("#EXTM3U\ncalm/01-dawn.ogg\ncalm/02-drift.ogg\n")
    return root


def private(probe: Probe, verb: str, **args: Any) -> tuple[str, dict[str, Any]]:
    """Send ``verb`` as an MQTT 5 request with its own response topic under replies/;
    return the request_id and the reply that arrived there."""
    rid = uuid.uuid4().hex[:12]
    topic = f"{probe.root}/replies/tab-{rid}"
    body = json.dumps({"request_id": rid, "by": "dr-test", **args}).encode()
    probe.publish(f"cmd/{verb}", body, props=response_props(topic, rid.encode()))

    def arrived() -> dict[str, Any] | None:
        with_topic = [p for t, p, _, _ in probe.messages if t == topic]
        return json.loads(with_topic[0]) if with_topic else None

    return rid, probe.wait_for(arrived, 10, f"the reply on {topic}")


def start(probe: Probe, session_id: str) -> None:
    plan = {
        "session_id": session_id,
        "patient_ref": "P-INT",
        "session_number": 1,
        "music_mode": "music",
        "playlist": "calm",
        "protocol": {"infusion_minutes": 0.05},
    }
    probe.publish("plan", json.dumps(plan).encode(), retain=True)
    probe.wait_for(
        lambda: any(e.get("session_id") == session_id for e in probe.events()), 15, "the plan"
    )
    assert probe.ok("start_session") == {"session_id": session_id}


def test_library_choice_and_notes_over_mqtt(make_room, music: Path) -> None:
    room, probe = make_room(extra_toml=f'[audio]\nmusic_dir = "{music}"\n{PROTOCOL}')
    # The library: every track with its title and duration, the playlist with its total.
    library = probe.ok("library")
    tracks = {t["path"]: t for t in library["tracks"]}
    assert library["total"] == 4 and library["next_offset"] is None
    assert tracks["calm/01-dawn.ogg"]["title"] == "Dawn Over the Lake"
    assert tracks["calm/02-drift.ogg"]["title"] == "02-drift"
    assert tracks["calm/01-dawn.ogg"]["duration_s"] == pytest.approx(3.0, abs=0.1)
    assert tracks["short.ogg"]["duration_s"] == pytest.approx(1.0, abs=0.1)
    assert tracks["guidance/breathing.ogg"]["kind"] == "guidance"
    assert tracks["short.ogg"]["kind"] == "music"
    calm = {p["name"]: p for p in library["playlists"]}["calm"]  # the M3U (folders count too)
    assert calm["tracks"] == ["calm/01-dawn.ogg", "calm/02-drift.ogg"]
    assert calm["duration_s"] == pytest.approx(5.0, abs=0.2)
    page = probe.ok("library", offset=1, limit=2)
    assert [t["path"] for t in page["tracks"]] == [t["path"] for t in library["tracks"][1:3]]

    start(probe, "int-1")
    # A missing track is refused by name; a too-short playlist is only a warning.
    missing = probe.command("choose", playlist=["calm/01-dawn.ogg", "calm/03-gone.ogg"])
    assert not missing["ok"] and missing["error"]["code"] == "invalid_payload"
    assert "calm/03-gone.ogg" in missing["error"]["message"]
    short = probe.ok("choose", playlist=["short.ogg"], guidance="breathing")
    assert short["playlist_duration_s"] == pytest.approx(1.0, abs=0.1)
    assert len(short["warnings"]) == 1 and "playlist_minutes" in short["warnings"][0]
    amended = probe.wait_event("plan_amended")
    assert amended["data"]["tracks"] == ["guidance/breathing.ogg", "short.ogg"]
    chosen = probe.ok("choose", playlist="calm", guidance="none")
    assert chosen["warnings"] == [] and chosen["playlist_duration_s"] == pytest.approx(5, abs=0.2)

    # Notes: kept and returned to the clinician, never on events or a retained topic.
    probe.ok("advance")
    probe.ok("advance")  # intentions
    recorded = probe.ok("note", kind="intentions", text=SECRET)
    event = probe.wait_event("note_recorded")
    assert event["data"] == {
        "note_id": recorded["note_id"],
        "kind": "intentions",
        "by": "dr-test",
        "chars": len(SECRET),
    }
    too_long = probe.command("note", kind="debrief", text="x" * 4001)
    assert too_long["error"]["code"] == "invalid_payload" and "text" in too_long["error"]["message"]
    rid, reply = private(probe, "notes")
    assert reply["ok"] and [n["text"] for n in reply["result"]["notes"]] == [SECRET]
    probe.ok("status")  # a later reply on the shared topic: the notes reply would be before it
    with probe.lock:
        seen = list(probe.messages)
    carrying = {t for t, p, _, _ in seen if SECRET.encode() in p}
    # The clinician's own command, and the reply on their own topic: nowhere else.
    assert carrying == {f"{probe.root}/cmd/note", f"{probe.root}/replies/tab-{rid}"}
    assert not [r for r in probe.payloads("replies") if r.get("request_id") == rid]
    assert SECRET not in room.logtext()


def test_a_whole_session_records_choice_notes_dose_and_side_effects(make_room, music: Path) -> None:
    _room, probe = make_room(extra_toml=f'[audio]\nmusic_dir = "{music}"\n{PROTOCOL}')
    start(probe, "int-2")
    probe.ok("confirm", item="mindfulness_done")
    probe.ok("choose", playlist=["calm/02-drift.ogg", "short.ogg"], guidance="clinician")
    probe.ok("note", kind="checkin", text="arrived calm, slept well")
    probe.ok("advance")
    probe.ok("note", kind="integration", text="last session's insight about work")
    probe.ok("advance")
    probe.ok("note", kind="intentions", text=SECRET)
    probe.ok("advance")
    probe.ok("confirm", item="readiness")
    probe.ok("confirm", item="consent")
    probe.ok("confirm", item="blindfold_offered")
    dose = probe.ok("record_dose", weight_kg=64, dose_mg_per_kg=0.5, total_mg=32)
    assert dose["warnings"] == []
    probe.ok("nibp_now")
    probe.wait_event("nibp_result")
    assert probe.ok("advance") == {"phase": "infusion"}
    probe.ok("confirm", item="iv_line")
    probe.ok("start_infusion")
    started = probe.wait_event("music_started")
    assert started["data"]["playlist"] == ["calm/02-drift.ogg", "short.ogg"]
    probe.wait_event("debrief_ready", timeout=30)  # real libVLC played the 3 s
    assert probe.ok("advance") == {"phase": "debrief"}
    probe.ok("side_effects", items=["nausea", "dissociation"], note="nausea settled quickly")
    probe.ok("note", kind="debrief", text="felt held by the music")
    assert probe.ok("advance") == {"phase": "preparation"}

    def measured() -> int:
        return len([e for e in probe.events() if e["type"] == "nibp_result"])

    before = measured()
    assert probe.ok("advance") == {"phase": "discharge"}
    probe.wait_for(lambda: measured() > before, 20, "the discharge blood pressure")
    for item in ("psych_ready", "reminders_given"):
        probe.ok("confirm", item=item)
    assert probe.ok("discharge") == {"phase": "ended"}
    ready = probe.wait_event("report_ready", timeout=30)
    rec = json.loads((Path(ready["data"]["path"]).parent / "session.json").read_text())

    assert (rec["music_mode"], rec["guidance"]) == ("music", "clinician")
    assert rec["tracks"] == ["calm/02-drift.ogg", "short.ogg"]
    assert rec["choices"][0]["by"] == "dr-test"
    kinds = [(n["kind"], n["by"]) for n in rec["notes"]]
    assert kinds == [
        ("checkin", "dr-test"),
        ("integration", "dr-test"),
        ("intentions", "dr-test"),
        ("debrief", "dr-test"),  # the side effects' note
        ("debrief", "dr-test"),
    ]
    assert SECRET in [n["text"] for n in rec["notes"]]
    [given] = rec["doses"]
    assert (given["weight_kg"], given["dose_mg_per_kg"], given["total_mg"]) == (64, 0.5, 32)
    [effects] = rec["side_effects"]
    assert effects["items"] == ["nausea", "dissociation"] and effects["by"] == "dr-test"
    confirmed = {c["item"] for c in rec["confirmations"]}
    assert {"mindfulness_done", "blindfold_offered", "psych_ready", "reminders_given"} <= confirmed
    assert all(c["by"] == "dr-test" and c["at"] for c in rec["confirmations"])
    assert rec["discharged"] is True and rec["open_alarms"] == []
    assert SECRET not in json.dumps(probe.events())
    html = Path(ready["data"]["path"]).read_text()
    assert "nausea settled quickly" in html and "felt held by the music" in html
