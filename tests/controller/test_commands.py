"""The command desk alone: parsing, duplicates, validation, age, phase, running, replying."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from controller.commands import ANSWERED_REFUSALS, COALESCE_S, FUTURE_SKEW_S, CommandDesk, Verb
from controller.errors import InvalidState
from controller.events import CommandReceived
from controller.fit import CUT, REPLY_BUDGET
from controller.models import COMMANDS, Command, Phase, PrivateReply, Reply, iso_utc
from controller.phases import ACTIVE, ANY, wrong_phase_message
from mqtt_bridge.fake import FakeLink
from tests.controller.bench import Bench

MAX_AGE_S = 30.0


class Desk:
    """A command desk on a bench, with verbs that record what they were given."""

    def __init__(self, data_dir: Path, *, max_age_s: float | None = MAX_AGE_S) -> None:
        self.b = Bench(data_dir)
        self.phase: Phase = "check_in"
        self.ran: list[tuple[str, Command]] = []
        self.desk = CommandDesk(
            verbs=self.verbs(), clock=self.b.clock, journal=self.b.journal, log=self.b.log,
            link=self.b.link, phase=lambda: self.phase, max_age_s=max_age_s,
        )  # fmt: skip

    def verbs(self) -> dict[str, Verb]:
        def run(verb: str, result: dict[str, Any] | None = None) -> Any:
            def handler(cmd: Command) -> dict[str, Any] | None:
                self.ran.append((verb, cmd))
                self.b.log.emit("ran", {"verb": verb})
                return result

            return handler

        def refuse(cmd: Command) -> dict[str, Any]:
            self.ran.append(("refuse", cmd))
            raise InvalidState("Can't call_ack: no call waiting", {"call": "idle"})

        def bug(cmd: Command) -> dict[str, Any]:
            self.ran.append(("bug", cmd))
            raise KeyError("oops")

        return {
            "advance": Verb(COMMANDS["advance"], ACTIVE, run("advance", {"phase": "x"})),
            "confirm": Verb(COMMANDS["confirm"], ACTIVE, run("confirm")),
            "status": Verb(COMMANDS["status"], ANY, run("status", {"ok": 1})),
            "call_ack": Verb(COMMANDS["call_ack"], ANY, refuse),
            "checkin": Verb(COMMANDS["checkin"], ANY, bug),
            "start_session": Verb(
                COMMANDS["start_session"], frozenset({"idle"}), run("start_session")
            ),
        }

    def send(self, verb: str, body: dict[str, Any] | bytes, **kw: Any) -> Reply:
        payload = body if isinstance(body, bytes) else json.dumps(body).encode()
        before = len(self.b.link.replies)
        self.desk.on_command(CommandReceived(verb, payload, **kw))
        assert len(self.b.link.replies) == before + 1, "every command gets exactly one reply"
        return self.b.link.replies[-1][0]

    def rejected(self) -> list[dict[str, Any]]:
        return self.b.events("command_rejected")


@pytest.fixture
def d(tmp_path: Path) -> Iterator[Desk]:
    desk = Desk(tmp_path)
    yield desk
    desk.b.close()


def body(request_id: str = "r1", **args: Any) -> dict[str, Any]:
    return {"request_id": request_id, "by": "dr-lee", **args}


def error(reply: Reply) -> tuple[str, str]:
    assert not reply.ok and reply.error is not None
    return reply.error.code, reply.error.message


# --- running a command --------------------------------------------------------------------------


def test_a_command_runs_and_its_reply_goes_where_asked(d: Desk) -> None:
    d.desk.on_command(CommandReceived("advance", json.dumps(body()).encode(), "t/7", b"c-1"))
    reply, topic, corr = d.b.link.replies[-1]
    assert reply == Reply(request_id="r1", verb="advance", ok=True, result={"phase": "x"})
    assert (topic, corr) == ("t/7", b"c-1")
    ((verb, cmd),) = d.ran
    assert verb == "advance" and cmd.by == "dr-lee" and type(cmd) is COMMANDS["advance"]
    assert d.b.journal.find_reply("r1") == reply.to_json().decode()
    assert d.rejected() == []


def test_a_handler_returning_nothing_replies_an_empty_result(d: Desk) -> None:
    reply = d.send("confirm", body(item="consent"))
    assert reply.ok and reply.result == {}


def test_the_verbs_model_validates_and_names_the_field(d: Desk) -> None:
    code, message = error(d.send("confirm", body(item="lunch")))
    assert code == "invalid_payload"
    assert message.startswith("field 'item':")
    code, message = error(d.send("confirm", {"request_id": "r2", "item": "consent"}))
    assert message.startswith("field 'by':")
    assert d.ran == []


def test_a_command_without_a_request_id_is_refused_and_not_recorded(d: Desk) -> None:
    reply = d.send("status", {"by": "x"})
    assert error(reply)[0] == "invalid_payload"
    assert reply.request_id == ""
    assert d.rejected() == [{"verb": "status", "code": "invalid_payload", "request_id": ""}]


# --- duplicates ---------------------------------------------------------------------------------


def test_a_repeated_request_id_returns_the_first_reply_and_runs_nothing(d: Desk) -> None:
    first = d.send("advance", body("same"))
    events = d.b.journal.last_seq
    again = d.send("advance", body("same"))
    code, message = error(again)
    assert code == "duplicate"
    assert message == "request_id 'same' was already executed; its first reply is in details"
    assert again.error is not None and again.error.details == {
        "first_reply": json.loads(first.to_json())
    }
    assert len(d.ran) == 1
    assert "ran" not in [e.type for e in d.b.journal.events_since(events + 1)]


def test_a_repeated_request_id_on_another_verb_runs_nothing(d: Desk) -> None:
    d.send("status", body("same"))
    reply = d.send("advance", body("same"))
    assert error(reply)[0] == "duplicate"
    assert reply.error is not None and reply.error.details is not None
    assert reply.error.details["first_reply"]["verb"] == "status"
    assert [v for v, _ in d.ran] == ["status"]


def test_a_refused_commands_reply_is_its_first_reply_too(d: Desk) -> None:
    d.phase = "idle"
    first = d.send("advance", body("r9"))
    d.phase = "check_in"
    again = d.send("advance", body("r9"))
    assert error(again)[0] == "duplicate"
    assert again.error is not None and again.error.details is not None
    assert again.error.details["first_reply"]["error"]["code"] == "invalid_state"
    assert json.loads(first.to_json()) == again.error.details["first_reply"]
    assert d.ran == [], "the first refusal is what happened; the repeat does not run it"


def test_the_first_reply_outlives_a_restart(tmp_path: Path) -> None:
    d = Desk(tmp_path)
    d.send("advance", body("r1"))
    d.b.close()
    again = Desk(tmp_path)
    assert error(again.send("advance", body("r1")))[0] == "duplicate"
    assert again.ran == []
    again.b.close()


# --- refusals -----------------------------------------------------------------------------------


def test_an_unknown_verb_lists_the_verbs(d: Desk) -> None:
    code, message = error(d.send("fly", body()))
    assert code == "unknown_verb"
    assert message == f"unknown verb 'fly'; verbs are {', '.join(COMMANDS)}"


def test_a_stale_command_is_refused(d: Desk) -> None:
    sent = d.b.clock.now() - timedelta(seconds=MAX_AGE_S + 5.25)
    reply = d.send("advance", body(sent_at=iso_utc(sent)))
    code, message = error(reply)
    assert code == "invalid_payload"
    assert message == (
        "field 'sent_at': the command is 35 s old (limit 30 s); "
        "not executed, send it again if it still applies"
    )
    assert reply.error is not None
    assert reply.error.details == {"age_s": MAX_AGE_S + 5.25, "limit_s": MAX_AGE_S}
    assert d.ran == []


def test_a_command_within_its_age_runs(d: Desk) -> None:
    sent = d.b.clock.now() - timedelta(seconds=MAX_AGE_S)
    assert d.send("advance", body("r1", sent_at=iso_utc(sent))).ok
    ahead = d.b.clock.now() + timedelta(seconds=90)  # a tablet clock ahead of the room's
    assert d.send("advance", body("r2", sent_at=iso_utc(ahead))).ok
    assert d.send("advance", body("r3")).ok, "no sent_at: not checked"


def test_without_a_limit_age_is_not_checked(tmp_path: Path) -> None:
    d = Desk(tmp_path, max_age_s=None)
    sent = d.b.clock.now() - timedelta(days=1)
    assert d.send("advance", body(sent_at=iso_utc(sent))).ok
    d.b.close()


@pytest.mark.parametrize(("verb", "phase"), [("advance", "idle"), ("start_session", "check_in")])
def test_the_wrong_phase_is_refused_saying_what_to_do(d: Desk, verb: str, phase: Phase) -> None:
    d.phase = phase
    code, message = error(d.send(verb, body()))
    assert code == "invalid_state"
    assert message == wrong_phase_message(verb, phase)
    assert d.ran == []


def test_a_handlers_refusal_is_its_code_message_and_details(d: Desk) -> None:
    reply = d.send("call_ack", body())
    assert error(reply) == ("invalid_state", "Can't call_ack: no call waiting")
    assert reply.error is not None and reply.error.details == {"call": "idle"}


def test_a_handlers_bug_is_internal_and_the_room_keeps_going(
    d: Desk, caplog: pytest.LogCaptureFixture
) -> None:
    code, message = error(d.send("checkin", body("r1")))
    assert (code, message) == ("internal", "internal error; see the room's log")
    assert [r.getMessage() for r in caplog.records] == ["command checkin failed"]
    assert "KeyError" in caplog.text
    assert d.send("status", body("r2")).ok
    assert [v for v, _ in d.ran] == ["bug", "status"]


@pytest.mark.parametrize(
    ("verb", "payload", "code"),
    [
        ("status", b"\xff", "invalid_payload"),
        ("status", b"[]", "invalid_payload"),
        ("fly", json.dumps(body()).encode(), "unknown_verb"),
        ("confirm", json.dumps(body(item="x")).encode(), "invalid_payload"),
        ("start_session", json.dumps(body()).encode(), "invalid_state"),
        ("call_ack", json.dumps(body()).encode(), "invalid_state"),
        ("checkin", json.dumps(body()).encode(), "internal"),
        (
            "status",
            json.dumps(body(sent_at="2000-01-01T00:00:00.000Z")).encode(),
            "invalid_payload",
        ),
    ],
)
def test_every_refusal_is_journaled(d: Desk, verb: str, payload: bytes, code: str) -> None:
    reply = d.send(verb, payload)
    assert error(reply)[0] == code
    assert d.b.types()[-1] == "command_rejected"
    request_id = "r1" if payload.startswith(b"{") else ""
    assert d.rejected() == [{"verb": verb, "code": code, "request_id": request_id}]
    assert reply.request_id == request_id


def test_a_long_verb_is_cut_in_the_record(d: Desk) -> None:
    reply = d.send("v" * 200, body())
    assert reply.verb == "v" * 64
    assert d.rejected()[0]["verb"] == "v" * 64
    quoted = error(reply)[1].split("'")[1]
    assert quoted == "v" * 63 + CUT, "the message quotes at most 64 characters of it"


def test_an_unusable_request_id_is_not_echoed(d: Desk) -> None:
    reply = d.send("status", body("x" * 65))
    assert reply.request_id == ""
    assert d.b.journal.find_reply("x" * 65) is None


# --- replying -----------------------------------------------------------------------------------


def test_a_failing_reply_does_not_stop_the_room(d: Desk, caplog: pytest.LogCaptureFixture) -> None:
    class Broken(FakeLink):
        def publish_reply(self, *args: Any) -> None:
            raise ConnectionError("socket closed")

    d.desk._link = Broken()
    d.desk.on_command(CommandReceived("advance", json.dumps(body()).encode()))
    assert [v for v, _ in d.ran] == ["advance"]
    assert d.b.types() == ["ran"], "the command is decided and journaled"
    assert d.b.journal.find_reply("r1") is not None, "a resend gets the first reply"
    assert "reply to advance could not be sent" in caplog.text
    d.desk.on_command(CommandReceived("v" * 200, json.dumps(body("r2")).encode()))
    assert d.rejected()[-1]["code"] == "unknown_verb"
    assert caplog.records[-1].getMessage() == f"reply to {'v' * 63}{CUT} could not be sent"


# --- hostile input (issue 15) -------------------------------------------------------------------


def test_a_command_from_the_future_is_refused(d: Desk) -> None:
    ahead = d.b.clock.now() + timedelta(seconds=FUTURE_SKEW_S + 60)
    reply = d.send("advance", body(sent_at=iso_utc(ahead)))
    code, message = error(reply)
    assert code == "invalid_payload"
    assert message.startswith("field 'sent_at': the command is dated 180 s ahead")
    assert d.ran == []


@pytest.mark.parametrize(
    ("verb", "payload", "field"),
    [
        ("advance", body(sent_at="2026-01-05T09:00:00"), "'sent_at'"),
        ("events", body(since_seq=2**63), "'since_seq'"),
        ("advance", body(sent_at="0001-01-01T00:00:00+05:00"), "'sent_at'"),
    ],
)
def test_values_that_broke_the_room_are_invalid_payload_naming_the_field(
    d: Desk, verb: str, payload: dict[str, Any], field: str
) -> None:
    d.desk.verbs = {**d.desk.verbs, "events": Verb(COMMANDS["events"], ANY, lambda c: {})}
    code, message = error(d.send(verb, payload))
    assert code == "invalid_payload" and field in message, message


def test_a_4300_digit_integer_is_invalid_payload_naming_the_field(d: Desk) -> None:
    raw = b'{"request_id": "r1", "by": "a", "item": ' + b"7" * 4400 + b"}"
    code, message = error(d.send("confirm", raw))
    assert code == "invalid_payload" and message.startswith("field 'item'")


def test_replies_to_hostile_commands_fit_the_broker(d: Desk) -> None:
    fields = {f"x{i:04d}": 1 for i in range(2000)}
    wide = d.send("advance", json.dumps(body(**fields)).encode())
    long = d.send("v" * 65400, body("r2"))
    for reply in (wide, long):
        assert not reply.ok and len(reply.to_json()) <= REPLY_BUDGET
    assert error(long)[0] == "unknown_verb" and len(error(long)[1]) < 2000


def test_a_refusal_before_understanding_keeps_no_reply(d: Desk) -> None:
    d.send("confirm", body("r1", item="lunch"))
    assert d.b.journal.find_reply("r1") is None
    assert d.send("confirm", body("r1", item="consent")).ok, "fixed and sent again: it runs"


def test_a_flood_of_refusals_is_journaled_coalesced(d: Desk) -> None:
    for i in range(3000):
        d.desk.on_command(
            CommandReceived(
                "fly" if i % 2 else "confirm", json.dumps(body(f"f{i}", item="x")).encode()
            )
        )
    assert len(d.rejected()) == 1, "the first at once, the rest held for the interval"
    d.b.clock.advance(COALESCE_S)
    d.desk.flush()
    first, *rest = d.rejected()
    assert first == {"verb": "confirm", "code": "invalid_payload", "request_id": "f0"}
    unanswered = 3000 - ANSWERED_REFUSALS
    assert sorted((e["code"], e["count"], e["unanswered"]) for e in rest) == [
        ("invalid_payload", 1499, unanswered // 2),
        ("unknown_verb", 1500, unanswered // 2),
    ]
    assert {e["request_id"] for e in rest} == {"f2998", "f2999"}, "the last of each code"
    d.desk.flush()
    assert len(d.rejected()) == 3, "nothing twice"
    d.send("fly", body("g1"))
    assert d.rejected()[-1] == {"verb": "fly", "code": "unknown_verb", "request_id": "g1"}


def test_a_flood_gets_a_budget_of_replies_per_sender_and_interval(d: Desk) -> None:
    def flood(n: int, user: str | None = None) -> int:
        before = len(d.b.link.replies)
        for i in range(n):
            d.desk.on_command(CommandReceived("fly", json.dumps(body(f"x{i}")).encode(), user=user))
        return len(d.b.link.replies) - before

    assert flood(500) == ANSWERED_REFUSALS, "the flood's refusals past the budget get no reply"
    assert flood(5, user="dr-kim") == 5, "another sender keeps its own budget"
    assert error(d.send("call_ack", body("ack1")))[0] == "invalid_state", (
        "a command understood and refused is always answered"
    )
    d.phase = "idle"
    assert error(d.send("advance", body("ph1")))[0] == "invalid_state", "so is the wrong phase"
    d.phase = "check_in"
    assert d.send("advance", body("ok1")).ok, "an accepted command is always answered"
    assert flood(1) == 0, "the flooding sender's budget is spent for this interval"
    d.b.clock.advance(COALESCE_S)
    assert flood(1) == 1, "a new interval, a new budget"
    d.desk.answered_refusals = 2
    d.b.clock.advance(COALESCE_S)
    assert flood(5) == 2, "the budget is the desk's setting"


def test_a_command_on_the_attributed_path_runs_as_its_broker_user(d: Desk) -> None:
    d.desk.on_command(CommandReceived("advance", json.dumps(body()).encode(), user="dr-kim"))
    reply = d.b.link.replies[-1][0]
    ((_, cmd),) = d.ran
    assert cmd.by == "dr-kim"
    assert reply.by_verified is True and reply.by_declared == "dr-lee"
    assert json.loads(d.b.journal.find_reply("r1") or "")["by_declared"] == "dr-lee"
    d.desk.on_command(
        CommandReceived("advance", json.dumps(body("r2", by="dr-kim")).encode(), user="dr-kim")
    )
    assert d.b.link.replies[-1][0].by_declared is None


def test_a_declared_by_is_not_marked_verified(d: Desk) -> None:
    reply = d.send("advance", body())
    assert reply.by_verified is None and d.ran[0][1].by == "dr-lee"
    assert d.send("fly", body("r2")).by_verified is None, "nor on a refusal"


def test_a_refusal_on_the_attributed_path_names_the_broker_user(d: Desk) -> None:
    d.desk.on_command(CommandReceived("fly", json.dumps(body()).encode(), user="dr-kim"))
    assert d.rejected() == [
        {
            "verb": "fly",
            "code": "unknown_verb",
            "request_id": "r1",
            "by": "dr-kim",
            "by_verified": True,
        }
    ]
    assert d.b.link.replies[-1][0].by_verified is True


# --- private replies, edges -----------------------------------------------------------------


def private_desk(d: Desk) -> None:
    notes = Verb(COMMANDS["notes"], ANY, lambda c: {"notes": ["calm"]}, private=True)
    d.desk.verbs = {**d.desk.verbs, "notes": notes}


def test_a_private_verb_replies_only_to_its_response_topic(d: Desk) -> None:
    private_desk(d)
    d.desk.on_command(CommandReceived("notes", json.dumps(body()).encode(), "replies/t/7", b"c"))
    reply, topic, _ = d.b.link.replies[-1]
    assert type(reply) is PrivateReply and reply.ok and topic == "replies/t/7"
    assert d.send("status", body("r2")).ok and type(d.b.link.replies[-1][0]) is Reply


def test_a_private_verb_without_a_response_topic_runs_nothing(d: Desk) -> None:
    private_desk(d)
    code, message = error(d.send("notes", body()))
    assert code == "invalid_payload"
    assert message == (
        "notes replies with clinical text, sent only to an MQTT 5 response topic under "
        "replies/: send the command with one"
    )
    assert d.b.journal.find_reply("r1") is not None, "understood: its refusal is its reply"


@pytest.mark.parametrize("request_id", ["x", "x" * 64])
def test_a_request_id_of_1_to_64_characters_is_echoed_and_recorded(
    d: Desk, request_id: str
) -> None:
    reply = d.send("status", body(request_id))
    assert reply.request_id == request_id
    assert d.b.journal.find_reply(request_id) is not None


def test_a_command_dated_up_to_the_skew_ahead_runs(d: Desk) -> None:
    ahead = d.b.clock.now() + timedelta(seconds=FUTURE_SKEW_S)
    assert d.send("advance", body("r1", sent_at=iso_utc(ahead))).ok
    ahead = d.b.clock.now() + timedelta(seconds=FUTURE_SKEW_S + 1.25)
    reply = d.send("advance", body("r2", sent_at=iso_utc(ahead)))
    assert reply.error is not None
    assert reply.error.details == {"ahead_s": FUTURE_SKEW_S + 1.25, "limit_s": FUTURE_SKEW_S}


def test_a_single_held_refusal_is_journaled_whole_when_the_interval_ends(d: Desk) -> None:
    d.send("confirm", body("r1", item="x"))  # the interval's first: journaled at once
    d.desk.on_command(CommandReceived("fly", json.dumps(body("r2")).encode(), user="dr-kim"))
    assert d.desk.held_refusals == 1
    d.b.clock.advance(COALESCE_S)
    d.desk.flush()
    assert d.rejected()[-1] == {
        "verb": "fly",
        "code": "unknown_verb",
        "request_id": "r2",
        "by": "dr-kim",
        "by_verified": True,
    }
    assert d.desk.held_refusals == 0


def test_held_refusals_are_counted_and_past_the_budget_marked_unanswered(d: Desk) -> None:
    for i in range(ANSWERED_REFUSALS):  # the first journaled at once, the rest held
        d.desk.on_command(CommandReceived("fly", json.dumps(body(f"f{i}")).encode()))
    for i in range(2):  # another code, past the budget: counted, not answered
        d.desk.on_command(CommandReceived("confirm", json.dumps(body(f"c{i}", item="x")).encode()))
    d.b.clock.advance(COALESCE_S)
    d.desk.flush()
    held = {e["code"]: e for e in d.rejected()[1:]}
    assert held["unknown_verb"]["count"] == ANSWERED_REFUSALS - 1
    assert "unanswered" not in held["unknown_verb"]
    assert (held["invalid_payload"]["count"], held["invalid_payload"]["unanswered"]) == (2, 2)
