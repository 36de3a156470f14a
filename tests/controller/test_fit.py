"""Events and replies cut to fit the broker's message limit, whatever the input echoed."""

from __future__ import annotations

import json
import typing
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controller.event_data import EVENT_DATA
from controller.fit import (
    CUT,
    ENVELOPE_BYTES,
    EVENT_BUDGET,
    MAX_REASONS,
    MAX_TEXT,
    REPLY_BUDGET,
    TooLarge,
    clip,
    encoded_size,
    fit_event,
    fit_reply,
    summarise,
)
from controller.models import ErrorBody, ErrorCode, Reply


def test_clip_marks_what_it_cut() -> None:
    assert clip("short") == "short"
    cut = clip("x" * 1000)
    assert len(cut) == MAX_TEXT and cut.endswith(CUT)


def test_summarise_counts_what_it_leaves_out() -> None:
    assert summarise(["a", "b"]) == ["a", "b"]
    many = summarise([f"playlist.{i}: bad" for i in range(1500)])
    assert len(many) == MAX_REASONS + 1
    assert many[-1] == f"… and {1500 - MAX_REASONS} more problems"
    assert summarise(["a"] * (MAX_REASONS + 1))[-1] == "… and 1 more problem"


def test_an_event_that_fits_is_left_as_it_is() -> None:
    data = {"reasons": ["x" * 1000]}
    assert fit_event("plan_rejected", data) is data


def test_an_oversized_event_is_shrunk_under_the_budget() -> None:
    data = {"reasons": ["y" * 5000 for _ in range(100)], "note": "z" * 70000}
    small = fit_event("plan_rejected", data)
    assert encoded_size(small) < EVENT_BUDGET
    assert small["note"].endswith(CUT) and small["reasons"][-1] == "… and 80 more"


DEEP = {
    f"a{i}": {f"b{j}": {f"c{k}": "x" * 400 for k in range(30)} for j in range(30)}
    for i in range(30)
}
"""A tree that is still megabytes once every level is cut to 20 and every text to 300."""


def test_an_event_that_cannot_be_shrunk_enough_is_refused() -> None:
    with pytest.raises(TooLarge, match=r"event 'x' is .* bytes even shrunk"):
        fit_event("x", DEEP)


def error_reply(message: str, details: dict[str, object] | None) -> Reply:
    body = ErrorBody(code="invalid_payload", message=message, details=details)
    return Reply(request_id="r1", verb="v" * 64, ok=False, error=body)


def test_a_reply_that_fits_is_left_as_it_is() -> None:
    reply = error_reply("field 'x': bad", {"fields": {"x": "bad"}})
    assert fit_reply(reply) is reply


def test_a_reply_echoing_2000_unknown_fields_keeps_its_first_ones() -> None:
    fields = {f"f{i:05d}" + "q" * 40: "Extra inputs are not permitted" for i in range(2000)}
    reply = error_reply("field 'f00000': Extra inputs are not permitted", {"fields": fields})
    assert len(reply.to_json()) > REPLY_BUDGET
    small = fit_reply(reply)
    assert len(small.to_json()) <= REPLY_BUDGET
    assert small.error is not None and small.error.message.startswith("field 'f00000'")
    assert small.error.details is not None
    kept = small.error.details["fields"]
    assert list(kept)[:MAX_REASONS] == list(fields)[:MAX_REASONS]
    assert kept[CUT] == f"and {2000 - MAX_REASONS} more"


def test_a_reply_whose_details_cannot_fit_loses_them_and_says_so() -> None:
    small = fit_reply(error_reply("m" * 70000, DEEP))
    assert len(small.to_json()) <= REPLY_BUDGET
    assert small.error is not None and small.error.details is None
    assert small.error.message.endswith("(details left out: too large to send)")


def test_an_oversized_result_is_replaced_by_a_note() -> None:
    big = Reply(request_id="r", verb="events", ok=True, result={"x": "y" * 70000})
    small = fit_reply(big)
    assert small.ok and small.result is not None and small.result["truncated"] is True
    assert json.loads(small.to_json())["result"]["bytes"] == len(big.to_json())


# --- the bound, over every event type and every reply (hypothesis) -------------------------

SIZE = st.integers(min_value=0, max_value=90_000)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | SIZE.map(lambda n: "w" * n),
    lambda inner: st.lists(inner, max_size=40) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=60,
)
"""JSON values with texts up to 90 KB: cheap to make, large enough to break any budget."""


def inflate(value: Any, times: int) -> Any:
    """``value`` with every text ``times`` as long and every list ``times`` as long."""
    if isinstance(value, str):
        return value * times
    if isinstance(value, list):
        return [inflate(v, times) for v in value] * times
    if isinstance(value, dict):
        return {k: inflate(v, times) for k, v in value.items()}
    return value


@pytest.mark.parametrize("type_", sorted(EVENT_DATA))
@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(times=st.integers(min_value=1, max_value=2000), extra=JSON)
def test_every_event_type_fits_or_is_refused(type_: str, times: int, extra: Any) -> None:
    data = {**inflate(EVENT_DATA[type_].example, times), "extra": extra}
    try:
        fitted = fit_event(type_, data)
    except TooLarge:
        return
    assert encoded_size(fitted) + ENVELOPE_BYTES <= EVENT_BUDGET


@pytest.mark.parametrize("code", typing.get_args(ErrorCode))
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(message=SIZE.map(lambda n: "m" * n), details=JSON, verb=SIZE.map(lambda n: "v" * n))
def test_every_reply_fits(code: str, message: str, details: Any, verb: str) -> None:
    body = ErrorBody(code=code, message=message, details={"d": details})  # type: ignore[arg-type]
    reply = Reply(request_id="r" * 64, verb=verb, ok=False, error=body, by_declared="x" * 64)
    assert len(fit_reply(reply).to_json()) <= REPLY_BUDGET
    ok = Reply(request_id="r", verb=verb, ok=True, result={"d": details, "m": message})
    assert len(fit_reply(ok).to_json()) <= REPLY_BUDGET
