"""Stalls of the core loop: gaps between its turns past the threshold."""

from __future__ import annotations

import pytest

from controller.stall import STALL_S, StallWatch


def test_regular_turns_are_no_stall() -> None:
    watch = StallWatch()
    assert [watch.turn(t) for t in (100.0, 101.0, 102.0, 102.0 + STALL_S)] == [None] * 4


def test_a_gap_over_the_threshold_is_answered_once() -> None:
    watch = StallWatch(5.0)
    watch.turn(10.0)
    assert watch.turn(40.25) == 30.25
    assert watch.turn(41.0) is None


def test_the_threshold_must_be_positive() -> None:
    with pytest.raises(ValueError, match="threshold_s"):
        StallWatch(0)
