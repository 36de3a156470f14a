"""Fixtures for the core's tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.controller.harness import Harness


@pytest.fixture
def room(tmp_path: Path) -> Iterator[Harness]:
    """A room on fakes, online, with every device present."""
    h = Harness(tmp_path)
    yield h
    h.close()
