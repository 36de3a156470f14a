"""The music library over ``library`` and the patient's choice (``choose``)."""

from __future__ import annotations

import json
from pathlib import Path

from controller.clock import FakeClock
from controller.models import Reply
from tests.controller.harness import Harness, make_config

TRACKS = {
    "calm/01.ogg": 25 * 60.0,
    "calm/02.ogg": 30 * 60.0,
    "short/01.ogg": 10 * 60.0,
    "guidance/breathing.ogg": 300.0,
    "odd.ogg": None,
}


def stock(h: Harness) -> None:
    """Give the harness's library tracks, a playlist and the default guidance track."""
    h.library.tracks = dict(TRACKS)
    h.library.playlists = {"calm-55": ["calm/01.ogg", "calm/02.ogg"]}


def fields(reply: Reply) -> dict[str, str]:
    assert reply.error is not None and reply.error.details is not None
    return dict(reply.error.details["fields"])


# === library =================================================================================


def test_library_lists_tracks_kinds_and_playlists_with_their_totals(room: Harness) -> None:
    stock(room)
    result = room.ok("library")
    assert result["total"] == len(TRACKS)
    kinds = {t["path"]: t["kind"] for t in result["tracks"]}
    assert kinds["guidance/breathing.ogg"] == "guidance"
    assert kinds["calm/01.ogg"] == "music"
    assert {t["path"]: t["duration_s"] for t in result["tracks"]}["odd.ogg"] is None
    assert result["playlists"] == [
        {"name": "calm-55", "tracks": ["calm/01.ogg", "calm/02.ogg"], "duration_s": 3300.0}
    ]
    assert result["next_offset"] is None
    assert result["rescan_started"] is False and room.library.rescans == 0


def test_library_says_the_playlist_length_the_protocol_expects(tmp_path: Path) -> None:
    """The tablet shows a playlist's running total against this range before ``choose``."""
    for name, protocol, expected in (
        ("default", {}, [50, 60]),
        ("clinic", {"playlist_minutes": [45, 70]}, [45, 70]),
    ):
        (tmp_path / name).mkdir()
        h = Harness(tmp_path / name, make_config(protocol=protocol))
        try:
            assert h.ok("library")["playlist_minutes"] == expected
        finally:
            h.close()


def test_library_pages_with_offset_and_limit(room: Harness) -> None:
    stock(room)
    first = room.ok("library", limit=2)
    assert [t["path"] for t in first["tracks"]] == list(TRACKS)[:2]
    assert first["next_offset"] == 2
    rest = room.ok("library", offset=first["next_offset"], limit=10)
    assert [t["path"] for t in rest["tracks"]] == list(TRACKS)[2:]
    assert rest["next_offset"] is None


def test_a_library_reply_stays_under_64_kib(room: Harness) -> None:
    long = {f"{'x' * 400}/{i:03}.ogg": 60.0 for i in range(300)}
    room.library.tracks = long
    result = room.ok("library", limit=500)
    size = len(room.link.replies[-1][0].to_json())
    assert size < 64 * 1024
    assert 0 < len(result["tracks"]) < 300
    assert result["next_offset"] == len(result["tracks"])


def test_library_rescan_asks_the_library(room: Harness) -> None:
    assert room.ok("library", rescan=True)["rescan_started"] is True
    assert room.library.rescans == 1


def test_library_bad_paging_names_the_field(room: Harness) -> None:
    reply = room.cmd("library", limit=0)
    assert not reply.ok and "field 'limit'" in (reply.error.message if reply.error else "")


# === choose ==================================================================================


def test_choose_a_named_playlist_and_guidance_amends_the_session(room: Harness) -> None:
    stock(room)
    room.plan()
    room.ok("start_session")
    result = room.ok("choose", playlist="calm-55", guidance="breathing")
    assert result == {
        "music_mode": "music",
        "playlist": "calm-55",
        "guidance": "breathing",
        "playlist_duration_s": 3300.0,
        "warnings": [],
    }
    amended = room.events("plan_amended")[-1]
    assert amended["changes"] == {"playlist": "calm-55", "guidance": "breathing"}
    assert amended["tracks"] == ["guidance/breathing.ogg", "calm/01.ogg", "calm/02.ogg"]
    assert room.room.session.state.tracks == amended["tracks"]


def test_a_playlist_outside_the_protocols_minutes_is_a_warning(room: Harness) -> None:
    stock(room)
    room.plan()
    room.ok("start_session")
    result = room.ok("choose", playlist=["short/01.ogg"])
    assert result["playlist_duration_s"] == 600.0
    assert len(result["warnings"]) == 1 and "50–60 min" in result["warnings"][0]
    assert room.events("plan_amended")[-1]["warnings"] == result["warnings"]
    assert room.room.session.state.tracks == ["short/01.ogg"]


def test_an_unknown_duration_is_a_warning_not_a_number(room: Harness) -> None:
    stock(room)
    room.plan()
    room.ok("start_session")
    result = room.ok("choose", playlist=["calm/01.ogg", "odd.ogg"])
    assert result["playlist_duration_s"] is None
    assert "odd.ogg" in result["warnings"][0]


def test_missing_tracks_are_refused_by_name_and_change_nothing(room: Harness) -> None:
    stock(room)
    room.library.missing = {"gone.ogg", "lost.ogg"}
    room.plan()
    room.ok("start_session")
    before = list(room.room.session.state.tracks)
    reply = room.cmd("choose", playlist=["calm/01.ogg", "gone.ogg", "lost.ogg"])
    assert not reply.ok and reply.error is not None
    assert reply.error.code == "invalid_payload"
    assert "field 'playlist.1'" in reply.error.message and "gone.ogg" in reply.error.message
    assert set(fields(reply)) == {"playlist.1", "playlist.2"}
    assert room.events("plan_amended") == []
    assert room.room.session.state.tracks == before


def test_choose_needs_something_to_change(room: Harness) -> None:
    room.plan()
    room.ok("start_session")
    reply = room.cmd("choose")
    assert not reply.ok and reply.error is not None and reply.error.code == "invalid_payload"
    bad = room.cmd("choose", guidance="hypnosis")
    assert bad.error is not None and "field 'guidance'" in bad.error.message


def test_no_music_with_clinician_guidance_plays_nothing(room: Harness) -> None:
    room.plan()
    room.ok("start_session")
    result = room.ok("choose", music_mode="no_music", guidance="clinician")
    assert result["playlist_duration_s"] is None and result["warnings"] == []
    assert room.room.session.state.tracks == []
    assert room.room.session.state.music_mode == "no_music"


def test_choose_is_refused_once_the_infusion_phase_begins(room: Harness) -> None:
    room.to_infusion_running()
    reply = room.cmd("choose", guidance="none")
    assert reply.error is not None and reply.error.code == "invalid_state"


def test_the_choice_survives_a_restart_and_is_what_plays(tmp_path: Path) -> None:
    clock = FakeClock()
    h = Harness(tmp_path, clock=clock)
    stock(h)
    h.to_pre_infusion()
    h.ok("choose", playlist="calm-55", guidance="body_scan")
    h.close()
    h = Harness(tmp_path, clock=clock)
    stock(h)
    s = h.room.session.state
    assert s.plan is not None and s.plan.guidance == "body_scan"
    assert s.tracks == ["guidance/body_scan.ogg", "calm/01.ogg", "calm/02.ogg"]
    h.vitals()  # the oximeter reports again after the restart
    for verb, args in [("advance", {}), ("confirm", {"item": "iv_line"}), ("start_infusion", {})]:
        h.send(verb, json.dumps({"request_id": f"after-{verb}", "by": "dr-lee", **args}).encode())
    assert s.phase == "infusion" and s.infusion_running
    assert h.audio.tracks == s.tracks
    h.close()
