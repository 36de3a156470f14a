"""The wire payloads: timestamps, session plans, replies, commands."""

from __future__ import annotations

import json
import re
import typing
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import ValidationError

from controller.errors import InvalidPayload
from controller.models import (
    COMMANDS,
    MAX_INT_DIGITS,
    Alarm,
    AlarmSilence,
    Command,
    ErrorBody,
    ErrorCode,
    Event,
    EventsQuery,
    Reply,
    SessionPlan,
    iso_utc,
    parse_json_object,
    parse_utc,
    validate_command,
)

ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
BASE = {"request_id": "r-1", "by": "dr-lee"}


def plan(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"session_id": "s-001", "patient_ref": "P-7F3A", "session_number": 1}
    data.update(overrides)
    return data


def field_errors(exc: ValidationError) -> dict[str, str]:
    return {".".join(str(p) for p in e["loc"]): e["type"] for e in exc.errors()}


# --- timestamps -----------------------------------------------------------------------------


def test_iso_utc_has_milliseconds_and_z() -> None:
    ts = datetime(2026, 1, 5, 9, 7, 3, 123_987, tzinfo=UTC)
    text = iso_utc(ts)
    assert ISO.match(text), text
    assert text == "2026-01-05T09:07:03.123Z"  # truncated, not rounded


def test_iso_utc_whole_second_keeps_the_milliseconds() -> None:
    assert iso_utc(datetime(2026, 1, 5, 9, 0, tzinfo=UTC)).endswith(":00.000Z")


def test_iso_utc_converts_other_zones_and_reads_naive_as_utc() -> None:
    montreal = timezone(timedelta(hours=-5))
    assert iso_utc(datetime(2026, 1, 5, 4, 0, 0, 5000, tzinfo=montreal)) == (
        "2026-01-05T09:00:00.005Z"
    )
    assert iso_utc(datetime(2026, 1, 5, 9, 0)) == "2026-01-05T09:00:00.000Z"


@pytest.mark.parametrize(
    "ts",
    [
        datetime(2026, 1, 5, 9, 0, 0, 1000, tzinfo=UTC),
        datetime(1999, 12, 31, 23, 59, 59, 999_000, tzinfo=UTC),
        datetime(2030, 6, 1, 0, 0, tzinfo=UTC),
    ],
)
def test_parse_utc_round_trips(ts: datetime) -> None:
    back = parse_utc(iso_utc(ts))
    assert back == ts
    assert back.utcoffset() == timedelta(0)
    assert iso_utc(back) == iso_utc(ts)


def test_parse_utc_drops_below_milliseconds_only() -> None:
    ts = datetime(2026, 1, 5, 9, 0, 0, 456_789, tzinfo=UTC)
    assert parse_utc(iso_utc(ts)) == ts.replace(microsecond=456_000)


def test_payload_timestamps_serialise_the_contract_way() -> None:
    event = Event(
        seq=7, ts=datetime(2026, 1, 5, 9, 0, 0, 42_000, tzinfo=UTC), session_id=None, type="x"
    )
    body = json.loads(event.to_json())
    assert body == {
        "seq": 7,
        "ts": "2026-01-05T09:00:00.042Z",
        "session_id": None,
        "type": "x",
        "data": {},
    }


@pytest.mark.parametrize("mode", ["serialization", "validation"])
def test_timestamps_are_date_times_in_the_schema_both_ways(mode: str) -> None:
    # A subscriber's code generator types `ts` from the schema: a bare string loses that.
    props = Event.model_json_schema(mode=mode)["properties"]  # type: ignore[arg-type]
    assert (props["ts"]["type"], props["ts"]["format"]) == ("string", "date-time")
    alarm = Alarm.model_json_schema(mode=mode)["properties"]  # type: ignore[arg-type]
    assert {"type": "string", "format": "date-time"} in alarm["silenced_until"]["anyOf"]


# --- SessionPlan ----------------------------------------------------------------------------


@pytest.mark.parametrize("number", [1, 3, 6, "maintenance"])
def test_session_number_accepted(number: int | str) -> None:
    assert SessionPlan.model_validate(plan(session_number=number)).session_number == number


# JSON true is not a session number (pydantic's lax mode would read it as 1).
@pytest.mark.parametrize("number", [0, 7, -1, 100, "booster", "", True, False])
def test_session_number_refused(number: int | str) -> None:
    with pytest.raises(ValidationError) as info:
        SessionPlan.model_validate(plan(session_number=number))
    assert all(k.startswith("session_number") for k in field_errors(info.value))


@pytest.mark.parametrize("ref", ["John Smith", "P 7F3A", "P-7F3A\t", "a\nb"])
def test_patient_ref_with_whitespace_refused(ref: str) -> None:
    with pytest.raises(ValidationError) as info:
        SessionPlan.model_validate(plan(patient_ref=ref))
    assert "pseudonym" in str(info.value)


def test_patient_ref_empty_or_too_long_refused() -> None:
    for ref in ("", "x" * 65):
        with pytest.raises(ValidationError):
            SessionPlan.model_validate(plan(patient_ref=ref))


def test_unknown_plan_field_refused() -> None:
    with pytest.raises(ValidationError) as info:
        SessionPlan.model_validate(plan(patient_name="Jane Doe"))
    assert field_errors(info.value) == {"patient_name": "extra_forbidden"}


def test_unknown_override_field_refused() -> None:
    with pytest.raises(ValidationError) as info:
        SessionPlan.model_validate(plan(protocol={"infusion_minuets": 40}))
    assert field_errors(info.value) == {"protocol.infusion_minuets": "extra_forbidden"}


def test_plan_overrides_keep_config_bounds() -> None:
    with pytest.raises(ValidationError):
        SessionPlan.model_validate(plan(protocol={"nibp_interval_minutes": 5}))
    ok = SessionPlan.model_validate(plan(protocol={"nibp_interval_minutes": 15}))
    assert ok.protocol.nibp_interval_minutes == 15


def test_playlist_as_a_name_or_a_list() -> None:
    named = SessionPlan.model_validate(plan(playlist="calm-evening"))
    assert named.playlist == "calm-evening"
    listed = SessionPlan.model_validate(plan(playlist=["a.ogg", "b/c.ogg"]))
    assert listed.playlist == ["a.ogg", "b/c.ogg"]
    assert SessionPlan.model_validate(plan()).playlist == []


@pytest.mark.parametrize("bad", [3, ["a.ogg", ""], [1, 2], {"name": "x"}])
def test_playlist_of_other_shapes_refused(bad: Any) -> None:
    with pytest.raises(ValidationError):
        SessionPlan.model_validate(plan(playlist=bad))


def test_plan_defaults_and_frozen() -> None:
    p = SessionPlan.model_validate(plan())
    assert p.music_mode == "music"
    assert p.guidance == "none"
    with pytest.raises(ValidationError):
        p.session_id = "other"  # type: ignore[misc]


# --- Reply ----------------------------------------------------------------------------------


def test_ok_reply_omits_error() -> None:
    body = json.loads(Reply(request_id="r-1", verb="status", ok=True, result={"a": 1}).to_json())
    assert body == {"request_id": "r-1", "verb": "status", "ok": True, "result": {"a": 1}}


def test_error_reply_omits_result() -> None:
    reply = Reply(
        request_id="r-2",
        verb="advance",
        ok=False,
        error=ErrorBody(code="gate_not_met", message="safety gate not met"),
    )
    body = json.loads(reply.to_json())
    assert body == {
        "request_id": "r-2",
        "verb": "advance",
        "ok": False,
        "error": {"code": "gate_not_met", "message": "safety gate not met"},
    }


def test_error_codes_are_the_contracts() -> None:
    with pytest.raises(ValidationError):
        ErrorBody(code="not_a_code", message="x")  # type: ignore[arg-type]
    assert set(typing.get_args(ErrorCode)) == {
        "invalid_payload",
        "unknown_verb",
        "invalid_state",
        "gate_not_met",
        "device_unavailable",
        "duplicate",
        "internal",
    }


# --- commands -------------------------------------------------------------------------------

REQUIRED: dict[str, dict[str, Any]] = {
    "confirm": {"item": "consent"},
    "stop_infusion": {"reason": "nausea"},
    "emergency": {"reason": "desaturation"},
    "end_session": {"reason": "patient asked to stop"},
    "music": {"action": "pause"},
    "alarm_ack": {"alarm_id": "a-1"},
    "alarm_silence": {"seconds": 60},
    "note": {"kind": "intentions", "text": "to let go"},
    "record_dose": {"weight_kg": 70, "dose_mg_per_kg": 0.5, "total_mg": 35},
    "side_effects": {"items": []},
    "adverse_event": {"kind": "vomiting", "severity": "mild", "action": "ondansetron"},
}


@pytest.mark.parametrize("verb", sorted(COMMANDS))
def test_every_command_accepts_its_minimal_payload(verb: str) -> None:
    command = COMMANDS[verb].model_validate({**BASE, **REQUIRED.get(verb, {})})
    assert isinstance(command, Command)
    assert command.request_id == "r-1" and command.by == "dr-lee"


@pytest.mark.parametrize("verb", sorted(COMMANDS))
def test_every_command_refuses_unknown_fields(verb: str) -> None:
    with pytest.raises(ValidationError) as info:
        COMMANDS[verb].model_validate({**BASE, **REQUIRED.get(verb, {}), "bogus": 1})
    assert field_errors(info.value) == {"bogus": "extra_forbidden"}


@pytest.mark.parametrize("verb", sorted(COMMANDS))
def test_every_command_needs_request_id_and_by(verb: str) -> None:
    with pytest.raises(ValidationError) as info:
        COMMANDS[verb].model_validate(REQUIRED.get(verb, {}))
    errors = field_errors(info.value)
    assert errors["request_id"] == "missing"
    assert errors["by"] == "missing"


def test_request_id_at_most_64_chars() -> None:
    assert Command.model_validate({**BASE, "request_id": "x" * 64}).request_id == "x" * 64
    with pytest.raises(ValidationError):
        Command.model_validate({**BASE, "request_id": "x" * 65})
    with pytest.raises(ValidationError):
        Command.model_validate({**BASE, "request_id": ""})


@pytest.mark.parametrize("seconds", [1, 60, 120])
def test_alarm_silence_up_to_120_s(seconds: float) -> None:
    assert AlarmSilence.model_validate({**BASE, "seconds": seconds}).seconds == seconds


@pytest.mark.parametrize("seconds", [0, -5, 120.5, 121, 600])
def test_alarm_silence_beyond_bounds_refused(seconds: float) -> None:
    with pytest.raises(ValidationError) as info:
        AlarmSilence.model_validate({**BASE, "seconds": seconds})
    assert list(field_errors(info.value)) == ["seconds"]


def test_events_query_limit_bounds_and_defaults() -> None:
    q = EventsQuery.model_validate(BASE)
    assert (q.since_seq, q.limit) == (1, 1000)
    assert EventsQuery.model_validate({**BASE, "limit": 1000}).limit == 1000
    for bad in (0, 1001, 10_000):
        with pytest.raises(ValidationError) as info:
            EventsQuery.model_validate({**BASE, "limit": bad})
        assert list(field_errors(info.value)) == ["limit"]
    with pytest.raises(ValidationError):
        EventsQuery.model_validate({**BASE, "since_seq": -1})


def test_command_field_bounds() -> None:
    music = COMMANDS["music"]
    with pytest.raises(ValidationError):
        music.model_validate({**BASE, "action": "volume", "level": 1.5})
    with pytest.raises(ValidationError):
        music.model_validate({**BASE, "action": "dance"})
    with pytest.raises(ValidationError):
        COMMANDS["confirm"].model_validate({**BASE, "item": "payment"})
    with pytest.raises(ValidationError):
        COMMANDS["record_vitals"].model_validate({**BASE, "spo2": 101})
    with pytest.raises(ValidationError):
        COMMANDS["stop_infusion"].model_validate({**BASE, "reason": ""})


# --- hostile input (issue 15): refused naming the field, never an internal error -----------


@pytest.mark.parametrize(
    ("verb", "args", "field"),
    [
        ("advance", {"override": {"reason": "{}"}}, "override.reason"),
        ("start_infusion", {"override": {"reason": "{}"}}, "override.reason"),
        ("advance", {"reason": "{}"}, "reason"),
        ("stop_infusion", {"reason": "{}"}, "reason"),
        ("emergency", {"reason": "{}"}, "reason"),
        ("end_session", {"reason": "{}"}, "reason"),
    ],
)
@pytest.mark.parametrize("blank", [" ", "\u200b", ".", "\ufeff", " - ", "\u3000"])
def test_reasons_must_hold_words(verb: str, args: dict[str, Any], field: str, blank: str) -> None:
    payload = json.loads(json.dumps(args).replace('"{}"', json.dumps(blank)))
    with pytest.raises(ValidationError) as info:
        COMMANDS[verb].model_validate({**BASE, **payload})
    assert field in field_errors(info.value)
    good = json.loads(json.dumps(args).replace('"{}"', '"line checked twice"'))
    COMMANDS[verb].model_validate({**BASE, **good})


@pytest.mark.parametrize("verb", ["stop_infusion", "emergency", "end_session"])
def test_reasons_are_required_where_the_contract_says(verb: str) -> None:
    with pytest.raises(ValidationError) as info:
        COMMANDS[verb].model_validate(BASE)
    assert field_errors(info.value) == {"reason": "missing"}


def test_sent_at_without_a_time_zone_is_refused_naming_it() -> None:
    with pytest.raises(ValidationError) as info:
        Command.model_validate({**BASE, "sent_at": "2026-01-05T09:00:00"})
    assert list(field_errors(info.value)) == ["sent_at"]
    ok = Command.model_validate({**BASE, "sent_at": "2026-01-05T10:00:00+01:00"})
    assert ok.sent_at == datetime(2026, 1, 5, 9, tzinfo=UTC)


def test_since_seq_beyond_the_journals_integers_is_refused() -> None:
    EventsQuery.model_validate({**BASE, "since_seq": 2**63 - 1})
    with pytest.raises(ValidationError) as info:
        EventsQuery.model_validate({**BASE, "since_seq": 2**63})
    assert list(field_errors(info.value)) == ["since_seq"]


@pytest.mark.parametrize("digits", [MAX_INT_DIGITS + 1, 4301, 20000])
def test_a_huge_integer_literal_is_refused_naming_its_field(digits: int) -> None:
    raw = b'{"request_id": "r", "by": "a", "since_seq": ' + b"9" * digits + b"}"
    obj = parse_json_object(raw)
    with pytest.raises(InvalidPayload, match="field 'since_seq'"):
        validate_command(EventsQuery, obj)
    negative = parse_json_object(b'{"seconds": -' + b"1" * digits + b"}")
    with pytest.raises(ValidationError):
        AlarmSilence.model_validate({**BASE, **negative})


def test_integers_up_to_the_limit_are_numbers() -> None:
    obj = parse_json_object(b'{"n": ' + b"9" * MAX_INT_DIGITS + b"}")
    assert obj == {"n": int("9" * MAX_INT_DIGITS)}


def test_reply_attribution_is_absent_unless_proven() -> None:
    plain = Reply(request_id="r", verb="status", ok=True, result={})
    assert b"by_" not in plain.to_json()
    proven = Reply(request_id="r", verb="status", ok=True, result={}, by_verified=True)
    assert json.loads(proven.to_json())["by_verified"] is True
    with pytest.raises(ValidationError):
        Reply(request_id="r", verb="status", ok=True, by_verified=False)  # type: ignore[arg-type]
