"""The archive's verbs (``<prefix>/archive/cmd/<verb>``): ``course``, ``session``, ``rooms``.

Same envelope and error codes as a room's commands; every verb only reads, so a repeated
``request_id`` is simply answered again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Annotated, Any

from pydantic import StringConstraints, ValidationError

from controller.errors import CommandError, InvalidPayload, UnknownVerb
from controller.models import Command, ErrorBody, Reply, parse_json_object
from mqtt_bridge.clinicd.config import CourseSection
from mqtt_bridge.clinicd.course import session_summary
from mqtt_bridge.clinicd.flags import course_flags, flag
from mqtt_bridge.clinicd.store import Store

log = logging.getLogger("clinicd.verbs")

Ref = Annotated[str, StringConstraints(min_length=1, max_length=64)]


class CourseQuery(Command):
    """``course``: one patient's sessions and flags."""

    patient_ref: Ref


class SessionQuery(Command):
    """``session``: one session's summary."""

    session_id: Ref


class Archive:
    """What the archive answers, read from its store."""

    def __init__(self, store: Store, course: CourseSection) -> None:
        self.store = store
        self.course_settings = course
        self._verbs: dict[str, tuple[type[Command], Callable[[Any], dict[str, Any]]]] = {
            "course": (CourseQuery, lambda q: self.course(q.patient_ref)),
            "session": (SessionQuery, lambda q: self.session(q.session_id)),
            "rooms": (Command, lambda q: self.rooms()),
        }

    # --- answers ----------------------------------------------------------------------

    def session(self, session_id: str) -> dict[str, Any]:
        """One session's summary; InvalidPayload naming ``session_id`` when unknown."""
        summary = session_summary(self.store, session_id)
        if summary is None:
            raise InvalidPayload(
                f"session_id {session_id!r}: no such session in the archive",
                {"field": "session_id"},
            )
        return summary

    def course(self, patient_ref: str) -> dict[str, Any]:
        """A patient's sessions in time order and the course's flags."""
        ids = self.store.sessions_of(patient_ref)
        if not ids:
            raise InvalidPayload(
                f"patient_ref {patient_ref!r}: no session of this patient in the archive",
                {"field": "patient_ref"},
            )
        sessions = sorted(
            (self.session(s) for s in ids), key=lambda s: (s["started_at"] or "", s["session_id"])
        )
        flags = course_flags(sessions, self.course_settings)
        for s in sessions:
            row = self.store.message(s["session_id"])
            if row is not None and row.state == "refused":
                flags.append(
                    flag(s, "hl7_refused", f"the EHR answered {row.ack_code}: {row.last_error}")
                )
        return {"patient_ref": patient_ref, "sessions": sessions, "flags": flags}

    def rooms(self) -> dict[str, Any]:
        """Every room the archive has events of."""
        return {
            "rooms": [
                {"room_id": r.room_id, "last_seq": r.last_seq, "last_event_at": r.last_event_at}
                for r in self.store.rooms()
            ]
        }

    # --- the envelope -----------------------------------------------------------------

    def handle(self, verb: str, payload: bytes) -> Reply:
        """The reply to one command; never raises."""
        request_id = ""
        try:
            obj = parse_json_object(payload)
            rid = obj.get("request_id")
            request_id = rid if isinstance(rid, str) else ""
            if verb not in self._verbs:
                raise UnknownVerb(f"unknown verb {verb!r}; verbs: {', '.join(self._verbs)}")
            model, answer = self._verbs[verb]
            try:
                query = model.model_validate(obj)
            except ValidationError as exc:
                first = exc.errors()[0]
                field = ".".join(str(p) for p in first["loc"]) or "(payload)"
                raise InvalidPayload(f"field '{field}': {first['msg']}") from None
            return Reply(request_id=request_id, verb=verb, ok=True, result=answer(query))
        except CommandError as exc:
            error = ErrorBody(code=exc.code, message=exc.message, details=exc.details)
        except Exception as exc:  # a bug must not stop the archive
            log.exception("verb %s failed", verb)
            error = ErrorBody(code="internal", message=f"internal error: {exc}")
        return Reply(request_id=request_id, verb=verb, ok=False, error=error)
