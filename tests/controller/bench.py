"""A bench for testing the room's parts one at a time, without a ``Room``.

The bench holds what every part is built with: a real journal on disk, a ``FakeClock``,
timers on it, the fake clinic link, an ``EventLog`` and the parts that hold the session's
facts (``SessionState``), the devices (``Health``) and the alarms (a real ``AlarmEngine``).
The event log folds each emitted event through ``folds``; a test appends the ``apply`` of the
part it builds, so the part sees its own events as it would in the room.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from controller.alarms import AlarmEngine
from controller.clock import FakeClock
from controller.config import Config
from controller.eventlog import EventLog
from controller.events import InboxMessage
from controller.health import Health
from controller.journal import Journal
from controller.models import Event, Phase, VitalsSample
from controller.state import SessionState
from controller.timers import Timers
from mqtt_bridge.fake import FakeLink
from tests.controller.harness import make_config, plan_dict


class Bench:
    """The collaborators of a part under test, wired as the room wires them."""

    def __init__(
        self,
        data_dir: Path,
        config: Config | None = None,
        *,
        devices: dict[str, str] | None = None,
        online: bool = True,
    ) -> None:
        self.config = config or make_config()
        self.clock = FakeClock()
        self.inbox: list[InboxMessage] = []  # what the fakes report back (not handled here)
        self.journal = Journal(data_dir / "journal.sqlite")
        self.link = FakeLink(self.inbox.append)
        self.log = EventLog(self.journal, self.clock, self.link)
        self.timers = Timers(self.clock)
        self.alarms = AlarmEngine(self.clock, self.config.alarms, self.log.emit)
        self.facts = SessionState(self.config, self.clock)
        self.health = Health(self.log, self.alarms, dict(devices or {}))
        self.folds: list[Callable[[Event], None]] = [
            self.facts.apply,
            self.health.apply,
            self.alarms.apply,
        ]
        self.log.wire(self.fold, lambda: self.facts.session_id)
        if online:
            self.log.link_up([], None)

    def fold(self, event: Event) -> None:
        """The bench's one fold: every registered part's ``apply``, in order."""
        for fold in self.folds:
            fold(event)

    def fire(self, handlers: Mapping[str, Callable[[], None]]) -> list[str]:
        """Fire the due timers one at a time, as the room's tick does; return their names."""
        fired = []
        while (name := self.timers.pop_next_due()) is not None:
            handlers[name]()
            fired.append(name)
        return fired

    # --- driving the session's facts through events, as the session machine would ---------

    def start_session(self, *, tracks: list[str] | None = None, **plan: Any) -> None:
        """Journal ``session_started`` for a plan and enter ``check_in``."""
        p = plan_dict(**plan)
        data = {"plan": p, "tracks": p["playlist"] if tracks is None else tracks, "by": "dr-lee"}
        self.log.emit("session_started", data, session_id=p["session_id"])
        self.enter("check_in")

    def enter(self, phase: Phase) -> None:
        """Journal a ``phase_changed`` to ``phase``."""
        self.log.emit("phase_changed", {"from": self.facts.phase, "to": phase, "by": "dr-lee"})

    def sample(
        self, spo2: int | None = 97, hr: int | None = 74, quality: str = "ok"
    ) -> VitalsSample:
        """An oximeter sample taken now."""
        return VitalsSample(
            ts=self.clock.now(),
            spo2=spo2,
            hr=hr,
            source="fake",
            quality=quality,
        )

    # --- looking ----------------------------------------------------------------------

    def all_events(self) -> list[Event]:
        """Every journal event, in order."""
        return self.journal.events_since(1, 100_000)

    def types(self) -> list[str]:
        """Event types in the journal, in order."""
        return [e.type for e in self.all_events()]

    def events(self, type_: str) -> list[dict[str, Any]]:
        """The data of every journal event of one type."""
        return [e.data for e in self.all_events() if e.type == type_]

    def codes(self) -> list[str]:
        """The codes of the current alarms."""
        return [a.code for a in self.alarms.current()]

    def event(self, type_: str, data: dict[str, Any], ts: datetime | None = None) -> Event:
        """An event as the journal would hand it back (not journaled; for folds alone)."""
        return Event(
            seq=self.journal.last_seq + 1,
            ts=ts or self.clock.now(),
            session_id=self.facts.session_id,
            type=type_,
            data=data,
        )

    def close(self) -> None:
        """Close the journal."""
        self.journal.close()
