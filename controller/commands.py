"""The clinicians' commands: read, checked and answered, each run by its part's handler.

A command arrives as raw bytes on ``cmd/<verb>`` (``by`` as declared in the payload) or on
``cmd/<verb>/by/<user>`` (``by`` proven by the broker: the ACL lets each clinician write only
under their own user name). It is parsed within the size limit, checked for a repeated
``request_id`` (answered with the first reply), validated by its model, refused when stale, from
the future or in the wrong phase, then run by the handler the verb table names. Every reply goes
to the response topic it asked for, cut to fit the broker's limit.

Refusals are journaled as ``command_rejected``, coalesced: the first of an interval at once,
the others of the same code counted into one event when the interval is over (a flood of bad
commands must neither hold an emergency behind thousands of journal writes nor fill the disk).
A command the room could not understand is answered up to a budget per sender and interval;
past it such refusals are only counted (``unanswered``): every reply goes to every tablet and
shares the room's one connection, so thousands of them would hold an emergency's reply behind
them on the wire. A command understood (accepted or refused) is always answered.
A command refused before it was understood (unreadable, unknown verb, invalid, stale) keeps no
reply: nothing ran, so a repeat may be answered again.
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
from controller.fit import clip, fit_reply
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

COALESCE_S = 1.0
"""Refusals within this many seconds of the interval's first are journaled as one event per
error code (the first of the interval is journaled at once)."""
ANSWERED_REFUSALS = 20
"""Refusals answered per sender (broker user; one budget for the unattributed ``cmd/<verb>``
path) in a coalescing interval. A clinician's mistakes never come near it; a flood does."""
FUTURE_SKEW_S = 120.0
"""How far ahead of the room's clock a ``sent_at`` may be (a tablet's clock slightly ahead);
past it the command is refused: a future date would escape the age check."""


@dataclass
class Held:
    """Refusals of one code counted since the interval's first was journaled."""

    count: int
    verb: str
    request_id: str
    user: str | None
    unanswered: int = 0


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
        self.answered_refusals = ANSWERED_REFUSALS  # per sender and interval, not understood
        self._window_at: float | None = None  # when the current refusal interval began
        self._held: dict[str, Held] = {}  # code -> refusals counted in this interval
        self._answered: dict[str | None, int] = {}  # sender -> refusals answered this interval

    def on_command(self, msg: ev.CommandReceived) -> None:
        """Run one command and send its reply."""
        self.flush()
        request_id, verb, understood, declared = "", msg.verb, False, None
        try:
            obj = parse_json_object(msg.payload)
            rid = obj.get("request_id")
            if isinstance(rid, str) and 0 < len(rid) <= 64:
                request_id = rid
            if verb not in self.verbs:
                raise UnknownVerb(
                    f"unknown verb '{clip(verb, 64)}'; verbs are {', '.join(COMMANDS)}"
                )
            first = self._journal.find_reply(request_id) if request_id else None
            if first is not None:
                self._send(msg, _duplicate(request_id, verb, first), record=False)
                return
            entry = self.verbs[verb]
            command, declared = attribute(validate_command(entry.model, obj), msg.user)
            self._check_fresh(command)
            understood = True
            phase = self._phase()
            if phase not in entry.phases:
                raise InvalidState(wrong_phase_message(verb, phase))
            if entry.private and not msg.response_topic:
                raise InvalidPayload(
                    f"{verb} replies with clinical text, sent only to an MQTT 5 response topic "
                    "under replies/: send the command with one"
                )
            result = entry.run(command)
            reply: Reply | None = Reply(
                request_id=request_id,
                verb=verb,
                ok=True,
                result=result or {},
                by_verified=True if msg.user is not None else None,
                by_declared=declared,
            )
        except CommandError as exc:
            reply = self._reject(msg, request_id, exc.code, exc.message, exc.details, understood)
        except Exception:  # a bug must not stop the room; say so and keep the room running
            log.exception("command %s failed", clip(verb, 64))
            reply = self._reject(
                msg, request_id, "internal", "internal error; see the room's log", None, True
            )
        if reply is None:  # a refusal past the sender's budget: counted, not answered
            return
        try:
            self._send(msg, reply, record=bool(request_id) and understood)
        except Exception:  # the command is decided and journaled; a failed reply must not jam
            log.exception("reply to %s could not be sent", clip(verb, 64))

    @property
    def held_refusals(self) -> int:
        """Refusals counted in the current interval and not journaled yet."""
        return sum(h.count for h in self._held.values())

    def flush(self) -> None:
        """Journal the refusals counted in an interval that is over (also called on tick)."""
        if self._window_at is None or self._clock.monotonic() - self._window_at < COALESCE_S:
            return
        held, self._held, self._window_at = self._held, {}, None
        self._answered = {}
        for code, h in held.items():
            self._log.emit(
                "command_rejected",
                _rejected(h.verb, code, h.request_id, h.user, h.count, h.unanswered),
            )

    def _check_fresh(self, command: Command) -> None:
        """Refuse a command older than the configured age: a stale start_infusion must never
        run minutes late (the broker keeps commands for a room that was briefly away)."""
        limit = self.max_age_s
        if limit is None or command.sent_at is None:
            return
        age = (self._clock.now() - command.sent_at).total_seconds()
        if age < -FUTURE_SKEW_S:
            raise InvalidPayload(
                f"field 'sent_at': the command is dated {-age:.0f} s ahead of the room's clock "
                f"(at most {FUTURE_SKEW_S:g} s); not executed: check the sender's clock",
                {"ahead_s": round(-age, 3), "limit_s": FUTURE_SKEW_S},
            )
        if age > limit:
            raise InvalidPayload(
                f"field 'sent_at': the command is {age:.0f} s old (limit {limit:g} s); "
                "not executed, send it again if it still applies",
                {"age_s": round(age, 3), "limit_s": limit},
            )

    def _reject(
        self,
        msg: ev.CommandReceived,
        request_id: str,
        code: str,
        message: str,
        details: Any,
        understood: bool,
    ) -> Reply | None:
        """Journal (coalesced) one refusal; its reply, or None when the command was not
        understood and its sender's budget is spent."""
        verb = msg.verb[:64]
        answered = self._answered.get(msg.user, 0)
        answer = understood or answered < self.answered_refusals
        if answer and not understood:
            self._answered[msg.user] = answered + 1
        if self._window_at is None:
            self._window_at = self._clock.monotonic()
            self._log.emit("command_rejected", _rejected(verb, code, request_id, msg.user, 1))
        elif code in self._held:
            held = self._held[code]
            held.count += 1
            held.verb, held.request_id, held.user = verb, request_id, msg.user
            held.unanswered += not answer
        else:
            self._held[code] = Held(1, verb, request_id, msg.user, int(not answer))
        if not answer:
            return None
        return Reply(
            request_id=request_id,
            verb=verb,
            ok=False,
            error=ErrorBody(code=code, message=message, details=details),
            by_verified=True if msg.user is not None else None,
        )

    def _send(self, msg: ev.CommandReceived, reply: Reply, *, record: bool) -> None:
        reply = fit_reply(reply)
        if record:
            self._journal.record_reply(reply.request_id, reply.to_json().decode())
        entry = self.verbs.get(msg.verb)
        if entry is not None and entry.private:
            reply = PrivateReply.model_validate(reply.model_dump())
        self._link.publish_reply(reply, msg.response_topic, msg.correlation_data)


def attribute(command: Command, user: str | None) -> tuple[Command, str | None]:
    """The command as the broker attributes it: ``by`` is the user whose topic it came on;
    and the ``by`` the payload declared when it differs (None when it agrees)."""
    if user is None or command.by == user:
        return command, None
    return command.model_copy(update={"by": user}), command.by


def _rejected(
    verb: str, code: str, request_id: str, user: str | None, count: int, unanswered: int = 0
) -> dict[str, Any]:
    """A ``command_rejected`` event's data: ``count`` when it stands for several refusals,
    ``unanswered`` how many of them got no reply (past the budget), ``by`` when the broker
    proved who sent the (last) one."""
    data: dict[str, Any] = {"verb": verb, "code": code, "request_id": request_id}
    if user is not None:
        data["by"] = user
        data["by_verified"] = True
    if count > 1:
        data["count"] = count
    if unanswered:
        data["unanswered"] = unanswered
    return data


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
