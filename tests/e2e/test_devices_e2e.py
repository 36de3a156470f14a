"""Alarms from the simulated patient and calls from the mock call button, end to end."""

from __future__ import annotations

import json

from tests.e2e.test_session_e2e import SHORT_PLAN, through_the_gate
from tests.support.probe import Probe


def retained_alarms(probe: Probe, root: str) -> list[dict]:
    raw = probe.retained.get(f"{root}/alarms")
    return json.loads(raw)["alarms"] if raw else []


def test_desaturation_alarm_reaches_the_clinic_is_acked_and_clears(make_room) -> None:
    room, probe = make_room(time_scale=60)
    through_the_gate(probe, {**SHORT_PLAN, "protocol": {"infusion_minutes": 40}})
    probe.publish("sim/incident", json.dumps({"kind": "desaturation"}).encode())
    raised = probe.wait_event("alarm_raised", timeout=20)
    while raised["data"]["alarm"]["code"] != "spo2_critical":
        raised = probe.wait_for(
            lambda: next(
                (
                    e
                    for e in probe.events()
                    if e["type"] == "alarm_raised" and e["data"]["alarm"]["code"] == "spo2_critical"
                ),
                None,
            ),
            20,
            "spo2_critical",
        )
    alarm = raised["data"]["alarm"]
    assert alarm["priority"] == "high" and alarm["kind"] == "physiological"
    assert alarm["value"] < 88 and alarm["limit"] == 88
    probe.wait_for(
        lambda: any(a["id"] == alarm["id"] for a in retained_alarms(probe, room.root)),
        10,
        "alarm on the retained alarms topic",
    )
    assert probe.ok("alarm_ack", alarm_id=alarm["id"]) == {"alarm_id": alarm["id"]}
    probe.wait_event("alarm_acknowledged")
    probe.publish("sim/incident", json.dumps({"kind": "recover"}).encode())
    cleared = probe.wait_for(
        lambda: next(
            (
                e
                for e in probe.events()
                if e["type"] == "alarm_cleared" and e["data"]["alarm"]["id"] == alarm["id"]
            ),
            None,
        ),
        20,
        "cleared",
    )
    assert cleared["seq"] > raised["seq"]
    probe.wait_for(
        lambda: all(a["id"] != alarm["id"] for a in retained_alarms(probe, room.root)),
        10,
        "alarm gone from the retained list",
    )


def test_unplugged_oximeter_is_a_technical_alarm_until_replugged(make_room) -> None:
    room, probe = make_room(time_scale=60)
    through_the_gate(probe, {**SHORT_PLAN, "protocol": {"infusion_minutes": 40}})
    probe.publish("sim/incident", json.dumps({"kind": "unplug"}).encode())
    lost = probe.wait_event("device_lost", timeout=20, device="oximeter")
    technical = probe.wait_for(
        lambda: next(
            (
                e["data"]["alarm"]
                for e in probe.events()
                if e["type"] == "alarm_raised" and e["data"]["alarm"]["kind"] == "technical"
            ),
            None,
        ),
        20,
        "technical alarm",
    )
    assert technical["code"] in ("oximeter_lost", "vitals_stale")
    probe.publish("sim/incident", json.dumps({"kind": "recover"}).encode())
    back = probe.wait_for(
        lambda: next(
            (
                e
                for e in probe.events()
                if e["type"] == "device_connected"
                and e["data"]["device"] == "oximeter"
                and e["seq"] > lost["seq"]
            ),
            None,
        ),
        20,
        "the oximeter back after the replug",
    )
    assert back["data"]["status"] == "ok"
    probe.wait_for(
        lambda: (
            not [
                a
                for a in retained_alarms(probe, room.root)
                if a["code"] in ("oximeter_lost", "vitals_stale")
            ]
        ),
        20,
        "technical alarms cleared after the replug",
    )


def test_call_button_press_ack_and_clear(make_room) -> None:
    room, probe = make_room(time_scale=1)
    probe.publish("sim/press_call", b"")
    placed = probe.wait_event("call_placed", timeout=10)
    state = probe.wait_for(
        lambda: (
            (s := json.loads(probe.retained[f"{room.root}/state"]))["call"]["state"] == "placed"
            and s
        ),
        15,
        "state shows the call",
    )
    assert state["call"]["state"] == "placed"
    probe.publish("sim/press_call", b"")  # pressing again while open: no second call
    assert probe.ok("call_ack") == {"call": "acknowledged"}
    ack = probe.wait_event("call_acknowledged")
    assert ack["data"]["by"] == "dr-test"
    assert [e["type"] for e in probe.events()].count("call_placed") == 1
    probe.publish("sim/hold_call", json.dumps({"seconds": 2.5}).encode())
    cleared = probe.wait_event("call_cleared", timeout=15)
    assert cleared["data"]["where"] == "bedside"
    assert placed["seq"] < ack["seq"] < cleared["seq"]
