"""A throwaway oximeter driver that declares no simulated monitor."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from hw.vitals.masimo import MasimoAscii
from hw.vitals.registry import OXIMETERS, add_oximeter


@pytest.fixture
def throwaway_oximeter() -> Iterator[str]:
    """The name of an oximeter driver registered with ``encoder=None`` for this test."""
    name = "test_no_monitor"
    add_oximeter(name, MasimoAscii, encoder=None)
    yield name
    OXIMETERS.remove(name)
