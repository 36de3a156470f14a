"""Events and replies cut to fit the broker's message limit, whatever the input echoed."""

from __future__ import annotations

import json

import pytest

from controller.fit import (
    CUT,
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
from controller.models import ErrorBody, Reply


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
