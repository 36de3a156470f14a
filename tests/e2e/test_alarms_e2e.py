"""Issue 13's alarm items end to end: the real daemon, a real broker, a monitor on a real pty.

The oximeter is a Masimo ASCII 1 line stream the test writes itself on a pseudo-terminal that
``[hardware.oximeter] port`` names, so each test decides what the patient reads; blood
pressure is entered by hand (``record_vitals``, no NIBP module). Session clocks run faster
(``--time-scale``); every wait is bounded.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
import tty
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.support.broker import Broker
from tests.support.daemon import RoomProcess
from tests.support.probe import Probe

SENSOR_OFF = 0x020
"""Masimo's exception bit for a sensor off the patient."""
PLAN: dict[str, Any] = {
    "session_id": "alarms-1",
    "patient_ref": "P-ALARM",
    "session_number": 2,
    "music_mode": "music",
    "playlist": ["one.ogg", "two.ogg"],
}


def masimo_line(spo2: int | None, hr: int | None, exc: int = 0) -> bytes:
    """One ASCII 1 line as a Rad-8 sends it (dashes for a value it does not have)."""
    stamp = datetime.now(UTC).strftime("%m/%d/%y %H:%M:%S")
    s = "---" if spo2 is None else f"{spo2:03d}"
    h = "---" if hr is None else f"{hr:03d}"
    return (
        f"{stamp} SN=0000084590 SPO2={s}% BPM={h} PI=03.60% SPCO=--.-% SPMET=--.-% "
        f"DESAT=-- PIDELTA=+-- ALARM=0000 EXC={exc:06X}\r\n"
    ).encode()


class Monitor:
    """A bedside monitor on a pty: repeats the reading it is shown every ``period_s``."""

    def __init__(self, period_s: float = 0.05) -> None:
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        os.set_blocking(self.master, False)  # nobody reads before the daemon opens the port
        self.port = os.ttyname(self.slave)
        self._period_s = period_s
        self._reading: tuple[int | None, int | None, int] = (97, 74, 0)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def show(self, spo2: int | None, hr: int | None, exc: int = 0) -> None:
        """From now on the monitor reads this."""
        with self._lock:
            self._reading = (spo2, hr, exc)
            self._write(masimo_line(spo2, hr, exc))

    def once(self, spo2: int | None, hr: int | None, exc: int = 0) -> None:
        """One line of this, then the reading it showed before."""
        with self._lock:
            self._write(masimo_line(spo2, hr, exc))

    def _run(self) -> None:
        while not self._stop.wait(self._period_s):
            with self._lock:
                self._write(masimo_line(*self._reading))

    def _write(self, line: bytes) -> None:
        with contextlib.suppress(BlockingIOError):
            os.write(self.master, line)

    def close(self) -> None:
        """Stop sending and close the pty."""
        self._stop.set()
        self._thread.join(timeout=5)
        os.close(self.master)
        os.close(self.slave)


@pytest.fixture
def monitor() -> Iterator[Monitor]:
    m = Monitor()
    yield m
    m.close()


RoomOnMonitor = Callable[..., tuple[Probe, Monitor]]


@pytest.fixture
def room_on(monitor: Monitor, make_room: Callable[..., tuple[RoomProcess, Probe]]) -> RoomOnMonitor:
    """A simulated room whose oximeter is ``monitor`` and whose blood pressure is by hand."""

    def make(time_scale: float, extra_toml: str = "") -> tuple[Probe, Monitor]:
        toml = (
            f'[hardware.oximeter]\ndriver = "masimo_ascii"\nport = "{monitor.port}"\n'
            f'[hardware.nibp]\ndriver = "manual"\n{extra_toml}'
        )
        _, probe = make_room(time_scale=time_scale, extra_toml=toml)
        probe.wait_for(lambda: probe.payloads("vitals"), 20, "the monitor's samples")
        return probe, monitor

    return make


# --- looking and acting -------------------------------------------------------------------------


def start(probe: Probe, plan: dict[str, Any]) -> None:
    """Publish the plan and start its session."""
    probe.publish("plan", json.dumps(plan).encode(), retain=True)
    probe.wait_event("session_configured")
    assert probe.ok("start_session") == {"session_id": plan["session_id"]}


def reads(probe: Probe, monitor: Monitor, spo2: int | None, hr: int | None, exc: int = 0) -> None:
    """The monitor reads this from now on, and the room has had it."""
    monitor.show(spo2, hr, exc)
    probe.wait_for(
        lambda: any(
            (v.get("spo2"), v.get("hr")) == (spo2, hr) for v in probe.payloads("vitals")[-3:]
        ),
        10,
        f"the room reading SpO2 {spo2} HR {hr}",
    )


def alarm_events(probe: Probe, type_: str, code: str) -> list[dict[str, Any]]:
    """Every ``type_`` event of alarm ``code`` so far."""
    return [e for e in probe.events() if e["type"] == type_ and e["data"]["alarm"]["code"] == code]


def wait_alarm(probe: Probe, type_: str, code: str, timeout: float = 20) -> dict[str, Any]:
    """The first ``type_`` event of alarm ``code`` (bounded wait)."""
    found = probe.wait_for(lambda: alarm_events(probe, type_, code), timeout, f"{type_} {code}")
    return found[0]


def retained(probe: Probe, leaf: str) -> dict[str, Any]:
    """The retained JSON payload on ``leaf`` (empty if none yet)."""
    raw = probe.retained.get(f"{probe.root}/{leaf}")
    return json.loads(raw) if raw else {}


def error_of(reply: dict[str, Any]) -> dict[str, Any]:
    """The error of a reply that must be a refusal."""
    assert not reply["ok"], reply
    return reply["error"]


def to_pre_infusion(probe: Probe, plan: dict[str, Any]) -> None:
    """Start, advance to pre_infusion, confirm, take a blood pressure by hand."""
    start(probe, plan)
    for _ in range(3):
        probe.ok("advance")
    probe.ok("confirm", item="readiness")
    probe.ok("confirm", item="consent")
    probe.ok("record_vitals", sys=124, dia=79)


# --- 1. plan limits -----------------------------------------------------------------------------


def test_a_plans_spo2_low_alarms_at_its_limit_and_the_state_says_plan(
    room_on: RoomOnMonitor,
) -> None:
    probe, monitor = room_on(time_scale=60)
    limit = {"limit": 95, "priority": "medium", "delay_s": 10}
    start(probe, {**PLAN, "alarms": {"spo2_low": limit}})

    def plan_limits() -> dict[str, Any] | None:
        limits = retained(probe, "state").get("alarm_limits", {})
        return limits if limits.get("spo2_low", {}).get("source") == "plan" else None

    limits = probe.wait_for(plan_limits, 10, "the plan's limit in the retained state")
    assert {k: limits["spo2_low"][k] for k in (*limit, "source")} == {**limit, "source": "plan"}
    assert limits["spo2_critical"]["source"] == "config"
    reads(probe, monitor, 93, 74)
    alarm = wait_alarm(probe, "alarm_raised", "spo2_low")["data"]["alarm"]
    assert (alarm["value"], alarm["limit"], alarm["priority"]) == (93, 95, "medium")


# --- 2. acknowledged, then worse ----------------------------------------------------------------


def test_an_acknowledged_desaturation_that_worsens_sounds_again(room_on: RoomOnMonitor) -> None:
    probe, monitor = room_on(time_scale=60)
    start(probe, PLAN)
    reads(probe, monitor, 86, 74)
    alarm = wait_alarm(probe, "alarm_raised", "spo2_critical")["data"]["alarm"]
    probe.ok("alarm_ack", alarm_id=alarm["id"])
    acked = wait_alarm(probe, "alarm_acknowledged", "spo2_critical")["data"]["alarm"]
    assert acked["value_at_ack"] == 86
    reads(probe, monitor, 85, 74)  # worse, but by less than the step: still acknowledged
    reads(probe, monitor, 72, 74)
    again = wait_alarm(probe, "alarm_reactivated", "spo2_critical")
    assert again["data"]["alarm"]["state"] == "active"
    assert again["data"]["alarm"]["value"] == 72
    assert [
        e["data"]["alarm"]["value"]
        for e in alarm_events(probe, "alarm_reactivated", "spo2_critical")
    ] == [72]
    probe.wait_for(
        lambda: any(
            a["id"] == alarm["id"] and a["state"] == "active"
            for a in retained(probe, "alarms").get("alarms", [])
        ),
        10,
        "the re-activated alarm active on the retained list",
    )


# --- 3. latched alarms escalate; the silence budget ---------------------------------------------


def test_a_latched_alarm_escalates_and_silences_run_out(room_on: RoomOnMonitor) -> None:
    probe, _ = room_on(time_scale=60)
    start(probe, PLAN)
    probe.ok("record_vitals", sys=200, dia=90)
    alarm = wait_alarm(probe, "alarm_raised", "sys_high")["data"]["alarm"]
    assert alarm["priority"] == "high"
    probe.ok("record_vitals", sys=130, dia=80)
    wait_alarm(probe, "alarm_latched", "sys_high")
    first = probe.ok("alarm_silence", seconds=120, by="dr-lee")
    second = probe.ok("alarm_silence", seconds=120, by="rn-ames")
    third = probe.ok("alarm_silence", seconds=30, by="dr-lee")
    assert alarm["id"] in first["silenced"] and alarm["id"] in second["silenced"]
    assert alarm["id"] in third["refused"] and alarm["id"] not in third["silenced"]
    silences = alarm_events(probe, "alarm_silenced", "sys_high")
    assert [e["data"]["by"] for e in silences] == ["dr-lee", "rn-ames"]
    assert silences[-1]["data"]["alarm"]["silenced_total_s"] == 240
    # Silenced and latched, it still escalates (escalate_after_s: 60 session seconds).
    escalated = wait_alarm(probe, "alarm_escalated", "sys_high")
    assert escalated["data"]["alarm"]["state"] == "latched"


# --- 4. the sensor-off delay --------------------------------------------------------------------


def test_one_sensor_off_line_does_not_alarm_but_a_sensor_off_lasting_does(
    room_on: RoomOnMonitor,
) -> None:
    probe, monitor = room_on(time_scale=5)  # stale_s 10 session seconds = 2 real seconds
    start(probe, PLAN)
    reads(probe, monitor, 97, 74)
    monitor.once(None, None, SENSOR_OFF)
    probe.wait_for(
        lambda: any(v["quality"] == "sensor_off" for v in probe.payloads("vitals")),
        10,
        "the one sensor-off line",
    )
    time.sleep(3.0)  # 15 session seconds: longer than stale_s
    assert alarm_events(probe, "alarm_raised", "sensor_off") == []
    before = len(probe.payloads("vitals"))
    reads(probe, monitor, None, None, SENSOR_OFF)
    first_off = next(v for v in probe.payloads("vitals")[before:] if v["quality"] == "sensor_off")
    raised = wait_alarm(probe, "alarm_raised", "sensor_off", timeout=20)
    held = datetime.fromisoformat(raised["ts"]) - datetime.fromisoformat(first_off["ts"])
    assert held.total_seconds() >= 10, held


# --- 5. ghost alarms ----------------------------------------------------------------------------


def test_a_condition_pending_at_the_end_of_a_session_is_never_raised(
    room_on: RoomOnMonitor,
) -> None:
    probe, monitor = room_on(time_scale=60)
    limit = {"limit": 92, "priority": "medium", "delay_s": 300}  # 5 real seconds
    start(probe, {**PLAN, "alarms": {"spo2_low": limit}})
    reads(probe, monitor, 90, 74)
    ended = probe.ok("end_session", reason="patient asked to stop")
    assert ended == {"phase": "ended"}
    session_ended = probe.wait_event("session_ended")
    assert all(a["code"] != "spo2_low" for a in session_ended["data"]["open_alarms"])
    time.sleep(6.0)  # 360 session seconds: past the delay
    assert alarm_events(probe, "alarm_raised", "spo2_low") == []
    assert all(a["code"] != "spo2_low" for a in retained(probe, "alarms").get("alarms", []))


# --- 6. gates and reasons -----------------------------------------------------------------------


def test_gates_hold_at_start_infusion_and_discharge(room_on: RoomOnMonitor) -> None:
    probe, _ = room_on(time_scale=200)
    to_pre_infusion(probe, {**PLAN, "alarms": {"stale_s": 300}})
    assert probe.ok("advance") == {"phase": "infusion"}  # the safety gate, met
    probe.ok("confirm", item="iv_line")
    probe.wait_for(
        lambda: probe.ok("status")["phase_elapsed_s"] >= 90 * 60, 90, "90 session minutes"
    )
    late = error_of(probe.command("start_infusion"))
    assert late["code"] == "gate_not_met"
    assert "nibp" in late["details"]["unmet"] and "old" in late["details"]["unmet"]["nibp"]
    probe.ok("record_vitals", sys=124, dia=79)
    probe.ok("start_infusion")
    probe.ok("stop_infusion", reason="planned short session")
    probe.ok("advance", reason="the music stops with the infusion")
    assert probe.ok("advance") == {"phase": "preparation"}
    assert probe.ok("advance") == {"phase": "discharge"}
    probe.ok("confirm", item="psych_ready")
    probe.ok("confirm", item="reminders_given")
    probe.ok("record_vitals", sys=200, dia=90)
    alarm = wait_alarm(probe, "alarm_raised", "sys_high")["data"]["alarm"]
    unmet = error_of(probe.command("discharge"))
    assert unmet["code"] == "gate_not_met" and "alarms" in unmet["details"]["unmet"]
    # An override (``advance`` from discharge carries one) passes the vitals, never the alarm.
    override = {"reason": "patient insists on leaving"}
    refused = error_of(probe.command("advance", override=override))
    assert refused["code"] == "gate_not_met"
    assert refused["details"]["not_overridable"] == ["alarms"]
    assert error_of(probe.command("end_session"))["code"] == "invalid_payload"
    for blank in ("   ", "\u200b", "..."):
        assert error_of(probe.command("end_session", reason=blank))["code"] == "invalid_payload"
    probe.ok("alarm_ack", alarm_id=alarm["id"])
    probe.ok("advance", override=override)
    assert probe.wait_event("session_ended")["data"]["discharged"] is True


# --- 7. no oximeter -----------------------------------------------------------------------------


class RoomOnMockPins(RoomProcess):
    """The daemon on its real adapters (no ``--simulate``, so an unset oximeter port is no
    oximeter), its GPIO on gpiozero's mock pins: the only part that cannot run here."""

    def __init__(self, workdir: Path, port: int, *, room_toml: str, extra_toml: str) -> None:
        workdir.mkdir()
        super().__init__(workdir, port, time_scale=1.0, extra_toml=extra_toml)
        text = self.config.read_text().replace("[room]\n", f"[room]\n{room_toml}", 1)
        self.config.write_text(text)

    def argv(self) -> list[str]:
        """The daemon without ``--simulate``."""
        argv = super().argv()
        at = argv.index("--simulate")
        return argv[:at] + argv[at + 3 :]  # without --simulate --time-scale N

    def env(self) -> dict[str, str]:
        """gpiozero's mock pins."""
        return {
            **super().env(),
            "GPIOZERO_PIN_FACTORY": "mock",
            "GPIOZERO_MOCK_PIN_CLASS": "mockpwmpin",
        }


@pytest.fixture
def room_without_oximeter(tmp_path: Path, broker: Broker) -> Iterator[Callable[..., Probe]]:
    """Start a room with no oximeter (and manual blood pressure); cleaned up."""
    started: list[tuple[RoomProcess, Probe]] = []

    def make(name: str, room_toml: str = "", extra_toml: str = "") -> Probe:
        music = tmp_path / "music"
        music.mkdir(exist_ok=True)
        room = RoomOnMockPins(
            tmp_path / name,
            broker.port,
            room_toml=f"allow_unsynced_clock = true\n{room_toml}",
            extra_toml=f'[audio]\nmusic_dir = "{music}"\n{extra_toml}',
        )
        probe = Probe(broker.port, room.root)
        room.start()
        started.append((room, probe))
        probe.wait_for(
            lambda: probe.retained.get(f"{room.root}/status") == b"online" or not room.alive(),
            20,
            "room online",
        )
        assert room.alive(), room.logtext()
        return probe

    yield make
    for room, probe in started:
        room.stop()
        probe.close()


NO_MUSIC = {**PLAN, "music_mode": "no_music", "playlist": []}


def test_a_room_without_oximeter_needs_manual_monitoring(
    room_without_oximeter: Callable[..., Probe],
) -> None:
    probe = room_without_oximeter("continuous")
    probe.publish("plan", json.dumps(NO_MUSIC).encode(), retain=True)
    probe.wait_event("session_configured")
    refused = error_of(probe.command("start_session"))
    assert refused["code"] == "invalid_state"
    assert "oximeter" in refused["message"] and 'monitoring = "manual"' in refused["message"]


def test_manual_monitoring_prompts_and_alarms_a_missed_entry(
    room_without_oximeter: Callable[..., Probe],
) -> None:
    probe = room_without_oximeter(
        "manual",
        room_toml='monitoring = "manual"\n',
        extra_toml="[protocol]\nmanual_interval_minutes = 0.05\n",  # every 3 s
    )
    probe.publish("plan", json.dumps(NO_MUSIC).encode(), retain=True)
    probe.wait_event("session_configured")
    probe.ok("start_session")
    for _ in range(3):
        probe.ok("advance")
    probe.ok("confirm", item="readiness")
    probe.ok("confirm", item="consent")
    probe.ok("record_vitals", sys=124, dia=79, spo2=97, hr=74)
    probe.ok("advance")
    probe.ok("confirm", item="iv_line")
    probe.ok("start_infusion")
    due = probe.wait_event("vitals_due", timeout=10)
    assert due["data"]["escalated"] is False
    # Nobody enters them: the next prompt finds the last one unanswered.
    missed = probe.wait_event("vitals_due", timeout=10, escalated=True)
    raised = wait_alarm(probe, "alarm_raised", "manual_vitals_overdue", timeout=10)
    assert raised["seq"] > due["seq"] and abs(raised["seq"] - missed["seq"]) <= 2
    assert raised["data"]["alarm"]["kind"] == "technical"
    probe.ok("record_vitals", spo2=96, hr=72)
    wait_alarm(probe, "alarm_cleared", "manual_vitals_overdue", timeout=10)
