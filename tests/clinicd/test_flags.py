"""The schedule flags of a course (the seed: six infusions, twice weekly, then weekly)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from controller.models import iso_utc
from mqtt_bridge.clinicd.config import CourseSection
from mqtt_bridge.clinicd.flags import course_flags
from tests.clinicd.support import T0

SEED_DAYS = [0, 3.5, 7, 10.5, 17.5, 24.5]  # twice weekly for two weeks, then weekly


def sessions(numbers: list[Any], days: list[float], ended: bool = True) -> list[dict[str, Any]]:
    return [
        {
            "session_id": f"s{i}",
            "session_number": n,
            "started_at": iso_utc(T0 + timedelta(days=d)),
            "ended_at": iso_utc(T0 + timedelta(days=d, hours=3)) if ended else None,
        }
        for i, (n, d) in enumerate(zip(numbers, days, strict=True), start=1)
    ]


def codes(flags: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(f["session_id"], f["code"]) for f in flags]


def test_the_seeds_course_is_complete_with_the_termination_discussion() -> None:
    flags = course_flags(sessions([1, 2, 3, 4, 5, 6], SEED_DAYS), CourseSection())
    assert codes(flags) == [
        ("s5", "termination_discussion"),
        ("s6", "termination_discussion"),
        ("s6", "course_complete"),
    ]
    assert "session 6 of 6" in flags[-1]["message"]


def test_repeated_out_of_order_too_soon_and_late() -> None:
    flags = course_flags(sessions([1, 2, 2, 4, 3], [0, 1, 4, 16, 20], ended=False), CourseSection())
    assert codes(flags) == [
        ("s2", "too_soon"),
        ("s3", "number_repeated"),
        ("s4", "number_out_of_order"),
        ("s4", "late"),
        ("s5", "number_out_of_order"),
    ]
    assert "24 h after session 1" in flags[0]["message"]
    assert "12.0 days" in flags[3]["message"]


def test_settings_change_the_limits_and_maintenance_is_not_numbered() -> None:
    course = CourseSection(sessions=4, min_gap_hours=12, max_gap_days=30)
    flags = course_flags(sessions([1, 2, "maintenance", 3, 4], [0, 1, 2, 25, 40]), course)
    assert codes(flags) == [
        ("s4", "termination_discussion"),
        ("s5", "termination_discussion"),
        ("s5", "course_complete"),
    ]
    assert course_flags(sessions([2], [0]), CourseSection())[0]["code"] == "number_out_of_order"
    # Not complete until the last session has ended.
    open_last = sessions([1, 2, 3, 4, 5, 6], SEED_DAYS)
    open_last[-1]["ended_at"] = None
    assert "course_complete" not in [c for _, c in codes(course_flags(open_last, CourseSection()))]
