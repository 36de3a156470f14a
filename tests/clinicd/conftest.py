"""Fixtures of the archive's tests: the real clinicd process against the real broker."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.clinicd.support import ArchiveClient, ArchiveProcess
from tests.support.broker import Broker


@pytest.fixture
def archive(tmp_path: Path, broker: Broker) -> Iterator[Callable[..., ArchiveProcess]]:
    """Start clinicd (stopped after the test); call with extra TOML for its config."""
    started: list[ArchiveProcess] = []

    def make(extra_toml: str = "") -> ArchiveProcess:
        proc = ArchiveProcess(tmp_path / "archive", broker.port, extra_toml)
        proc.start()
        started.append(proc)
        return proc

    yield make
    for proc in started:
        proc.stop()


@pytest.fixture
def clinician(broker: Broker) -> Iterator[ArchiveClient]:
    """A client of the archive's verbs."""
    client = ArchiveClient(broker.port)
    yield client
    client.close()
