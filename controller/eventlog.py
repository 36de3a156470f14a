"""Record keeping: every event journaled first, folded, then published; the outbox; state.

``EventLog.emit`` is the one way a part of the room makes a decision known: the event gets
its ``seq`` and is committed to the journal, folded into every part's state (``fold``), and
only then published. The journal is also the MQTT outbox: after a reconnect what the broker
has not acknowledged is re-sent in seq order, a batch per loop turn, and live events wait
behind it so the order holds.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from typing import Any

from controller.journal import Journal
from controller.models import (
    MAX_PAYLOAD_BYTES,
    Alarm,
    Event,
    EventsQuery,
    NibpReading,
    RoomState,
    VitalsSample,
)
from controller.ports import ClinicLink, Clock

log = logging.getLogger("roomd.core")

RESEND_BATCH = 50
"""Events re-sent per loop turn after a reconnect."""
EVENTS_REPLY_BUDGET = MAX_PAYLOAD_BYTES - 4096
"""The ``events`` reply stops adding events before it would pass the contract's 64 KiB."""

Listener = Callable[[Event], None]


class EventLog:
    """Journal-first emit, the outbox after a reconnect, and the retained state's publishing."""

    def __init__(
        self,
        journal: Journal,
        clock: Clock,
        link: ClinicLink,
        *,
        heartbeat_s: float = 10.0,
        listeners: Sequence[Listener] = (),
    ) -> None:
        self.journal = journal
        self._clock = clock
        self._link = link
        self._heartbeat_s = heartbeat_s
        self._fold: Callable[[Event], None] = lambda event: None
        self._session_id: Callable[[], str | None] = lambda: None
        self.listeners: list[Listener] = list(listeners)
        self.online = False
        self._was_online = False
        self._offline_since: float | None = clock.monotonic()
        self.backlog: int | None = None  # the first seq still to re-send after a reconnect
        self._dirty = True
        self._alarms_dirty = True
        self._last_state_at: float | None = None

    def wire(self, fold: Callable[[Event], None], session_id: Callable[[], str | None]) -> None:
        """Fold every emitted event with ``fold`` (the room's one fold) and stamp it with the
        running session's id (set once, when the room is put together)."""
        self._fold = fold
        self._session_id = session_id

    # --- events ---------------------------------------------------------------------

    def emit(self, type_: str, data: dict[str, Any], *, session_id: str | None = None) -> Event:
        """Journal an event, fold it into the room's state, then publish it."""
        sid = session_id or self._session_id()
        event = self.journal.append(self._clock.now(), sid, type_, data)
        self._fold(event)
        if self.online and self.backlog is None:
            self._link.publish_event(event)  # else it goes out in seq order with the backlog
        self._dirty = True
        if type_.startswith("alarm_"):
            self._alarms_dirty = True
        for listener in self.listeners:
            listener(event)
        return event

    def delivered(self, seq: int) -> None:
        """The broker acknowledged event ``seq``."""
        self.journal.mark_delivered(seq)

    def events_page(self, cmd: EventsQuery) -> dict[str, Any]:
        """The ``events`` verb: journal events after ``since_seq``, within one reply's size."""
        out: list[dict[str, Any]] = []
        size = 0
        for event in self.journal.events_since(cmd.since_seq, cmd.limit):
            item = event.model_dump(mode="json")
            size += len(json.dumps(item, separators=(",", ":"))) + 1
            if size > EVENTS_REPLY_BUDGET and out:
                break  # the caller continues from the last seq it got
            out.append(item)
        return {"events": out, "last_seq": self.journal.last_seq}

    # --- the link -------------------------------------------------------------------

    def link_up(self, alarms: Sequence[Alarm], nibp: NibpReading | None) -> None:
        """The link (re)connected: queue the backlog, republish alarms, note the outage."""
        self.online = True
        queued = self.journal.count_undelivered()
        # What the broker has not acknowledged goes out again, oldest first, a batch per
        # loop turn (send_backlog) so that live events are not held up behind the backlog.
        self.backlog = 1 if queued else None
        self._link.publish_alarms(alarms)
        if nibp is not None:
            self._link.publish_nibp(nibp)
        if self._offline_since is not None and self._was_online:
            offline = self._clock.monotonic() - self._offline_since
            self.emit("link_restored", {"offline_s": round(offline, 3), "queued": queued})
        self._offline_since = None
        self._was_online = True
        self._dirty = True

    def link_down(self) -> None:
        """The link was lost: hold publishing until it returns."""
        self.online = False
        self.backlog = None
        self._offline_since = self._clock.monotonic()
        self._dirty = True

    def send_backlog(self) -> None:
        """Re-send the next batch of unacknowledged events after a reconnect."""
        if self.backlog is None or not self.online:
            return
        # Up to the newest seq, not the one at reconnect: events emitted meanwhile were held
        # back so that everything goes out in seq order.
        batch = self.journal.undelivered_between(self.backlog, self.journal.last_seq, RESEND_BATCH)
        for event in batch:
            self._link.publish_event(event)
        self.backlog = batch[-1].seq + 1 if len(batch) == RESEND_BATCH else None

    def publish_vitals(self, sample: VitalsSample) -> None:
        """Publish an oximeter sample (QoS 0 telemetry: never queued behind the backlog)."""
        if self.online:
            self._link.publish_vitals(sample)

    def publish_nibp(self, reading: NibpReading) -> None:
        """Publish the latest blood pressure (retained)."""
        self._link.publish_nibp(reading)

    # --- the retained state ---------------------------------------------------------

    def changed(self) -> None:
        """Something outside the journal changed the state: publish it on the next tick."""
        self._dirty = True

    def publish_state(
        self, state: Callable[[], RoomState], alarms: Callable[[], Sequence[Alarm]]
    ) -> None:
        """Publish the retained state (and alarms) when changed or on the heartbeat."""
        now = self._clock.monotonic()
        due = self._last_state_at is None or now - self._last_state_at >= self._heartbeat_s
        if not (self._dirty or due):
            return
        if self.online:
            self._link.publish_state(state())
            if self._alarms_dirty:
                self._link.publish_alarms(alarms())
                self._alarms_dirty = False
        self._dirty = False
        self._last_state_at = now

    def next_deadline(self) -> float:
        """When the state must be published again (the heartbeat), or now with a backlog."""
        now = self._clock.monotonic()
        if self.backlog is not None:
            return now  # more of the backlog to send on the next turn
        return (self._last_state_at or now) + self._heartbeat_s
