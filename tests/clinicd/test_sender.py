"""Store-and-forward of the sessions' ORU^R01 to a stand-in EHR (hl7apy's MLLP server):
queued once per ended session, retried with backoff until AA, AE/AR kept and retried."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from mqtt_bridge.clinicd.config import Hl7Section
from mqtt_bridge.clinicd.sender import Hl7Sender
from mqtt_bridge.clinicd.store import Store
from tests.clinicd.ehr import Ehr
from tests.clinicd.support import T0, session_events
from tests.clinicd.test_mllp import valid_message
from tests.support.broker import free_port


class Clock:
    """The sender's wall clock, moved by the test."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def ehr() -> Iterator[Ehr]:
    e = Ehr()
    yield e
    e.close()


def sender(port: int, tmp_path: Path, clock: Clock) -> Hl7Sender:
    section = Hl7Section(
        host="127.0.0.1", port=port, sending_facility="MTL", assigning_authority="MTLCLINIC",
        timeout_s=3, retry_min_s=10, retry_max_s=60,
    )  # fmt: skip
    return Hl7Sender(section, tmp_path / "a.sqlite", now=clock)


def test_an_ended_session_is_queued_once_with_the_clinics_identity(
    tmp_path: Path, ehr: Ehr
) -> None:
    clock = Clock()
    s = sender(ehr.port, tmp_path, clock)
    store = Store(s.db_path)
    events = session_events("s1", 1)
    store.add_events("room-3", events[:-1])
    assert s.enqueue_ended(store) == 0  # not ended yet
    store.add_events("room-3", events)
    assert s.enqueue_ended(store) == 1
    assert s.enqueue_ended(store) == 0
    row = store.message("s1")
    assert row is not None and row.state == "pending"
    # MSH-3 is the room's device (its EUI-64), MSH-4 the clinic's facility.
    assert re.search(r"^MSH\|\^~\\&\|ROOMD\^[0-9A-F]{16}\^EUI-64\|MTL\|", row.message)
    assert "P-1^^^MTLCLINIC^ANON" in row.message
    assert "|room-3|" in row.message  # PV1-3: the room it ran in


def test_a_backlog_is_queued_a_turn_at_a_time(tmp_path: Path, ehr: Ehr) -> None:
    """Many ended sessions (HL7 newly configured on a full archive) are queued ``limit`` per
    call, so that the worker's turn, and the ingest waiting on it, stays short."""
    clock = Clock()
    s = sender(ehr.port, tmp_path, clock)
    store = Store(s.db_path)
    seq = 1
    for i in range(5):
        events = session_events(f"s{i}", i + 1, first_seq=seq)
        store.add_events("room-3", events)
        seq = events[-1].seq + 1
    assert [s.enqueue_ended(store, limit=2) for _ in range(4)] == [2, 2, 1, 0]
    assert all(store.message(f"s{i}") is not None for i in range(5))


def test_accepted_once_then_never_again(tmp_path: Path, ehr: Ehr) -> None:
    clock = Clock()
    s = sender(ehr.port, tmp_path, clock)
    store = Store(s.db_path)
    store.enqueue_message("s1", "room-3", valid_message(), T0)
    assert s.send_due(store) == 1
    row = store.message("s1")
    assert row is not None and (row.state, row.ack_code, row.attempts) == ("accepted", "AA", 1)
    clock.now += timedelta(days=1)
    assert s.send_due(store) == 0
    assert ehr.answers == ["AA"]


def test_refusals_are_kept_and_retried_with_backoff(tmp_path: Path, ehr: Ehr) -> None:
    clock = Clock()
    s = sender(ehr.port, tmp_path, clock)
    store = Store(s.db_path)
    store.enqueue_message("s1", "room-3", valid_message(), T0)
    ehr.answer = "AR"
    assert s.send_due(store) == 1
    row = store.message("s1")
    assert row is not None and (row.state, row.ack_code) == ("refused", "AR")
    clock.now += timedelta(seconds=9)
    assert s.send_due(store) == 0  # backoff: 10 s
    clock.now += timedelta(seconds=1)
    assert s.send_due(store) == 1  # retried; next wait 20 s
    clock.now += timedelta(seconds=19)
    assert s.send_due(store) == 0
    ehr.answer = None
    clock.now += timedelta(seconds=1)
    assert s.send_due(store) == 1
    row = store.message("s1")
    assert row is not None and (row.state, row.attempts) == ("accepted", 3)
    assert ehr.answers == ["AR", "AR", "AA"]


def test_no_receiver_means_pending_until_it_answers(tmp_path: Path) -> None:
    clock = Clock()
    port = free_port()
    s = sender(port, tmp_path, clock)
    store = Store(s.db_path)
    store.enqueue_message("s1", "room-3", valid_message(), T0)
    for _ in range(5):
        s.send_due(store)
        clock.now += timedelta(minutes=2)
    row = store.message("s1")
    assert row is not None and (row.state, row.attempts) == ("pending", 5)
    assert row.last_error and "127.0.0.1" in row.last_error
    assert s.backoff(10) == timedelta(seconds=60)  # capped at retry_max_s
    assert s.backoff(0) == timedelta(seconds=10)
