"""Record keeping: every event journaled first, folded, then published; the outbox; state.

``EventLog.emit`` is the one way a part of the room makes a decision known: the event gets
its ``seq`` and is committed to the journal, folded into every part's state (``fold``), and
only then published. The journal is also the MQTT outbox: after a reconnect what the broker
has not acknowledged is re-sent in seq order, a batch per loop turn, and live events wait
behind it so the order holds.

The one exception to journal first: while the disk refuses writes, an event is folded (the
room acts on it) and held in a bounded queue, then journaled, in order and with its seq given
at commit, once the disk takes it again (docs/ARCHITECTURE.md, "Storage").
"""

from __future__ import annotations

import json
import logging
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from controller.fit import fit_event
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
from controller.storage import StorageError, StorageFull, StorageReadOnly

log = logging.getLogger("roomd.core")

RESEND_BATCH = 50
"""Events re-sent per loop turn after a reconnect."""
EVENTS_REPLY_BUDGET = MAX_PAYLOAD_BYTES - 4096
"""The ``events`` reply stops adding events before it would pass the contract's 64 KiB."""

QUEUE_MAX = 10_000
"""Events held while the disk refuses them; beyond, an event still acts on the room but is
never journaled, and is counted (``StorageStatus.dropped``) and logged."""
RETRY_S = 1.0
"""How often held events and writes are tried again while the disk refuses them."""
PROBE_S = 2.0
"""How often free space and a read-only remount are checked (statvfs: no write)."""
PRUNE_S = 24 * 3600.0
"""How often old vitals are pruned (and once at start)."""

Listener = Callable[[Event], None]
SpaceLevel = Literal["ok", "low", "critical"]


@dataclass(frozen=True)
class StorageStatus:
    """The journal's storage as the room reports it (to ``Health``, which raises alarms)."""

    fault: StorageError | None  # why writes fail now; None when they succeed
    space: SpaceLevel  # free space against the [journal] watermarks
    free_mb: float | None
    waiting: int  # events held in memory, not yet journaled
    committed_late: int  # held events journaled since the fault began
    dropped: int  # events never journaled (the queue was full)
    vitals_dropped: int  # vitals samples never journaled
    writes_dropped: int  # replies/marks/settings never journaled


StorageListener = Callable[[StorageStatus], None]


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
        self.storage_listeners: list[StorageListener] = []
        self._queue: deque[Event] = deque()
        self.dropped = 0
        self._committed_late = 0
        self._probe_fault: StorageError | None = None
        self._space: SpaceLevel = "ok"
        self._free_mb: float | None = None
        self._reported: tuple[str | None, SpaceLevel] = (None, "ok")
        start = clock.monotonic()
        self._next_retry = self._next_probe = self._next_prune = start

    def wire(self, fold: Callable[[Event], None], session_id: Callable[[], str | None]) -> None:
        """Fold every emitted event with ``fold`` (the room's one fold) and stamp it with the
        running session's id (set once, when the room is put together)."""
        self._fold = fold
        self._session_id = session_id

    # --- events ---------------------------------------------------------------------

    def emit(self, type_: str, data: dict[str, Any], *, session_id: str | None = None) -> Event:
        """Journal an event, fold it into the room's state, then publish it.

        While the disk refuses writes the event is folded at once and held; it is journaled
        and published, with its seq, when the disk takes it again (``storage_turn``).
        """
        sid = session_id or self._session_id()
        data = fit_event(type_, data)  # never journal what the broker would refuse
        now = self._clock.now()
        fault: StorageError | None = None
        event: Event | None = None
        if not self._queue:  # else it waits behind the held ones: the order holds
            try:
                event = self.journal.append(now, sid, type_, data)
            except StorageError as exc:
                fault = exc
        if event is None:
            event = Event(seq=0, ts=now, session_id=sid, type=type_, data=data)  # seq at commit
            self._hold(event)
        self._fold(event)
        if event.seq and self.online and self.backlog is None:
            self._link.publish_event(event)  # else it goes out in seq order with the backlog
        self._dirty = True
        if type_.startswith("alarm_"):
            self._alarms_dirty = True
        for listener in self.listeners:
            listener(event)
        if fault is not None:
            self._report()  # loud at once, after the event that met the fault acted
        return event

    def _hold(self, event: Event) -> None:
        if len(self._queue) >= QUEUE_MAX:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:  # say it, without flooding
                log.error(
                    "journal: %d held events: %d events dropped (this one: %s)",
                    len(self._queue),
                    self.dropped,
                    event.type,
                )
            return
        self._queue.append(event)

    def delivered(self, seq: int) -> None:
        """The broker acknowledged event ``seq``."""
        self.journal.mark_delivered(seq)

    def set_aside(self, seq: int, reason: str) -> None:
        """The broker will never take event ``seq``: stop re-sending it (it stays in the
        journal, and the ``events`` verb still returns it)."""
        log.error("event %d set aside, not delivered: %s", seq, reason)
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
        """Re-send the next batch of unacknowledged events after a reconnect (and, first,
        journal what waits and check the storage: every loop turn passes here)."""
        self.storage_turn()
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
        heartbeat = (self._last_state_at or now) + self._heartbeat_s
        if self.storage_fault is not None:
            return min(heartbeat, self._next_retry)
        return min(heartbeat, self._next_probe)

    # --- storage --------------------------------------------------------------------

    @property
    def storage_fault(self) -> StorageError | None:
        """Why the journal refuses writes now (None when it takes them)."""
        return self.journal.fault or self._probe_fault

    @property
    def waiting(self) -> int:
        """Events held in memory, not yet journaled."""
        return len(self._queue)

    def storage_error(self, exc: StorageError) -> None:
        """A journal operation failed outside ``emit`` (a read, say): report it."""
        self.journal.fault = exc
        self._report()

    def storage_turn(self) -> None:
        """Journal what waits (every ``RETRY_S``), check free space (every ``PROBE_S``),
        prune old vitals (daily), and report a change to the storage listeners."""
        now = self._clock.monotonic()
        if (self._queue or self.journal.fault is not None) and now >= self._next_retry:
            self._next_retry = now + RETRY_S
            if self.journal.flush():
                self._commit_held()
        if now >= self._next_probe:
            self._next_probe = now + PROBE_S
            self._probe()
        if now >= self._next_prune and self.storage_fault is None:
            self._next_prune = now + PRUNE_S
            try:
                pruned = self.journal.prune(self._clock.now())
            except StorageError as exc:
                self.journal.fault = exc
            else:
                if pruned:
                    log.info("journal: %d vitals rows past retention pruned", pruned)
        self._report()

    def _commit_held(self) -> None:
        while self._queue:
            held = self._queue[0]
            try:
                event = self.journal.append(held.ts, held.session_id, held.type, held.data)
            except StorageError:
                return  # journal.fault says why; tried again on a later turn
            self._queue.popleft()
            self._committed_late += 1
            if self.online and self.backlog is None:
                self._link.publish_event(event)

    def _probe(self) -> None:
        space = self.journal.space()
        if space is None:
            return
        settings = self.journal.settings
        self._free_mb = round(space.free_bytes / 1e6, 1)
        self._space = (
            "critical"
            if self._free_mb < settings.alarm_free_mb
            else "low"
            if self._free_mb < settings.warn_free_mb
            else "ok"
        )
        path = self.journal.path
        if space.read_only:
            self._probe_fault = StorageReadOnly(path, "its file system was remounted read-only")
        elif space.free_bytes == 0:
            self._probe_fault = StorageFull(path, "no free space left")
        else:
            self._probe_fault = None

    def _report(self) -> None:
        fault = self.storage_fault
        now = (fault.kind if fault else None, self._space)
        if now == self._reported:
            return
        self._reported = now  # first: a listener's own emits must not report it again
        status = StorageStatus(
            fault=fault,
            space=self._space,
            free_mb=self._free_mb,
            waiting=len(self._queue),
            committed_late=self._committed_late,
            dropped=self.dropped,
            vitals_dropped=self.journal.vitals_dropped,
            writes_dropped=self.journal.writes_dropped,
        )
        if fault is None:
            self._committed_late = 0
        for listener in self.storage_listeners:
            listener(status)
