"""A fake clinic link for the core's tests: keeps what the room published."""

from __future__ import annotations

from collections.abc import Sequence

from controller.events import EventDelivered
from controller.models import Alarm, Event, NibpReading, Reply, RoomState, VitalsSample
from controller.ports import Emit


class FakeLink:
    """Records publications; ``auto_ack`` acknowledges events as the broker would."""

    def __init__(self, emit: Emit | None = None, *, auto_ack: bool = True) -> None:
        self._emit = emit
        self.auto_ack = auto_ack
        self.events: list[Event] = []
        self.states: list[RoomState] = []
        self.vitals: list[VitalsSample] = []
        self.nibp: list[NibpReading] = []
        self.alarms: list[list[Alarm]] = []
        self.replies: list[tuple[Reply, str | None, bytes | None]] = []

    def publish_event(self, event: Event) -> None:
        """Record the event (and acknowledge it)."""
        self.events.append(event)
        if self.auto_ack and self._emit is not None:
            self._emit(EventDelivered(event.seq))

    def publish_state(self, state: RoomState) -> None:
        """Record the state."""
        self.states.append(state)

    def publish_vitals(self, sample: VitalsSample) -> None:
        """Record the sample."""
        self.vitals.append(sample)

    def publish_nibp(self, reading: NibpReading) -> None:
        """Record the reading."""
        self.nibp.append(reading)

    def publish_alarms(self, alarms: Sequence[Alarm]) -> None:
        """Record the alarm list."""
        self.alarms.append(list(alarms))

    def publish_reply(
        self, reply: Reply, response_topic: str | None, correlation_data: bytes | None
    ) -> None:
        """Record the reply."""
        self.replies.append((reply, response_topic, correlation_data))

    def types(self) -> list[str]:
        """The types of the events published, in order."""
        return [e.type for e in self.events]
