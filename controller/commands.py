"""The clinicians' commands: read, checked and answered, each run by its part's handler.

A command arrives as raw bytes on ``cmd/<verb>``. It is parsed within the size limit, checked
for a repeated ``request_id`` (answered with the first reply), validated by its model, refused
when stale or in the wrong phase, then run by the handler the verb table names. Every refusal
is journaled as ``command_rejected``; every reply goes to the response topic it asked for.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from controller import events as ev
from controller.errors import CommandError, InvalidPayload, InvalidState, UnknownVerb
from controller.eventlog import EventLog
from controller.journal import Journal
from controller.models import (
    COMMANDS,
    Command,
    ErrorBody,
    Phase,
    PrivateReply,
    Reply,
    parse_json_object,
    validate_command,
)
from controller.phases import wrong_phase_message
from controller.ports import ClinicLink, Clock

log = logging.getLogger("roomd.core")

Handler = Callable[[Any], dict[str, Any]]


@dataclass(frozen=True)
class Verb:
    """One verb: its payload model, the phases it is allowed in, and who runs it."""

    model: type[Command]
    phases: frozenset[Phase]
    run: Handler
    private: bool = False  # its reply holds clinical text: only to the requester's topic


class CommandDesk:
    """Takes each command from the inbox to its handler and sends the one reply."""

    def __init__(
        self,
        *,
        verbs: Mapping[str, Verb],
        clock: Clock,
        journal: Journal,
        log: EventLog,
        link: ClinicLink,
        phase: Callable[[], Phase],
        max_age_s: float | None,
    ) -> None:
        self.verbs = verbs
        self._clock = clock
        self._journal = journal
        self._log = log
        self._link = link
        self._phase = phase
        self.max_age_s = max_age_s  # None: sent_at not checked

    def on_command(self, msg: ev.CommandReceived) -> None:
        """Run one command and send its reply."""
        request_id, verb = "", msg.verb
        try:
            obj = parse_json_object(msg.payload)
            rid = obj.get("request_id")
            if isinstance(rid, str) and 0 < len(rid) <= 64:
                request_id = rid
            if verb not in self.verbs:
                raise UnknownVerb(f"unknown verb '{verb}'; verbs are {', '.join(COMMANDS)}")
            first = self._journal.find_reply(request_id) if request_id else None
            if first is not None:
                self._send(msg, _duplicate(request_id, verb, first), record=False)
                return
            entry = self.verbs[verb]
            command = validate_command(entry.model, obj)
            self._check_fresh(command)
            phase = self._phase()
            if phase not in entry.phases:
                raise InvalidState(wrong_phase_message(verb, phase))
            if entry.private and not msg.response_topic:
                raise InvalidPayload(
                    f"{verb} replies with clinical text, sent only to an MQTT 5 response topic "
                    "under replies/: send the command with one"
                )
            result = entry.run(command)
            reply = Reply(request_id=request_id, verb=verb, ok=True, result=result or {})
        except CommandError as exc:
            reply = self._reject(request_id, verb, exc.code, exc.message, exc.details)
        except Exception:  # a bug must not stop the room; say so and keep the room running
            log.exception("command %s failed", verb)
            reply = self._reject(request_id, verb, "internal", "internal error; see the room's log")
        try:
            self._send(msg, reply, record=bool(request_id))
        except Exception:  # the command is decided and journaled; a failed reply must not jam
            log.exception("reply to %s could not be sent", verb)

    def _check_fresh(self, command: Command) -> None:
        """Refuse a command older than the configured age: a stale start_infusion must never
        run minutes late (the broker keeps commands for a room that was briefly away)."""
        limit = self.max_age_s
        if limit is None or command.sent_at is None:
            return
        age = (self._clock.now() - command.sent_at).total_seconds()
        if age > limit:
            raise InvalidPayload(
                f"field 'sent_at': the command is {age:.0f} s old (limit {limit:g} s); "
                "not executed, send it again if it still applies",
                {"age_s": round(age, 3), "limit_s": limit},
            )

    def _reject(
        self, request_id: str, verb: str, code: str, message: str, details: Any = None
    ) -> Reply:
        self._log.emit(
            "command_rejected", {"verb": verb[:64], "code": code, "request_id": request_id}
        )
        return Reply(
            request_id=request_id,
            verb=verb[:64],
            ok=False,
            error=ErrorBody(code=code, message=message, details=details),
        )

    def _send(self, msg: ev.CommandReceived, reply: Reply, *, record: bool) -> None:
        if record:
            self._journal.record_reply(reply.request_id, reply.to_json().decode())
        entry = self.verbs.get(msg.verb)
        if entry is not None and entry.private:
            reply = PrivateReply.model_validate(reply.model_dump())
        self._link.publish_reply(reply, msg.response_topic, msg.correlation_data)


def _duplicate(request_id: str, verb: str, first: str) -> Reply:
    return Reply(
        request_id=request_id,
        verb=verb,
        ok=False,
        error=ErrorBody(
            code="duplicate",
            message=f"request_id '{request_id}' was already executed; "
            "its first reply is in details",
            details={"first_reply": json.loads(first)},
        ),
    )
