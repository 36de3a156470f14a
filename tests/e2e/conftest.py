"""Fixtures for end-to-end tests: the real roomd process against a real broker."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.broker import Broker
from tests.support.daemon import RoomProcess
from tests.support.probe import Probe


@pytest.fixture
def make_room(tmp_path: Path, broker: Broker) -> Iterator[Callable[..., tuple[RoomProcess, Probe]]]:
    """Start ``roomd --simulate`` and a probe subscribed to its root; both cleaned up."""
    started: list[tuple[RoomProcess, Probe]] = []

    def make(**kw: object) -> tuple[RoomProcess, Probe]:
        room = RoomProcess(tmp_path, broker.port, **kw)  # type: ignore[arg-type]
        probe = Probe(broker.port, room.root)
        room.start()
        started.append((room, probe))
        probe.wait_for(
            lambda: probe.retained.get(f"{room.root}/status") == b"online", 20, "room online"
        )
        return room, probe

    yield make
    for room, probe in started:
        room.stop()
        probe.close()
