"""RoomScreen: what ``roomctl watch`` keeps of the room and how it prints it."""

from __future__ import annotations

import json
from typing import Any

import pytest

from mqtt_bridge.watch import RoomScreen

STATE: dict[str, Any] = {
    "room_id": "room-3",
    "session_id": "s-42",
    "patient_ref": "P-7",
    "phase": "infusion",
    "phase_elapsed_s": 125.9,
    "infusion": {"running": True, "elapsed_s": 61, "target_s": 2400, "completed": False},
    "music": {"mode": "music", "playing": True, "track": "calm/2.ogg"},
    "lighting": {"scene": "infusion", "level": 0.2},
    "call": {"state": "placed"},
    "gates": {"readiness": True, "consent": False},
    "devices": {"oximeter": "ok", "nibp": "lost"},
    "next_nibp_due_at": "2025-01-01T10:10:00.000Z",
}

ALARM = {
    "id": "al-9",
    "code": "spo2_low",
    "kind": "physiological",
    "priority": "medium",
    "state": "active",
    "raised_at": "2025-01-01T10:00:00.000Z",
    "message": "SpO2 89 below 92",
}


def line(screen: RoomScreen, head: str) -> str:
    """The rendered line that starts with ``head``."""
    found = [ln for ln in screen.render().splitlines() if ln.startswith(head)]
    assert len(found) == 1, screen.render()
    return found[0]


def j(body: Any) -> bytes:
    return json.dumps(body).encode()


def test_an_empty_screen_renders_placeholders() -> None:
    s = RoomScreen("room-3")
    text = s.render()
    assert text.splitlines()[0].startswith("room room-3  [UNKNOWN]")
    assert "session -" in text and "patient -" in text
    assert line(s, "phase").split() == ["phase", "?", "(00:00)"]
    assert line(s, "alarms").endswith("none")
    assert line(s, "call").split() == ["call", "-"]


def test_status_is_shown_upper_case() -> None:
    s = RoomScreen("room-3")
    s.update("status", b"online")
    assert "[ONLINE]" in s.render().splitlines()[0]
    s.update("status", b"offline")
    assert "[OFFLINE]" in s.render().splitlines()[0]
    assert s.status == "offline"


def test_state_fills_phase_timers_call_music_lights_gates_devices() -> None:
    s = RoomScreen("room-3")
    s.update("state", j(STATE))
    head = s.render().splitlines()[0]
    assert "session s-42" in head and "patient P-7" in head
    assert line(s, "phase").split() == ["phase", "infusion", "(02:05)"]
    assert line(s, "infusion").split() == ["infusion", "RUNNING", "01:01", "/", "40:00"]
    assert line(s, "call").split() == ["call", "placed"]
    assert line(s, "music").split() == ["music", "music", "playing", "calm/2.ogg"]
    assert line(s, "lights").split() == ["lights", "infusion", "0.2"]
    assert line(s, "gates").split() == ["gates", "readiness=yes", "consent=no"]
    assert line(s, "devices").split() == ["devices", "oximeter=ok", "nibp=lost"]
    assert "next due 2025-01-01T10:10:00.000Z" in line(s, "vitals")


def test_infusion_done_and_music_stopped() -> None:
    s = RoomScreen("r")
    state = {
        **STATE,
        "infusion": {"running": False, "completed": True, "elapsed_s": 2400, "target_s": 2400},
        "music": {"mode": "no_music", "playing": False, "track": None},
    }
    s.update("state", j(state))
    assert line(s, "infusion").split()[:2] == ["infusion", "done"]
    assert line(s, "music").split() == ["music", "no_music", "stopped"]


def test_a_new_state_replaces_the_old_one() -> None:
    s = RoomScreen("r")
    s.update("state", j(STATE))
    s.update("state", j({**STATE, "phase": "debrief", "phase_elapsed_s": 3}))
    assert line(s, "phase").split() == ["phase", "debrief", "(00:03)"]


def test_vitals_and_nibp() -> None:
    s = RoomScreen("r")
    s.update("vitals", j({"ts": "x", "spo2": 97, "hr": 64, "quality": "ok"}))
    s.update("vitals/nibp", j({"ts": "x", "sys": 128, "dia": 79, "map": 95}))
    v = line(s, "vitals")
    assert "SpO2 97" in v and "HR 64" in v and "(ok)" in v and "NIBP 128/79" in v
    s.update("vitals", j({"ts": "y", "spo2": None, "hr": None, "quality": "sensor_off"}))
    v = line(s, "vitals")
    assert "SpO2 None" in v or "SpO2 -" in v
    assert "(sensor_off)" in v and "NIBP 128/79" in v


def test_alarms_are_listed_and_cleared() -> None:
    s = RoomScreen("r")
    s.update("alarms", j({"alarms": [ALARM, {**ALARM, "id": "al-10", "priority": "high"}]}))
    text = line(s, "alarms")
    assert "[medium/active] SpO2 89 below 92 (al-9)" in text
    assert "[high/active] SpO2 89 below 92 (al-10)" in text
    s.update("alarms", j({"alarms": []}))
    assert line(s, "alarms").endswith("none")


def test_events_keep_the_last_eight_in_order() -> None:
    s = RoomScreen("r")
    for seq in range(1, 12):
        s.update("events", j({"seq": seq, "type": "lighting_changed", "data": {"level": seq}}))
    lines = s.render().splitlines()
    shown = lines[lines.index("events:") + 1 :]
    assert len(shown) == 8
    assert shown[0].strip().startswith("#4 lighting_changed")
    assert shown[-1].strip() == '#11 lighting_changed {"level":11}'


def test_long_event_data_is_shortened() -> None:
    s = RoomScreen("r")
    s.update("events", j({"seq": 1, "type": "report_ready", "data": {"path": "x" * 300}}))
    assert s.events[-1].endswith("...")
    assert len(s.events[-1]) < 120


LEAVES = ["state", "vitals", "vitals/nibp", "alarms", "events"]


def filled_screen() -> RoomScreen:
    s = RoomScreen("room-3")
    s.update("status", b"online")
    s.update("state", j(STATE))
    s.update("vitals", j({"spo2": 97, "hr": 64, "quality": "ok"}))
    s.update("vitals/nibp", j({"sys": 128, "dia": 79}))
    s.update("alarms", j({"alarms": [ALARM]}))
    s.update("events", j({"seq": 5, "type": "call_placed", "data": {}}))
    return s


@pytest.mark.parametrize(
    "payload", [b"not json", b"\xff\xfe\x00", b"", b"{", b"{'a': 1}"], ids=repr
)
@pytest.mark.parametrize("leaf", LEAVES)
def test_payloads_that_are_not_json_are_ignored(leaf: str, payload: bytes) -> None:
    s = filled_screen()
    before = s.render()
    s.update(leaf, payload)  # must neither raise nor change the screen
    assert s.render() == before


@pytest.mark.parametrize("leaf", LEAVES)
def test_json_that_is_not_an_object_is_ignored(leaf: str) -> None:
    # Every payload of the contract is a JSON object; anything else is garbage to skip,
    # not a reason for `roomctl watch` to die with a traceback.
    for payload in (b"[1, 2]", b"null", b"42", b'"text"'):
        s = filled_screen()
        before = s.render()
        s.update(leaf, payload)
        assert s.render() == before, payload


def test_unknown_leaves_are_ignored() -> None:
    s = RoomScreen("r")
    s.update("state", j(STATE))
    before = s.render()
    s.update("something/else", j({"phase": "ended"}))
    assert s.render() == before
