"""Ingest: every room's events into the store exactly once, gaps fetched, notes fetched.

Runs on the archive's one worker thread. It never talks to MQTT itself: it asks ``send``
to put a command to a room (``events`` or ``notes``) and is handed the reply when it comes.

- A live event is stored by ``(room_id, seq)``; a duplicate is ignored. The worker hands
  over what has arrived together (``on_events``), to be written in one transaction.
- When a room's stored events are not contiguous from 1 (a gap, or a room first seen
  mid-journal), the archive asks the room for ``events`` from the first missing seq, page by
  page, until the room's ``last_seq``. Whatever the room does not return, it does not have
  (a recovered journal skips seqs), so the archive stops asking for it.
- On every (re)connection and every ``resync_s`` it asks each known room for anything after
  what it has: a room whose last events fell in the archive's absence is caught up too.
- Notes: after ``session_ended`` or ``note_recorded`` it asks the room for the session's
  ``notes``. A room without that verb (``unknown_verb``, before contract v2) is marked
  ``unsupported`` and asked again when it next comes online (an upgrade restarts it).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError

from controller.models import Event
from mqtt_bridge.clinicd.store import Store

log = logging.getLogger("clinicd.ingest")

Send = Callable[[str, str, dict[str, Any]], None]
"""send(room_id, verb, payload) puts a command to a room (the payload has its request_id)."""


@dataclass
class Request:
    """A command to a room still waiting for its reply."""

    room_id: str
    verb: str
    key: str  # the room for "events", the session for "notes"
    sent_at: datetime


class Ingest:
    """Stores events, finds gaps, and asks rooms for what is missing."""

    def __init__(
        self,
        store: Store,
        send: Send,
        *,
        page_limit: int = 500,
        request_timeout_s: float = 10.0,
        resync_s: float = 60.0,
        on_new: Callable[[str, list[Event]], None] | None = None,
    ) -> None:
        self.store = store
        self._send = send
        self._page = page_limit
        self._timeout = timedelta(seconds=request_timeout_s)
        self._resync = timedelta(seconds=resync_s)
        self._on_new = on_new
        self._pending: dict[str, Request] = {}
        self._notes_tried: dict[str, datetime] = {}
        self._last_sync: datetime | None = None

    # --- what arrives -----------------------------------------------------------------

    def on_event(self, room_id: str, obj: dict[str, Any], now: datetime) -> bool:
        """A live event from a room; whether it was new (see ``on_events``)."""
        return bool(self.on_events(room_id, [obj], now))

    def on_events(
        self, room_id: str, items: Sequence[bytes | dict[str, Any]], now: datetime
    ) -> int:
        """Live events from one room as they arrived (payloads, or decoded objects); how many
        were new. A malformed one is logged and dropped (the room's journal still has it:
        the next fetch brings it)."""
        events: list[Event] = []
        for item in items:
            try:
                if isinstance(item, bytes):
                    events.append(Event.model_validate_json(item))
                else:
                    events.append(Event.model_validate(item))
            except ValidationError as exc:
                log.warning("%s: malformed event dropped: %s", room_id, exc.errors()[0]["msg"])
        if not events:
            return 0
        new = self._store(room_id, events)
        self._fetch_if_incomplete(room_id, now)
        return len(new)

    def on_reply(self, room_id: str, reply: dict[str, Any], now: datetime) -> None:
        """A room's reply to one of our commands (others are ignored)."""
        request = self._pending.pop(str(reply.get("request_id")), None)
        if request is None or request.room_id != room_id:
            return
        if request.verb == "events":
            self._events_reply(request, reply, now)
        else:
            self._notes_reply(request, reply)

    def on_room_online(self, room_id: str, now: datetime) -> None:
        """A room said ``online``: catch up with it, and retry notes it could not give."""
        self.store.retry_unsupported_notes(room_id)
        self._fetch(room_id, now)

    def on_connected(self, now: datetime) -> None:
        """The archive (re)connected: ask every known room for what came meanwhile."""
        self._pending.clear()  # replies to the old connection's requests may never come
        for room in self.store.rooms():
            self._fetch(room.room_id, now)
        self._last_sync = now

    def tick(self, now: datetime) -> None:
        """Expire lost requests, resync now and then, and ask for wanted notes."""
        for rid, req in list(self._pending.items()):
            if now - req.sent_at > self._timeout:
                log.warning("%s: no reply to %s (%s); will ask again", req.room_id, req.verb, rid)
                del self._pending[rid]
        if self._last_sync is None or now - self._last_sync >= self._resync:
            self._last_sync = now
            for room in self.store.rooms():
                self._fetch(room.room_id, now)
        for room_id, session_id in self.store.notes_wanted():
            tried = self._notes_tried.get(session_id)
            if self._busy("notes", session_id) or (tried and now - tried < self._resync):
                continue
            self._notes_tried[session_id] = now
            self._request(room_id, "notes", session_id, {"session_id": session_id}, now)

    # --- events -----------------------------------------------------------------------

    def _store(self, room_id: str, events: list[Event]) -> list[Event]:
        new = self.store.add_events(room_id, events)
        if new and self._on_new is not None:
            self._on_new(room_id, new)
        return new

    def _fetch_if_incomplete(self, room_id: str, now: datetime) -> None:
        room = self.store.room(room_id)
        if room is not None and room.complete_through < room.last_seq:
            self._fetch(room_id, now)

    def _fetch(self, room_id: str, now: datetime) -> None:
        """Ask for the room's events after the contiguous part we hold (one request at once)."""
        if self._busy("events", room_id):
            return
        room = self.store.room(room_id)
        since = (room.complete_through if room else 0) + 1
        self._request(room_id, "events", room_id, {"since_seq": since, "limit": self._page}, now)

    def _events_reply(self, request: Request, reply: dict[str, Any], now: datetime) -> None:
        room_id = request.room_id
        if not reply.get("ok"):
            log.warning("%s: events refused: %s", room_id, reply.get("error"))
            return
        result = reply.get("result") or {}
        try:
            events = [Event.model_validate(e) for e in result.get("events", [])]
            last_seq = int(result.get("last_seq", 0))
        except (ValidationError, TypeError, ValueError) as exc:
            log.warning("%s: malformed events reply: %s", room_id, exc)
            return
        if events:
            self._store(room_id, events)
        # The room sent everything it has up to here (in seq order): what is not stored by
        # now does not exist.
        answered = events[-1].seq if events else last_seq
        self.store.confirm_through(room_id, answered)
        room = self.store.room(room_id)
        if room is not None and room.complete_through < max(room.last_seq, last_seq):
            self._fetch(room_id, now)

    # --- notes ------------------------------------------------------------------------

    def _notes_reply(self, request: Request, reply: dict[str, Any]) -> None:
        session_id = request.key
        if reply.get("ok"):
            notes = (reply.get("result") or {}).get("notes")
            if isinstance(notes, list) and all(
                isinstance(n, dict) and {"note_id", "kind", "text"} <= set(n) for n in notes
            ):
                self.store.put_notes(session_id, notes)
                self._notes_tried.pop(session_id, None)
                return
            log.warning("%s: malformed notes reply for %s", request.room_id, session_id)
            return
        code = (reply.get("error") or {}).get("code")
        if code == "unknown_verb":
            log.info("%s keeps no notes (no notes verb): %s", request.room_id, session_id)
            self.store.mark_notes(session_id, "unsupported")
        else:
            log.warning("%s: notes of %s refused: %s", request.room_id, session_id, code)
            self.store.mark_notes(session_id, "error")

    # --- requests ---------------------------------------------------------------------

    def _busy(self, verb: str, key: str) -> bool:
        return any(r.verb == verb and r.key == key for r in self._pending.values())

    def _request(
        self, room_id: str, verb: str, key: str, args: dict[str, Any], now: datetime
    ) -> None:
        rid = f"clinicd-{uuid.uuid4().hex[:16]}"
        self._pending[rid] = Request(room_id, verb, key, now)
        self._send(room_id, verb, {"request_id": rid, "by": "clinicd", **args})
