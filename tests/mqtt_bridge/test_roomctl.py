"""roomctl: payloads from the command line, and the real client against a real room."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mqtt_bridge.roomctl import (
    EXIT_ERROR,
    EXIT_OK,
    EXIT_TIMEOUT,
    EXIT_USAGE,
    build_payload,
    main,
    parse_args,
)
from tests.support.broker import Broker
from tests.support.daemon import RoomProcess
from tests.support.probe import Probe

MakeRoom = Callable[..., tuple[RoomProcess, Probe]]

PLAN = {
    "session_id": "s-ctl-1",
    "patient_ref": "P-CTL-1",
    "session_number": 2,
    "music_mode": "no_music",
    "guidance": "none",
}


# --- build_payload ------------------------------------------------------------------------


def test_payload_carries_a_request_id_and_by() -> None:
    a = build_payload("status", [], "dr-a", None)
    b = build_payload("status", [], "dr-a", None)
    assert a["by"] == "dr-a"
    assert isinstance(a["request_id"], str) and 1 <= len(a["request_id"]) <= 64
    assert a["request_id"] != b["request_id"]
    assert set(a) == {"request_id", "by"}


def test_key_value_words_are_parsed_as_json_when_they_parse() -> None:
    p = build_payload(
        "lights",
        ["level=0.25", "fade_s=3", "scene=dim", 'override={"reason": "ok"}', "flag=true"],
        "dr",
        None,
    )
    assert p["level"] == 0.25 and isinstance(p["level"], float)
    assert p["fade_s"] == 3 and isinstance(p["fade_s"], int)
    assert p["scene"] == "dim"
    assert p["override"] == {"reason": "ok"}
    assert p["flag"] is True


def test_a_value_may_contain_equals_signs_and_spaces() -> None:
    p = build_payload("checkin", ["note=a=b c"], "dr", None)
    assert p["note"] == "a=b c"


@pytest.mark.parametrize(
    ("verb", "words", "field", "value"),
    [
        ("confirm", ["consent"], "item", "consent"),
        ("confirm", ["readiness"], "item", "readiness"),
        ("emergency", ["patient", "unresponsive"], "reason", "patient unresponsive"),
        ("alarm_silence", ["60"], "seconds", 60),
        ("alarm_ack", ["12"], "alarm_id", "12"),
        ("stop_infusion", ["pump", "fault"], "reason", "pump fault"),
        ("end_session", ["patient", "left"], "reason", "patient left"),
        ("checkin", ["feels", "calm"], "note", "feels calm"),
        ("music", ["pause"], "action", "pause"),
    ],
)
def test_positional_shorthands(verb: str, words: list[str], field: str, value: Any) -> None:
    p = build_payload(verb, words, "dr", None)
    assert p[field] == value
    assert type(p[field]) is type(value)


def test_positional_and_key_value_words_mix() -> None:
    p = build_payload("music", ["volume", "output=headphones", "level=0.5"], "dr", None)
    assert p == {**p, "action": "volume", "output": "headphones", "level": 0.5}


@pytest.mark.parametrize("verb", ["advance", "status", "lights", "nibp_now", "events", "discharge"])
def test_loose_words_on_a_verb_without_a_positional_field_are_an_error(verb: str) -> None:
    with pytest.raises(ValueError) as err:
        build_payload(verb, ["please", "now"], "dr", None)
    assert verb in str(err.value) and "please now" in str(err.value)


def test_a_key_that_is_not_an_identifier_is_a_loose_word() -> None:
    with pytest.raises(ValueError):
        build_payload("lights", ["fade-s=3"], "dr", None)


def test_plan_file_is_inlined(tmp_path: Path) -> None:
    f = tmp_path / "plan.json"
    f.write_text(json.dumps(PLAN))
    p = build_payload("start_session", [], "dr", str(f))
    assert p["plan"] == PLAN


def test_missing_plan_file_raises_oserror(tmp_path: Path) -> None:
    with pytest.raises(OSError):
        build_payload("start_session", [], "dr", str(tmp_path / "absent.json"))


# --- main(): usage errors (no broker needed) ------------------------------------------


def test_loose_words_on_advance_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--port", "1", "--room", "r", "--by", "dr", "advance", "now"]) == EXIT_USAGE
    assert "advance takes key=value" in capsys.readouterr().err


def test_unknown_verb_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--port", "1", "--room", "r", "--by", "dr", "fly"]) == EXIT_USAGE
    assert "unknown verb 'fly'" in capsys.readouterr().err


# --- main() against the real broker and a real roomd --simulate -----------------------------


def ctl(port: int, room: str, *args: str) -> list[str]:
    return ["--port", str(port), "--room", room, "--by", "dr-ctl", "--timeout", "10", *args]


def test_ok_reply_exits_0_and_prints_the_result(
    make_room: MakeRoom, broker: Broker, capsys: pytest.CaptureFixture[str]
) -> None:
    room, probe = make_room()
    assert main(ctl(broker.port, room.room_id, "status")) == EXIT_OK
    state = json.loads(capsys.readouterr().out)
    assert state["room_id"] == room.room_id and state["phase"] == "idle"

    assert main(ctl(broker.port, room.room_id, "lights", "level=0.35", "fade_s=0")) == EXIT_OK
    assert json.loads(capsys.readouterr().out) == {"scene": "manual", "level": 0.35}
    changed = probe.wait_event("lighting_changed", level=0.35)
    assert changed["data"]["by"] == "dr-ctl"


def test_error_reply_exits_1_and_prints_code_and_message(
    make_room: MakeRoom, broker: Broker, capsys: pytest.CaptureFixture[str]
) -> None:
    room, probe = make_room()
    assert main(ctl(broker.port, room.room_id, "advance")) == EXIT_ERROR
    err = capsys.readouterr().err
    assert err.startswith("invalid_state: ")
    assert "idle" in err
    rejected = probe.wait_event("command_rejected", verb="advance")
    assert rejected["data"]["code"] == "invalid_state"


def test_invalid_payload_reply_exits_1(
    make_room: MakeRoom, broker: Broker, capsys: pytest.CaptureFixture[str]
) -> None:
    room, _ = make_room()
    assert main(ctl(broker.port, room.room_id, "lights", "level=7")) == EXIT_ERROR
    err = capsys.readouterr().err
    assert err.startswith("invalid_payload: ") and "level" in err


def test_no_reply_within_timeout_exits_3(
    make_room: MakeRoom, broker: Broker, capsys: pytest.CaptureFixture[str]
) -> None:
    make_room()  # a room is served, just not this one
    started = time.monotonic()
    argv = ["--port", str(broker.port), "--room", "room-nobody", "--by", "dr", "--timeout", "1"]
    assert main([*argv, "status"]) == EXIT_TIMEOUT
    elapsed = time.monotonic() - started
    assert 0.9 <= elapsed < 6
    assert "no reply from room-nobody" in capsys.readouterr().err


def test_no_broker_exits_3(capsys: pytest.CaptureFixture[str]) -> None:
    from tests.support.broker import free_port

    argv = ["--port", str(free_port()), "--room", "r", "--by", "dr", "--timeout", "1"]
    started = time.monotonic()
    assert main([*argv, "status"]) == EXIT_TIMEOUT
    assert time.monotonic() - started < 6


def test_positional_confirm_and_inline_plan_drive_the_real_room(
    make_room: MakeRoom, broker: Broker, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    room, probe = make_room()
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps(PLAN))
    assert main(ctl(broker.port, room.room_id, "--plan", str(plan), "start_session")) == EXIT_OK
    probe.wait_event("session_started")
    assert main(ctl(broker.port, room.room_id, "confirm", "readiness")) == EXIT_OK
    confirmed = probe.wait_event("confirmed", item="readiness")
    assert confirmed["data"]["by"] == "dr-ctl"
    capsys.readouterr()
    assert main(ctl(broker.port, room.room_id, "status")) == EXIT_OK
    state = json.loads(capsys.readouterr().out)
    assert state["session_id"] == "s-ctl-1" and state["patient_ref"] == "P-CTL-1"
    assert state["gates"]["readiness"] is True and state["gates"]["consent"] is False


def test_plan_file_is_published_retained(
    make_room: MakeRoom, broker: Broker, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    room, probe = make_room()
    f = tmp_path / "plan.json"
    body = json.dumps(PLAN, indent=1).encode()
    f.write_bytes(body)
    assert main(ctl(broker.port, room.room_id, "plan", str(f))) == EXIT_OK
    assert f"{room.root}/plan" in capsys.readouterr().out
    configured = probe.wait_event("session_configured")
    assert configured["session_id"] == "s-ctl-1"
    late = Probe(broker.port, room.root, subscribe="plan")
    try:
        late.wait_for(lambda: late.messages, 10, "retained plan")
        topic, payload, retained, _ = late.messages[0]
        assert (topic, payload, retained) == (f"{room.root}/plan", body, True)
    finally:
        late.close()


def test_plan_needs_exactly_one_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--port", "1", "--room", "r", "--by", "dr", "plan"]) == EXIT_USAGE
    assert "plan takes one argument" in capsys.readouterr().err


def test_events_since_prints_every_event_once_across_pages(
    make_room: MakeRoom, broker: Broker, capsys: pytest.CaptureFixture[str]
) -> None:
    room, probe = make_room()
    by = "dr-" + "x" * 61  # 64 characters: bigger events, fewer commands for > 64 KiB
    n = 400
    rids = []
    for i in range(n):
        rid = f"bulk-{i}"
        rids.append(rid)
        body = {"request_id": rid, "by": by, "level": round(i / n, 4), "fade_s": 0}
        probe.publish("cmd/lights", json.dumps(body).encode())
    assert probe.reply(rids[-1], timeout=60)["ok"]
    probe.wait_for(
        lambda: len([e for e in probe.events() if e["type"] == "lighting_changed"]) >= n,
        30,
        f"{n} lighting_changed events",
    )
    journal_bytes = sum(len(json.dumps(e, separators=(",", ":"))) for e in probe.events())
    assert journal_bytes > 64 * 1024

    assert main(ctl(broker.port, room.room_id, "events", "--since", "1")) == EXIT_OK
    lines = capsys.readouterr().out.splitlines()
    events = [json.loads(ln) for ln in lines]
    seqs = [e["seq"] for e in events]
    assert seqs == list(range(1, len(seqs) + 1))  # contiguous, ordered, each once
    assert seqs[-1] >= max(e["seq"] for e in probe.events())
    levels = [e["data"]["level"] for e in events if e["type"] == "lighting_changed"]
    assert len(levels) == n

    # roomctl had to ask more than once: every request is seen on cmd/events
    def asked() -> list[tuple[str, bytes, bool, Any]]:
        return [m for m in probe.messages if m[0] == f"{room.root}/cmd/events"]

    def pages() -> list[bytes]:
        return [
            m[1] for m in probe.messages if m[0] == f"{room.root}/replies" and b'"last_seq"' in m[1]
        ]

    probe.wait_for(lambda: len(asked()) >= 2 and len(pages()) >= 2, 10, "two events pages")
    assert all(len(page) <= 64 * 1024 for page in pages())  # each reply within the contract
    since = [json.loads(m[1])["since_seq"] for m in asked()]
    assert since[0] == 1 and since == sorted(since) and len(set(since)) == len(since)


def test_events_since_n_starts_at_n(
    make_room: MakeRoom, broker: Broker, capsys: pytest.CaptureFixture[str]
) -> None:
    room, probe = make_room()
    for i in range(5):
        probe.ok("lights", level=i / 10, fade_s=0)
    last = probe.ok("events", since_seq=1)["last_seq"]
    assert last >= 5
    assert main(ctl(broker.port, room.room_id, "events", "--since", "3")) == EXIT_OK
    seqs = [json.loads(ln)["seq"] for ln in capsys.readouterr().out.splitlines()]
    assert seqs == list(range(3, last + 1))


def test_watch_for_prints_the_room_screen(
    make_room: MakeRoom, broker: Broker, capsys: pytest.CaptureFixture[str]
) -> None:
    room, probe = make_room()
    probe.ok("lights", level=0.3, fade_s=0)
    probe.wait_for(
        lambda: any(
            json.loads(p).get("lighting", {}).get("level") == 0.3
            for t, p, _, _ in probe.messages
            if t == f"{room.root}/state"
        ),
        15,
        "state with lights 0.3",
    )
    result: list[int] = []
    watcher = threading.Thread(
        target=lambda: result.append(main(ctl(broker.port, room.room_id, "--for", "4", "watch")))
    )
    watcher.start()
    time.sleep(1.5)  # the watcher connects and subscribes meanwhile
    probe.ok("lights", level=0.6, fade_s=0)
    watcher.join(timeout=20)
    assert not watcher.is_alive()
    assert result == [EXIT_OK]
    out = capsys.readouterr().out
    assert f"room {room.room_id}  [ONLINE]" in out
    assert "phase     idle" in out
    assert "lighting_changed" in out  # the live event, printed as it came (non-tty)
    screen = out[out.rindex(f"room {room.room_id}") :]
    lights = [ln for ln in screen.splitlines() if ln.startswith("lights")]
    assert lights == ["lights    manual 0.6"]
    assert "\x1b[" not in out  # no terminal escapes when stdout is not a tty


def test_watch_without_broker_exits_3(capsys: pytest.CaptureFixture[str]) -> None:
    from tests.support.broker import free_port

    argv = ["--port", str(free_port()), "--room", "r", "--by", "dr", "--timeout", "1"]
    assert main([*argv, "--for", "1", "watch"]) == EXIT_TIMEOUT
    assert "cannot reach the broker" in capsys.readouterr().err


def test_roomctl_leaves_no_client_behind(make_room: MakeRoom, broker: Broker) -> None:
    room, _ = make_room()
    before = threading.active_count()
    for _ in range(3):
        assert main(ctl(broker.port, room.room_id, "status")) == EXIT_OK
    assert threading.active_count() <= before  # each run stopped its paho thread


def test_by_defaults_to_the_broker_user(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ROOMCTL_BY", raising=False)
    monkeypatch.setenv("USER", "shell-user")
    assert parse_args(["--room", "r", "--user", "dr-kim", "status"]).by == "dr-kim"
    assert parse_args(["--room", "r", "status"]).by == "shell-user"
    assert parse_args(["--room", "r", "--user", "dr-kim", "--by", "x", "status"]).by == "x"
