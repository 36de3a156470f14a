"""Every event and reply the room sends fits the broker's message limit, by construction.

The clinic broker refuses a message over ``message_size_limit`` (65,536 bytes) and drops the
room's connection; an event the outbox re-sends at every reconnect would then cut the room
off its clinic for good. What echoes a sender's input is therefore bounded where it is made:
reasons are summarised past ``MAX_REASONS``, long texts cut with a marker, and a reply whose
``details`` would not fit loses them (its message says so). ``fit_event`` is the last guard
before an event is journaled: it measures the encoded event and shrinks what can be shrunk.
"""

from __future__ import annotations

import json
from typing import Any

from controller.models import MAX_PAYLOAD_BYTES, Reply

ENVELOPE_BYTES = 512
"""Room for an event's envelope (seq, ts, session_id, type) around its data."""
EVENT_BUDGET = MAX_PAYLOAD_BYTES - 4096
"""What one event's data may take once encoded (a margin under the broker's limit)."""
REPLY_BUDGET = MAX_PAYLOAD_BYTES - 1024
"""What one encoded reply may take."""
MAX_REASONS = 20
"""Reasons listed one by one; past this many, the rest are counted."""
MAX_TEXT = 300
"""A text that echoes input is cut to this many characters."""
CUT = "…"
"""Ends a text that was cut."""


class TooLarge(ValueError):
    """An event that cannot be brought under the limit without losing its meaning."""


def encoded_size(value: Any) -> int:
    """The bytes ``value`` takes as the room's compact UTF-8 JSON."""
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())


def clip(text: str, limit: int = MAX_TEXT) -> str:
    """``text`` cut to ``limit`` characters, marked when cut."""
    return text if len(text) <= limit else text[: limit - 1] + CUT


def summarise(reasons: list[str], limit: int = MAX_REASONS) -> list[str]:
    """The first ``limit`` reasons (each clipped), then one line counting the rest."""
    head = [clip(r) for r in reasons[:limit]]
    rest = len(reasons) - len(head)
    return [*head, f"… and {rest} more problem{'s' if rest != 1 else ''}"] if rest else head


def _shrink(value: Any) -> Any:
    """Long texts clipped and long lists summarised, all the way down."""
    if isinstance(value, str):
        return clip(value)
    if isinstance(value, list):
        items = [_shrink(v) for v in value[:MAX_REASONS]]
        rest = len(value) - len(items)
        if rest and all(isinstance(v, str) for v in items):
            items.append(f"… and {rest} more")
        return items
    if isinstance(value, dict):
        kept = {clip(str(k), 64): _shrink(v) for k, v in list(value.items())[:MAX_REASONS]}
        if len(value) > len(kept):
            kept[CUT] = f"and {len(value) - len(kept)} more"
        return kept
    return value


def fit_event(type_: str, data: dict[str, Any], budget: int = EVENT_BUDGET) -> dict[str, Any]:
    """``data`` as is when it fits; else with its long texts and lists shrunk; else TooLarge.

    Called before an event is journaled: an event the broker would refuse must never reach
    the outbox.
    """
    if encoded_size(data) + ENVELOPE_BYTES <= budget:
        return data
    small = _shrink(data)
    size = encoded_size(small) + ENVELOPE_BYTES
    if size > budget:
        raise TooLarge(f"event '{type_}' is {size} bytes even shrunk; the limit is {budget}")
    assert isinstance(small, dict)
    return small


def fit_reply(reply: Reply, budget: int = REPLY_BUDGET) -> Reply:
    """``reply`` as is when it fits; else its echoes shrunk, and at worst without details.

    A reply the broker refused would disconnect the room and be lost anyway; a shorter one
    still tells the sender what went wrong.
    """
    if len(reply.to_json()) <= budget:
        return reply
    verb = clip(reply.verb, 64)
    error = reply.error
    if error is not None:
        details = _shrink(error.details) if error.details is not None else None
        error = error.model_copy(update={"message": clip(error.message), "details": details})
        small = reply.model_copy(update={"verb": verb, "error": error})
        if len(small.to_json()) <= budget:
            return small
        error = error.model_copy(
            update={
                "message": clip(error.message, MAX_TEXT - 60)
                + " (details left out: too large to send)",
                "details": None,
            }
        )
        return reply.model_copy(update={"verb": verb, "error": error})
    result = {
        "truncated": True,
        "note": "the result was too large to send",
        "bytes": len(reply.to_json()),
    }
    return reply.model_copy(update={"verb": verb, "result": result})
