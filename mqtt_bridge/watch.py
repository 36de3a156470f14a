"""``roomctl watch``: the live room on a terminal, refreshed as messages arrive."""

from __future__ import annotations

import argparse
import json
import queue
import sys
import time
from collections import deque
from typing import Any

from mqtt_bridge.client import Client


class RoomScreen:
    """What ``watch`` knows of the room, and how it prints it."""

    def __init__(self, room: str) -> None:
        self.room = room
        self.status = "unknown"
        self.state: dict[str, Any] = {}
        self.vitals: dict[str, Any] = {}
        self.nibp: dict[str, Any] = {}
        self.alarms: list[dict[str, Any]] = []
        self.events: deque[str] = deque(maxlen=8)

    def update(self, leaf: str, payload: bytes) -> None:
        """Take one message of the room."""
        if leaf == "status":
            self.status = payload.decode(errors="replace")
            return
        try:
            body = json.loads(payload)
        except ValueError:
            return
        if not isinstance(body, dict):
            return  # not a payload of the contract: the screen stays as it was
        if leaf == "state":
            self.state = body
        elif leaf == "vitals":
            self.vitals = body
        elif leaf == "vitals/nibp":
            self.nibp = body
        elif leaf == "alarms":
            self.alarms = body.get("alarms", [])
        elif leaf == "events":
            self.events.append(f"#{body.get('seq')} {body.get('type')} {_brief(body.get('data'))}")

    def render(self) -> str:
        """The screen as text."""
        s = self.state
        inf = s.get("infusion", {})
        music = s.get("music", {})
        light = s.get("lighting", {})
        running = "RUNNING" if inf.get("running") else "done" if inf.get("completed") else "-"
        playing = f"playing {music.get('track')}" if music.get("playing") else "stopped"
        v = self.vitals
        lines = [
            f"room {self.room}  [{self.status.upper()}]  session {s.get('session_id') or '-'}"
            f"  patient {s.get('patient_ref') or '-'}",
            f"phase     {s.get('phase', '?')}  ({_mmss(s.get('phase_elapsed_s', 0))})",
            f"infusion  {running}  {_mmss(inf.get('elapsed_s', 0))} / "
            f"{_mmss(inf.get('target_s', 0))}",
            f"vitals    SpO2 {v.get('spo2', '-')}  HR {v.get('hr', '-')}"
            f"  ({v.get('quality', '-')})   NIBP {self.nibp.get('sys', '-')}/"
            f"{self.nibp.get('dia', '-')}  next due {s.get('next_nibp_due_at') or '-'}",
            f"call      {s.get('call', {}).get('state', '-')}",
            f"music     {music.get('mode') or '-'}  {playing}",
            f"lights    {light.get('scene', '-')} {light.get('level', '')}",
            f"gates     {_gates(s.get('gates', {}))}",
            f"devices   {' '.join(f'{k}={v}' for k, v in s.get('devices', {}).items())}",
            "alarms    "
            + (
                "; ".join(
                    f"[{a['priority']}/{a['state']}] {a['message']} ({a['id']})"
                    for a in self.alarms
                )
                or "none"
            ),
            "events:",
            *(f"  {e}" for e in self.events),
        ]
        return "\n".join(lines)


def _mmss(seconds: float | None) -> str:
    total = int(seconds or 0)
    return f"{total // 60:02d}:{total % 60:02d}"


def _gates(gates: dict[str, bool]) -> str:
    return " ".join(f"{k}={'yes' if v else 'no'}" for k, v in gates.items())


def _brief(data: Any) -> str:
    text = json.dumps(data, separators=(",", ":")) if data else ""
    return text if len(text) < 90 else text[:87] + "..."


def run_watch(ns: argparse.Namespace, client: Client) -> int:
    """Print the live room until interrupted (or for ``--for`` seconds)."""
    root = client.topics.root
    screen = RoomScreen(ns.room)
    tty = sys.stdout.isatty()
    deadline = None if ns.duration is None else time.monotonic() + ns.duration
    with client.session([f"{root}/#"], ns.timeout) as ok:
        if not ok:
            print(f"roomctl: cannot reach the broker at {ns.host}:{ns.port}", file=sys.stderr)
            return 3
        try:
            last_draw = 0.0
            while deadline is None or time.monotonic() < deadline:
                try:
                    msg = client.messages.get(timeout=0.5)
                    leaf = msg.topic[len(root) + 1 :]
                    if leaf.startswith(("cmd/", "sim/", "replies")):
                        continue
                    screen.update(leaf, bytes(msg.payload))
                    if not tty and leaf == "events":
                        print(screen.events[-1], flush=True)
                except queue.Empty:
                    pass
                if tty and time.monotonic() - last_draw > 0.5:
                    sys.stdout.write("\x1b[H\x1b[2J" + screen.render() + "\n")
                    sys.stdout.flush()
                    last_draw = time.monotonic()
        except KeyboardInterrupt:
            pass
    if not tty:
        print(screen.render())
    return 0
