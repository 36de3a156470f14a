"""A room wired to fakes and a fake clock, driven synchronously (no threads, no sleeps)."""

from __future__ import annotations

import itertools
import json
from collections import deque
from pathlib import Path
from typing import Any

from audio.fake import FakeAudioPlayer, FakeLibrary
from controller.clock import FakeClock
from controller.config import Config, parse_config
from controller.event_data import check_event_data
from controller.events import CommandReceived, InboxMessage, LinkUp, PlanReceived, VitalsArrived
from controller.journal import Journal
from controller.models import Reply, SessionPlan, VitalsSample
from controller.room import Room
from hw.fake import FakeAnnunciator, FakeCallButton, FakeLighting, FakeNibp
from mqtt_bridge.fake import FakeLink

ALL_OK = {"oximeter": "ok", "nibp": "ok", "call_button": "ok", "lighting": "ok", "audio": "ok"}


def make_config(**sections: Any) -> Config:
    """A config for room ``room-1`` with ``sections`` over the defaults."""
    return parse_config({"room": {"id": "room-1"}, **sections})


def plan_dict(**overrides: Any) -> dict[str, Any]:
    """A valid session plan (music mode, three tracks)."""
    plan: dict[str, Any] = {
        "session_id": "s-001",
        "patient_ref": "P-7F3A",
        "session_number": 1,
        "music_mode": "music",
        "playlist": ["a.ogg", "b.ogg", "c.ogg"],
        "guidance": "none",
    }
    plan.update(overrides)
    return plan


class Harness:
    """One room on fakes; every inbox message is handled before a call returns."""

    def __init__(
        self,
        data_dir: Path,
        config: Config | None = None,
        *,
        clock: FakeClock | None = None,
        devices: dict[str, str] | None = None,
        online: bool = True,
    ) -> None:
        self.data_dir = data_dir
        self.config = config or make_config()
        self.clock = clock or FakeClock()
        self.inbox: deque[InboxMessage] = deque()
        emit = self.inbox.append
        self.link = FakeLink(emit)
        self.lighting = FakeLighting()
        self.button = FakeCallButton(emit)
        self.buzzer = FakeAnnunciator()
        self.nibp = FakeNibp(emit, self.clock)
        self.audio = FakeAudioPlayer(emit)
        self.library = FakeLibrary()
        self.journal = Journal(data_dir / "journal.sqlite", settings=self.config.journal)
        self.room = Room(
            self.config,
            clock=self.clock,
            journal=self.journal,
            link=self.link,
            lighting=self.lighting,
            call_lamp=self.button,
            annunciator=self.buzzer,
            nibp=self.nibp,
            audio=self.audio,
            library=self.library,
            devices=dict(ALL_OK if devices is None else devices),
        )
        # Every event any test makes is checked against its declared model (event_data.py).
        self.room.add_listener(lambda event: check_event_data(event.type, event.data))
        # Tests here send bursts of bad commands within one fake second and read every reply;
        # the reply budget that a flood meets is tested on the desk (test_commands.py).
        self.room.commands.answered_refusals = 10**9
        self._ids = itertools.count(1)
        self.room.resume()
        if online:
            self.deliver(LinkUp())

    # --- driving ----------------------------------------------------------------------

    def deliver(self, message: InboxMessage) -> None:
        """Put a message on the inbox and let the room handle everything that follows."""
        self.inbox.append(message)
        self.drain()

    def drain(self) -> None:
        """Handle every queued message."""
        while self.inbox:
            self.room.handle(self.inbox.popleft())

    def send(self, verb: str, payload: bytes, **kw: Any) -> Reply:
        """Send raw command bytes; return the reply."""
        before = len(self.link.replies)
        self.deliver(CommandReceived(verb, payload, **kw))
        assert len(self.link.replies) == before + 1, "every command gets exactly one reply"
        return self.link.replies[-1][0]

    def cmd(self, verb: str, by: str = "dr-lee", **args: Any) -> Reply:
        """Send a well-formed command; return the reply."""
        body = {"request_id": f"r{next(self._ids)}", "by": by, **args}
        return self.send(verb, json.dumps(body).encode())

    def ok(self, verb: str, **args: Any) -> dict[str, Any]:
        """Send a command that must succeed; return its result."""
        reply = self.cmd(verb, **args)
        assert reply.ok, f"{verb} failed: {reply.error}"
        return reply.result or {}

    def vitals(self, spo2: int | None = 97, hr: int | None = 74, quality: str = "ok") -> None:
        """The oximeter reports one sample now."""
        sample = VitalsSample(
            ts=self.clock.now(),
            spo2=spo2,
            hr=hr,
            pi=2.1,
            source="fake",
            quality=quality,  # type: ignore[arg-type]
        )
        self.deliver(VitalsArrived(sample))

    def run(
        self, seconds: float, *, step: float = 5.0, spo2: int | None = 97, hr: int = 74
    ) -> None:
        """Let ``seconds`` pass, the oximeter reporting every ``step`` seconds."""
        left = seconds
        while left > 1e-9:
            dt = min(step, left)
            self.clock.advance(dt)
            left -= dt
            if spo2 is not None:
                self.vitals(spo2, hr)
            self.room.tick()
            self.drain()

    def plan(self, **overrides: Any) -> None:
        """Publish a retained plan."""
        self.deliver(PlanReceived(json.dumps(plan_dict(**overrides)).encode()))

    # --- whole stretches of a session -------------------------------------------------

    def to_pre_infusion(self, **plan: Any) -> None:
        """Plan, start and advance to pre_infusion with readiness, consent and a baseline."""
        self.plan(**plan)
        self.ok("start_session")
        for _ in range(3):
            self.ok("advance")
        self.ok("confirm", item="readiness")
        self.ok("confirm", item="consent")
        self.vitals()
        self.ok("nibp_now")
        self.nibp.finish(124, 79, 72)
        self.drain()

    def to_infusion_running(self, **plan: Any) -> None:
        """Through the safety gate and start the infusion."""
        self.to_pre_infusion(**plan)
        self.ok("advance")
        self.ok("confirm", item="iv_line")
        self.ok("start_infusion")

    # --- looking ----------------------------------------------------------------------

    def ready_to_leave(self) -> None:
        """Confirm what discharge needs besides the vitals (psych_ready, reminders_given)."""
        self.ok("confirm", item="psych_ready")
        self.ok("confirm", item="reminders_given")

    def types(self) -> list[str]:
        """Event types in the journal, in order."""
        return [e.type for e in self.journal.events_since(1, 100_000)]

    def events(self, type_: str) -> list[dict[str, Any]]:
        """The data of every journal event of one type."""
        return [e.data for e in self.journal.events_since(1, 100_000) if e.type == type_]

    def close(self) -> None:
        """Close the journal."""
        self.journal.close()


__all__ = ["Harness", "SessionPlan", "make_config", "plan_dict"]
