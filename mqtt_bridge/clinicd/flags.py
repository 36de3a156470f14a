"""The course's schedule flags, from the seed: six infusions over four weeks (twice weekly for
two weeks, then weekly), the end of the course discussed explicitly in the last two."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from controller.models import parse_utc
from mqtt_bridge.clinicd.config import CourseSection


def flag(session: dict[str, Any], code: str, message: str) -> dict[str, Any]:
    """One flag of the course."""
    return {"session_id": session["session_id"], "code": code, "message": message}


def _gap_flags(
    prev: dict[str, Any], cur: dict[str, Any], course: CourseSection
) -> list[dict[str, Any]]:
    """``too_soon`` / ``late``: start to start, between consecutive numbered sessions."""
    if not (prev.get("started_at") and cur.get("started_at")):
        return []
    hours = (parse_utc(cur["started_at"]) - parse_utc(prev["started_at"])).total_seconds() / 3600
    n, p = cur["session_number"], prev["session_number"]
    if hours < course.min_gap_hours:
        return [
            flag(
                cur,
                "too_soon",
                f"session {n} started {hours:.0f} h after session {p} "
                f"(at least {course.min_gap_hours:g} h apart)",
            )
        ]
    if hours > course.max_gap_days * 24:
        return [
            flag(
                cur,
                "late",
                f"session {n} started {hours / 24:.1f} days after session {p} "
                f"(at most {course.max_gap_days:g} days apart)",
            )
        ]
    return []


def course_flags(sessions: Sequence[dict[str, Any]], course: CourseSection) -> list[dict[str, Any]]:
    """Every flag of a patient's sessions (in time order); maintenance sessions are not
    numbered, so only the numbered ones count for order, gaps and completion."""
    flags: list[dict[str, Any]] = []
    seen: set[int] = set()
    prev: dict[str, Any] | None = None
    last = course.sessions
    for s in sessions:
        n = s.get("session_number")
        if not isinstance(n, int) or isinstance(n, bool):
            continue
        if n in seen:
            flags.append(flag(s, "number_repeated", f"session number {n} was already given"))
        else:
            expected = 1 if prev is None else prev["session_number"] + 1
            if n != expected:
                flags.append(
                    flag(s, "number_out_of_order", f"session {n} where {expected} was expected")
                )
        if prev is not None:
            flags += _gap_flags(prev, s, course)
        if n in (last - 1, last) and n >= 1:
            flags.append(
                flag(
                    s,
                    "termination_discussion",
                    f"session {n} of {last}: discuss the end of the course explicitly",
                )
            )
        if n == last and s.get("ended_at") and n not in seen:
            flags.append(flag(s, "course_complete", f"course complete: session {n} of {last}"))
        seen.add(n)
        prev = s
    return flags
