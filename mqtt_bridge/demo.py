"""``make demo``: a whole scripted session at ``--time-scale 60`` against the simulated room.

Starts its own Mosquitto on a free loopback port and ``roomd --simulate``, then plays a
clinician's part over MQTT and prints every event as it happens.
"""

from __future__ import annotations

import json
import queue
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

ROOM = "room-demo"
ROOT = f"clinic/rooms/{ROOM}"
TIME_SCALE = 60
PLAN = {
    "session_id": "demo-" + time.strftime("%Y%m%d-%H%M%S"),
    "patient_ref": "P-DEMO-01",
    "session_number": 1,
    "music_mode": "music",
    "playlist": [
        "demo/1.ogg",
        "demo/2.ogg",
        "demo/3.ogg",
        "demo/4.ogg",
        "demo/5.ogg",
        "demo/6.ogg",
    ],
    "guidance": "breathing",
}


def free_port() -> int:
    """A free loopback port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Demo:
    """The clinician's side of the demo session."""

    def __init__(self, port: int) -> None:
        self.events: list[dict[str, Any]] = []
        self.replies: queue.Queue[dict[str, Any]] = queue.Queue()
        self.inbox: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self.t0 = time.monotonic()
        c = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id="demo-clinician", protocol=mqtt.MQTTv5
        )
        c.on_message = lambda cl, ud, m: self.inbox.put((m.topic, bytes(m.payload)))
        c.connect("127.0.0.1", port)
        c.subscribe(f"{ROOT}/#", qos=1)
        c.loop_start()
        self.client = c

    def pump(self, timeout: float = 0.1) -> None:
        """Take messages that arrived; print events."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                topic, payload = self.inbox.get(timeout=left)
            except queue.Empty:
                return
            leaf = topic[len(ROOT) + 1 :]
            if leaf == "events":
                e = json.loads(payload)
                self.events.append(e)
                data = json.dumps(e["data"], separators=(",", ":"))
                data = data if len(data) < 110 else data[:107] + "..."
                print(
                    f"  [{time.monotonic() - self.t0:6.1f}s] #{e['seq']:<4} {e['type']:<20} {data}"
                )
            elif leaf == "replies":
                self.replies.put(json.loads(payload))

    def cmd(self, verb: str, **args: Any) -> dict[str, Any]:
        """Send a command as dr-demo; wait for and show its reply."""
        rid = uuid.uuid4().hex[:10]
        print(f"> {verb} {json.dumps(args) if args else ''}")
        body = json.dumps({"request_id": rid, "by": "dr-demo", **args})
        self.client.publish(f"{ROOT}/cmd/{verb}", body, qos=1)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            self.pump(0.05)
            try:
                reply = self.replies.get_nowait()
            except queue.Empty:
                continue
            if reply.get("request_id") == rid:
                if not reply["ok"]:
                    print(f"  ! {reply['error']['code']}: {reply['error']['message']}")
                return reply
        raise SystemExit(f"demo: no reply to {verb}")

    def wait(self, type_: str, timeout: float = 60, **match: Any) -> dict[str, Any]:
        """Wait for an event."""
        deadline = time.monotonic() + timeout
        seen = 0
        while time.monotonic() < deadline:
            self.pump(0.1)
            for e in self.events[seen:]:
                if e["type"] == type_ and all(e["data"].get(k) == v for k, v in match.items()):
                    return e
            seen = max(0, len(self.events) - 50)
        raise SystemExit(f"demo: no {type_} within {timeout}s")

    def sim(self, action: str, **args: Any) -> None:
        """Act on the simulated room."""
        print(f"~ sim/{action} {json.dumps(args) if args else ''}")
        self.client.publish(f"{ROOT}/sim/{action}", json.dumps(args), qos=1)


def script(d: Demo) -> str:
    """The session, phase by phase; returns the report's path (or the journal's)."""
    print(f"\n== plan {PLAN['session_id']} (music, 6 tracks), time scale {TIME_SCALE}x")
    d.client.publish(f"{ROOT}/plan", json.dumps(PLAN), qos=1, retain=True)
    d.wait("session_configured")
    d.cmd("start_session")
    print("\n== check-in, integration, intentions (a preview of the music)")
    d.cmd("advance")
    d.cmd("advance")
    d.cmd("music", action="preview", track="demo/3.ogg", duration_s=20)
    d.cmd("advance")
    print("\n== safety gate: first without what it needs, then with it")
    d.cmd("advance")
    d.cmd("confirm", item="readiness")
    d.cmd("confirm", item="consent")
    d.cmd("nibp_now")
    d.wait("nibp_result")
    d.cmd("advance")
    d.cmd("confirm", item="iv_line")
    print("\n== infusion: 40 session minutes, NIBP every 10")
    d.cmd("start_infusion")
    d.wait("nibp_due", timeout=30)
    print("\n== incident: the simulated patient desaturates")
    d.sim("incident", kind="desaturation")
    alarm = d.wait(
        "alarm_raised",
        timeout=30,
    )
    while alarm["data"]["alarm"]["kind"] != "physiological":
        alarm = d.wait("alarm_raised", timeout=30)
    d.cmd("alarm_ack", alarm_id=alarm["data"]["alarm"]["id"])
    d.sim("incident", kind="recover")
    d.wait("alarm_cleared", timeout=30)
    print("\n== the patient presses the call button")
    d.sim("press_call")
    d.wait("call_placed")
    d.cmd("call_ack")
    d.cmd("call_clear")
    d.wait("infusion_completed", timeout=60)
    d.wait("debrief_ready", timeout=60)
    print("\n== debrief, preparation, discharge")
    d.cmd("advance")
    d.cmd("advance")
    d.cmd("advance")
    d.wait("nibp_result", timeout=30)
    d.cmd("confirm", item="psych_ready")
    d.cmd("confirm", item="reminders_given")
    time.sleep(1.0)
    d.pump(0.2)
    d.cmd("discharge")
    d.wait("session_ended")
    try:
        ready = d.wait("report_ready", timeout=10)
        return str(ready["data"]["path"])
    except SystemExit:
        return ""


def main() -> int:
    """Run the demo; exit 0 when the session ended cleanly."""
    if shutil.which("mosquitto") is None:
        print("demo: mosquitto is not installed (make deps)", file=sys.stderr)
        return 1
    work = Path(tempfile.mkdtemp(prefix="roomd-demo-"))
    port = free_port()
    (work / "mosquitto.conf").write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\nuser root\n"
    )
    (work / "roomd.toml").write_text(f'[room]\nid = "{ROOM}"\n[mqtt]\nport = {port}\n')
    broker = subprocess.Popen(
        ["mosquitto", "-c", str(work / "mosquitto.conf")], stderr=subprocess.DEVNULL
    )
    time.sleep(0.3)
    log = open(work / "roomd.log", "wb")  # noqa: SIM115 - lives as long as the daemon
    roomd = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "controller",
            "--simulate",
            "--time-scale",
            str(TIME_SCALE),
            "--config",
            str(work / "roomd.toml"),
            "--data-dir",
            str(work / "data"),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        time.sleep(1.0)
        demo = Demo(port)
        path = script(demo)
        print("\n== session ended")
        print(f"   events: {len(demo.events)}, journal: {work / 'data' / 'journal.sqlite'}")
        print(f"   room log: {work / 'roomd.log'}")
        print(f"   report: {path or '(no report_ready within 10 s)'}")
        return 0
    finally:
        roomd.terminate()
        roomd.wait(timeout=10)
        broker.terminate()
        broker.wait(timeout=10)


if __name__ == "__main__":
    raise SystemExit(main())
