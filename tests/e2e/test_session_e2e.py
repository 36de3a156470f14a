"""The real daemon, through a real Mosquitto, driven by a plain paho client."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from tests.support.broker import Broker
from tests.support.daemon import wait_until
from tests.support.probe import Probe, response_props

SHORT_PLAN = {
    "session_id": "e2e-1",
    "patient_ref": "P-E2E",
    "session_number": 3,
    "music_mode": "music",
    "playlist": ["one.ogg", "two.ogg"],
    "protocol": {"infusion_minutes": 12},
}


def through_the_gate(probe: Probe, plan: dict) -> None:
    """Plan, start, advance to infusion with everything confirmed and measured."""
    probe.publish("plan", json.dumps(plan).encode(), retain=True)
    probe.wait_event("session_configured")
    assert probe.ok("start_session") == {"session_id": plan["session_id"]}
    for _ in range(3):
        probe.ok("advance")
    probe.ok("confirm", item="readiness")
    probe.ok("confirm", item="consent")
    probe.ok("nibp_now")
    probe.wait_event("nibp_result")
    assert probe.ok("advance") == {"phase": "infusion"}
    probe.ok("confirm", item="iv_line")
    probe.ok("start_infusion")


def assert_contiguous(events: list[dict]) -> None:
    seqs = sorted({e["seq"] for e in events})
    assert seqs == list(range(seqs[0], seqs[-1] + 1)), "a gap in seq"
    by_seq: dict[int, dict] = {}
    for e in events:
        assert by_seq.setdefault(e["seq"], e) == e, "two different events with one seq"


def test_whole_session_over_mqtt(make_room, broker: Broker) -> None:
    room, probe = make_room(time_scale=60)
    # A late subscriber sees the retained status and state.
    late = Probe(broker.port, room.root)
    late.wait_for(lambda: late.retained.get(f"{room.root}/state"), 15, "retained state")
    assert late.retained[f"{room.root}/status"] == b"online"
    assert json.loads(late.retained[f"{room.root}/state"])["phase"] == "idle"
    late.close()

    through_the_gate(probe, SHORT_PLAN)
    probe.wait_event("music_started")
    # 12 session minutes at 60x: NIBP due at 10 min, infusion complete at 12.
    probe.wait_event("nibp_due", timeout=30)
    probe.wait_event("infusion_completed", timeout=30)
    # Two 9-minute simulated tracks: the playlist ends at 18 min, then debrief is ready.
    probe.wait_event("debrief_ready", timeout=30)
    for phase in ("debrief", "preparation", "discharge"):
        assert probe.ok("advance") == {"phase": phase}
    probe.wait_event("nibp_result", timeout=15)
    wait_until(
        lambda: len([e for e in probe.events() if e["type"] == "nibp_result"]) >= 3,
        15,
        "the discharge blood pressure",
    )
    for item in ("psych_ready", "reminders_given"):
        probe.ok("confirm", item=item)
    assert probe.ok("discharge") == {"phase": "ended"}
    ended = probe.wait_event("session_ended")
    assert ended["data"]["reason"] == "discharged"

    ready = probe.wait_event("report_ready", timeout=20)
    report = Path(ready["data"]["path"])
    assert report.is_file() and "<svg" in report.read_text()
    assert (report.parent / "vitals.csv").is_file()
    assert ready["data"]["summary"]["infusion_completed"] is True
    rebuilt = subprocess.run(
        [
            sys.executable,
            "-m",
            "controller",
            "report",
            "e2e-1",
            "--config",
            str(room.config),
            "--data-dir",
            str(room.data_dir),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert rebuilt.stdout.strip() == str(report)
    # roomctl fetches the session's events over MQTT and builds the record where it runs.
    fetched = subprocess.run(
        [
            sys.executable,
            "-m",
            "mqtt_bridge.roomctl",
            "--port",
            str(broker.port),
            "--by",
            "dr-t",
            "--room",
            "room-e2e",
            "--out",
            str(room.workdir / "fetched"),
            "report",
            "e2e-1",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert fetched.returncode == 0, fetched.stderr
    local = Path(fetched.stdout.strip())
    assert local.is_file() and local.is_relative_to(room.workdir / "fetched")
    summary = json.loads((local.parent / "session.json").read_text())
    ours = json.loads((report.parent / "session.json").read_text())
    assert summary["infusion"] == ours["infusion"]

    events = probe.events()
    assert_contiguous(events)
    types = [e["type"] for e in events]
    for expected in (
        "session_started",
        "gate_checked",
        "infusion_started",
        "track_started",
        "track_ended",
        "music_stopped",
        "discharged",
    ):
        assert expected in types
    phases = [e["data"]["to"] for e in events if e["type"] == "phase_changed"]
    assert phases == [
        "check_in",
        "integration",
        "intentions",
        "pre_infusion",
        "infusion",
        "debrief",
        "preparation",
        "discharge",
        "ended",
    ]
    # Every command got exactly one reply.
    replies = probe.payloads("replies")
    assert len({r["request_id"] for r in replies}) == len(replies)
    state = json.loads(probe.retained[f"{room.root}/state"])
    probe.wait_for(
        lambda: json.loads(probe.retained[f"{room.root}/state"])["phase"] == "ended",
        15,
        "retained state says ended",
    )
    assert state["room_id"] == "room-e2e"


def test_malformed_storm_leaves_the_room_alive_and_unchanged(make_room) -> None:
    room, probe = make_room(time_scale=1)
    probe.publish("plan", json.dumps(SHORT_PLAN).encode(), retain=True)
    probe.wait_event("session_configured")
    probe.ok("start_session")
    probe.ok("advance")
    before = probe.ok("status")
    storm = [
        ("advance", b"not json at all"),
        ("advance", b"[1,2,3]"),
        ("advance", b'"a string"'),
        ("advance", b"\xff\xfe\xfd"),
        ("advance", b"{" + b" " * (1024 * 1024) + b"}"),
        ("launch_rocket", b'{"request_id":"u1","by":"x"}'),
        ("confirm", b'{"request_id":"w1","by":"x","item":42}'),
        ("lights", b'{"request_id":"w2","by":"x","level":"very"}'),
        ("alarm_silence", b'{"request_id":"w3","by":"x","seconds":9999}'),
        ("advance", b'{"request_id":"w4"}'),
        ("events", b'{"request_id":"w5","by":"x","limit":100000}'),
        ("", b"{}"),
        ("a/b", b"{}"),
    ]
    for verb, payload in storm:
        probe.publish(f"cmd/{verb}", payload)
    # The identifiable ones answer with the right code.
    codes = {
        r["request_id"]: r["error"]["code"]
        for r in probe.wait_for(
            lambda: (
                [
                    r
                    for r in probe.payloads("replies")
                    if not r["ok"] and r["request_id"] in {"u1", "w1", "w2", "w3", "w4", "w5"}
                ]
                if len([r for r in probe.payloads("replies") if not r["ok"]]) >= 12
                else None
            ),
            20,
            "replies to the storm",
        )
    }
    assert codes == {
        "u1": "unknown_verb",
        "w1": "invalid_payload",
        "w2": "invalid_payload",
        "w3": "invalid_payload",
        "w4": "invalid_payload",
        "w5": "invalid_payload",
    }
    assert room.alive()
    after = probe.ok("status")
    for key in ("phase", "session_id", "infusion", "call", "alarms", "gates"):
        assert after[key] == before[key], key

    # Refusals are coalesced (issue 15): the first of each second at once, the rest of it as
    # one event per code with a count, journaled when the next second's turn comes.
    def refused() -> int:
        return sum(
            e["data"].get("count", 1) for e in probe.events() if e["type"] == "command_rejected"
        )

    probe.wait_for(lambda: refused() >= 12, 20, "every refusal counted in the journal")
    assert len([e for e in probe.events() if e["type"] == "command_rejected"]) < refused()


def test_response_topic_and_correlation_data(make_room, broker: Broker) -> None:
    _room, probe = make_room(time_scale=1)
    tablet = Probe(broker.port, "tablets/t7")
    payload = json.dumps({"request_id": "rt-1", "by": "dr-x"}).encode()
    probe.publish("cmd/status", payload, props=response_props("tablets/t7/inbox", b"corr-42"))
    tablet.wait_for(lambda: tablet.messages, 10, "reply on the response topic")
    topic, body, _, props = tablet.messages[0]
    assert topic == "tablets/t7/inbox"
    assert json.loads(body)["request_id"] == "rt-1"
    assert props.CorrelationData == b"corr-42"
    tablet.close()


def test_duplicate_request_id_over_mqtt(make_room) -> None:
    _room, probe = make_room(time_scale=1)
    probe.publish("plan", json.dumps(SHORT_PLAN).encode(), retain=True)
    probe.wait_event("session_configured")
    body = json.dumps({"request_id": "dup-1", "by": "dr-x"}).encode()
    probe.publish("cmd/start_session", body)
    first = probe.reply("dup-1")
    probe.publish("cmd/start_session", body)
    probe.wait_for(
        lambda: len([r for r in probe.payloads("replies") if r["request_id"] == "dup-1"]) == 2,
        10,
        "second reply",
    )
    second = [r for r in probe.payloads("replies") if r["request_id"] == "dup-1"][1]
    assert first["ok"] is True
    assert second["error"]["code"] == "duplicate"
    assert second["error"]["details"]["first_reply"] == first
    assert [e["type"] for e in probe.events()].count("session_started") == 1


def test_kill9_mid_infusion_resumes_without_gap(make_room, broker: Broker) -> None:
    room, probe = make_room(time_scale=60)
    through_the_gate(probe, {**SHORT_PLAN, "protocol": {"infusion_minutes": 40}})
    started = probe.wait_event("infusion_started")
    time.sleep(2.0)  # two real seconds = two session minutes into the infusion
    room.kill9()
    crashed_at = time.monotonic()
    probe.wait_for(
        lambda: probe.retained.get(f"{room.root}/status") == b"offline", 20, "last will: offline"
    )
    room.start()
    resumed = probe.wait_event("session_resumed", timeout=20)
    took = time.monotonic() - crashed_at
    assert resumed["data"]["phase"] == "infusion"
    status = probe.ok("status")
    assert status["phase"] == "infusion" and status["infusion"]["running"]
    assert status["session_id"] == "e2e-1"
    # The infusion clock kept running through the crash (scaled: 60 session s per real s).
    elapsed_real = time.monotonic() - (crashed_at - 2.0)
    assert abs(status["infusion"]["elapsed_s"] - elapsed_real * 60) < 60 * 2.5
    assert status["infusion"]["started_at"] == started["ts"]
    # No seq gap: anything the subscriber missed is in the journal.
    seen = probe.events()
    last = probe.ok("events", since_seq=1)["events"]
    assert [e["seq"] for e in last] == list(range(1, len(last) + 1))
    assert_contiguous(seen + last)
    assert resumed["seq"] > max(e["seq"] for e in seen if e["type"] == "infusion_started")
    assert took < 20


def test_sigterm_publishes_offline_and_exits_0(make_room) -> None:
    room, probe = make_room(time_scale=1)
    assert room.terminate() == 0
    probe.wait_for(
        lambda: probe.retained.get(f"{room.root}/status") == b"offline", 10, "offline on clean stop"
    )
    assert "stopped" in room.logtext()


def test_bad_config_exits_2_naming_every_key(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[room]\nid = "Room 3"\n[mqtt]\nprot = 1883\nkeepalive_s = "soon"\n')
    result = subprocess.run(
        [sys.executable, "-m", "controller", "--config", str(bad), "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ},
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 3, result.stderr
    assert all(line.startswith(f"{bad}: ") for line in lines)
    assert any("room.id" in line for line in lines)
    assert any("mqtt.prot: unknown key (did you mean 'port'?)" in line for line in lines)
    assert any("mqtt.keepalive_s" in line for line in lines)


def test_missing_config_exits_2(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "controller", "--config", str(tmp_path / "nope.toml")],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "nope.toml: file not found" in result.stderr
