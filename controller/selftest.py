"""``roomd --self-test``: the pre-first-patient checklist, run against the room's own devices.

Part of the composition root with daemon.py: it drives the adapters the daemon built and
reads what they report on the inbox. Prints one line per check:

- ``PASS``: the room observed the outcome itself (a frame parsed, a port answered);
- ``CHECK``: the room did its part and saw no fault, but the outcome is for a person to
  perceive (a light, a sound, a press): the technician must confirm it. A self-test never says
  PASS for what it could not observe;
- ``SKIP``: the check does not apply to this room's configuration;
- ``FAIL``: something is wrong; the exit code is 1.
"""

from __future__ import annotations

import queue
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from controller import events as ev
from controller.config import Config
from controller.inbox import Inbox

Result = tuple[str, str, str]  # (PASS|CHECK|FAIL|SKIP, check, detail)
VERDICTS = ("PASS", "CHECK", "SKIP", "FAIL")
"""Every verdict a check may give, in the order the summary counts them."""


@dataclass
class SelfTest:
    """Runs every check on devices already built (see ``daemon.Devices``)."""

    config: Config
    devices: Any
    inbox: Inbox | queue.SimpleQueue[ev.InboxMessage]
    wait_s: float = 10.0
    _history: list[ev.InboxMessage] = field(default_factory=list)

    def run(self) -> list[Result]:
        """Every check, in the order a technician would walk the room."""
        self.devices.start()
        checks: list[Callable[[], Result]] = [
            self.broker,
            self.lights,
            self.call_button,
            self.buzzer,
            self.oximeter,
            self.nibp,
            self.headphones,
            self.speakers,
        ]
        return [check() for check in checks]

    # --- checks -----------------------------------------------------------------------

    def broker(self) -> Result:
        """The clinic broker answers with these credentials (and certificate, if TLS)."""
        from mqtt_bridge.link import probe_broker

        m = self.config.mqtt
        problem = probe_broker(m, f"roomd-selftest-{self.config.room.id}", self.wait_s)
        if problem is not None:
            return ("FAIL", "broker", f"{m.host}:{m.port} {problem}")
        tls = " over TLS, certificate verified" if m.tls_ca else ""
        return ("PASS", "broker", f"{m.host}:{m.port} accepted the room{tls}")

    def lights(self) -> Result:
        """The lights go full, then off, then back to a calm level, with no fault."""
        for level in (1.0, 0.0, 0.3):
            self.devices.lighting.set_scene("self_test", level, (255, 255, 255), 0.0)
            time.sleep(0.5)
        lost = self._seen(
            lambda m: (
                isinstance(m, ev.DeviceChanged) and m.device == "lighting" and m.status != "ok"
            ),
            0.5,
        )
        if lost is not None:
            return ("FAIL", "lights", f"{lost.status}: {lost.detail}")
        return (
            "CHECK",
            "lights",
            f"no fault reported; look that they went 100 % → 0 % → 30 % "
            f"({self.config.hardware.lighting.driver})",
        )

    def call_button(self) -> Result:
        """The call button's input and lamp are usable (pressing it is the technician's part)."""
        self.devices.call_button.set_lamp("pulse")
        time.sleep(0.5)
        self.devices.call_button.set_lamp("off")
        pin = self.config.hardware.call_button.pin
        # Nobody pressed it: the input is untested until someone does.
        return (
            "CHECK",
            "call button",
            f"GPIO{pin} ready; look that the lamp pulsed, and press the button during a "
            "session to see call_placed",
        )

    def buzzer(self) -> Result:
        """The local annunciator sounds its low-priority pattern briefly."""
        self.devices.buzzer.annunciate("low")
        time.sleep(1.0)
        self.devices.buzzer.annunciate("off")
        pin = self.config.hardware.buzzer.pin
        return ("CHECK", "buzzer", f"GPIO{pin} drove the low pattern for 1 s (listen for it)")

    def oximeter(self) -> Result:
        """The monitor's serial output is seen and parsed."""
        if self.devices.oximeter is None:
            if self.config.room.monitoring == "manual":
                return ("SKIP", "oximeter", 'none; [room] monitoring = "manual" (SpO2/HR by hand)')
            return (
                "FAIL",
                "oximeter",
                "no port configured ([hardware.oximeter] port): sessions need continuous SpO2, "
                'or [room] monitoring = "manual"',
            )
        got = self._seen(lambda m: isinstance(m, ev.VitalsArrived), self.wait_s)
        if got is None:
            return ("FAIL", "oximeter", f"no valid frame within {self.wait_s:g} s")
        s = got.sample
        return ("PASS", "oximeter", f"{s.source}: SpO2 {s.spo2} HR {s.hr} ({s.quality})")

    def nibp(self) -> Result:
        """The NIBP module answers on its port (no cuff inflation)."""
        if self.devices.nibp is None:
            return ("SKIP", "nibp", "manual blood pressure (no commandable module)")
        got = self._seen(
            lambda m: isinstance(m, ev.DeviceChanged) and m.device == "nibp", self.wait_s
        )
        if got is None or got.status != "ok":
            return ("FAIL", "nibp", "the module's port did not open")
        return ("PASS", "nibp", f"port open ({got.detail})")

    def headphones(self) -> Result:
        """The headphones play the reassurance cue."""
        if type(self.devices.audio).__name__ == "SimulatedAudioPlayer":
            return ("SKIP", "headphones", "stand-in player (no music_dir under --simulate)")
        self.devices.audio.cue()
        failed = self._seen(lambda m: isinstance(m, ev.AudioFailed), 3.0)
        if failed is not None:
            return ("FAIL", "headphones", failed.message)
        return ("CHECK", "headphones", "played the reassurance cue (listen for it)")

    def speakers(self) -> Result:
        """The speakers play a few seconds of the first track in the music library."""
        music = Path(self.config.audio.music_dir)
        tracks = sorted(p for p in music.rglob("*") if p.is_file()) if music.is_dir() else []
        if not tracks:
            return ("SKIP", "speakers", f"no track under {music} to play")
        name = str(tracks[0].relative_to(music))
        self.devices.audio.preview(name, 0.0, 3.0)
        failed = self._seen(lambda m: isinstance(m, ev.AudioFailed), 4.0)
        if failed is not None:
            return ("FAIL", "speakers", failed.message)
        return ("CHECK", "speakers", f"played 3 s of {name} (listen for it)")

    # --- helpers ----------------------------------------------------------------------

    def _seen(self, match: Callable[[Any], bool], within_s: float) -> Any:
        # Devices report in any order: keep everything, so one check never eats another's.
        for message in self._history:
            if match(message):
                return message
        deadline = time.monotonic() + within_s
        while (left := deadline - time.monotonic()) > 0:
            try:
                message = self.inbox.get(timeout=left)
            except queue.Empty:
                return None
            self._history.append(message)
            if match(message):
                return message
        return None


def print_results(results: list[Result]) -> int:
    """Print the checklist; exit code 1 when anything failed."""
    for verdict, check, detail in results:
        print(f"{verdict:<5} {check:<12} {detail}")
    counts = {v: sum(1 for r in results if r[0] == v) for v in VERDICTS}
    words = {"PASS": "passed", "CHECK": "to check by eye or ear", "SKIP": "skipped"}
    summary = ", ".join(f"{counts[v]} {w}" for v, w in words.items())
    print(f"self-test: {summary}, {counts['FAIL']} failed")
    return 1 if counts["FAIL"] else 0
