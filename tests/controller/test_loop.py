"""The core loop: one message at a time, ticks when idle, survives bad handlers, not the journal."""

from __future__ import annotations

import logging
import queue
from types import SimpleNamespace
from typing import Any

import pytest

from controller.clock import FakeClock
from controller.errors import JournalError
from controller.events import CallHeld, CallPressed, InboxMessage, LinkDown, LinkUp, Shutdown
from controller.loop import MAX_WAIT_S, CoreLoop
from controller.storage import StorageError, StorageFull
from hw.fake import FakeAnnunciator
from tests.controller.harness import make_config


class StubLog:
    """The room's EventLog as the loop sees it: the storage fault, and errors reported."""

    def __init__(self) -> None:
        self.storage_fault: StorageError | None = None
        self.errors: list[StorageError] = []

    def storage_error(self, exc: StorageError) -> None:
        self.errors.append(exc)
        self.storage_fault = exc


class StubRoom:
    """Records what the loop asks of it; ``fail`` maps a message to the exception it raises."""

    def __init__(self, clock: FakeClock, deadline_in: float = 0.0) -> None:
        self.clock = clock
        self.deadline_in = deadline_in
        self.handled: list[InboxMessage] = []
        self.ticks = 0
        self.fail: dict[Any, BaseException] = {}
        self.on_tick: list[InboxMessage] = []
        self.inbox: queue.Queue[InboxMessage] | None = None
        self.log = StubLog()
        self.config = make_config()
        self.annunciation = SimpleNamespace(pattern="off")
        self.phase = "idle"

    def next_deadline(self) -> float:
        return self.clock.monotonic() + self.deadline_in

    def tick(self) -> None:
        self.ticks += 1
        if self.inbox is not None:
            while self.on_tick:  # what arrives while the room ticks
                self.inbox.put(self.on_tick.pop(0))

    def handle(self, message: InboxMessage) -> None:
        self.handled.append(message)
        if message in self.fail:
            raise self.fail[message]


class RecordingQueue(queue.Queue[InboxMessage]):
    """A real queue that also records the timeout of every ``get``."""

    def __init__(self) -> None:
        super().__init__()
        self.timeouts: list[float | None] = []

    def get(self, block: bool = True, timeout: float | None = None) -> InboxMessage:
        self.timeouts.append(timeout)
        return super().get(block, timeout)


class ScaledFakeClock(FakeClock):
    """A fake clock whose session seconds take 1/scale real seconds."""

    def __init__(self, scale: float) -> None:
        super().__init__()
        self.scale = scale

    def real_seconds(self, session_seconds: float) -> float:
        return session_seconds / self.scale


def loop_with(
    messages: list[InboxMessage], *, deadline_in: float = 0.0, clock: FakeClock | None = None
) -> tuple[CoreLoop, StubRoom, RecordingQueue, list[int]]:
    clock = clock or FakeClock()
    room = StubRoom(clock, deadline_in)
    inbox = RecordingQueue()
    room.inbox = inbox
    for m in messages:
        inbox.put(m)
    alive: list[int] = []
    loop = CoreLoop(room, inbox, clock, alive=lambda: alive.append(len(room.handled)))  # type: ignore[arg-type]
    return loop, room, inbox, alive


def test_handles_messages_in_order_and_stops_on_shutdown() -> None:
    loop, room, inbox, _ = loop_with(
        [LinkUp(), CallPressed(), Shutdown(), LinkDown()], deadline_in=3600
    )
    loop.run()
    assert room.handled == [LinkUp(), CallPressed()]
    assert inbox.get_nowait() == LinkDown()  # nothing after the Shutdown was taken
    assert room.ticks == 0


def test_alive_is_called_after_each_iteration() -> None:
    loop, _, _, alive = loop_with([LinkUp(), CallPressed(), CallHeld(), Shutdown()])
    loop.run()
    assert alive == [1, 2, 3]


def test_ticks_when_nothing_arrives_by_the_deadline() -> None:
    loop, room, _, alive = loop_with([])
    room.on_tick = [CallPressed(), Shutdown()]
    loop.run()
    assert room.ticks == 1
    assert room.handled == [CallPressed()]
    assert len(alive) == 2  # the tick and the message


def test_handler_exception_is_logged_and_the_loop_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    loop, room, _, alive = loop_with([LinkUp(), CallPressed(), Shutdown()], deadline_in=3600)
    room.fail[LinkUp()] = ValueError("boom")
    with caplog.at_level(logging.ERROR, logger="roomd.core"):
        loop.run()
    assert room.handled == [LinkUp(), CallPressed()]
    assert alive == [1, 2]
    failures = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(failures) == 1
    assert failures[0].exc_info is not None
    assert isinstance(failures[0].exc_info[1], ValueError)
    assert "LinkUp" in failures[0].getMessage()


def test_tick_exception_is_logged_and_the_loop_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    loop, room, _, _ = loop_with([])

    def bad_tick() -> None:
        room.ticks += 1
        assert room.inbox is not None
        room.inbox.put(Shutdown())
        raise RuntimeError("tick broke")

    room.tick = bad_tick  # type: ignore[method-assign]
    with caplog.at_level(logging.ERROR, logger="roomd.core"):
        loop.run()
    assert room.ticks == 1
    assert any(
        r.exc_info is not None and isinstance(r.exc_info[1], RuntimeError) for r in caplog.records
    )


def test_journal_error_propagates() -> None:
    loop, room, inbox, alive = loop_with([LinkUp(), CallPressed(), Shutdown()], deadline_in=3600)
    room.fail[LinkUp()] = JournalError("disk gone")
    with pytest.raises(JournalError, match="disk gone"):
        loop.run()
    assert room.handled == [LinkUp()]
    assert alive == []
    assert inbox.qsize() == 2  # the rest was left alone


def test_wait_is_capped_at_max_wait() -> None:
    loop, _, inbox, _ = loop_with([LinkUp(), Shutdown()], deadline_in=3600)
    loop.run()
    assert inbox.timeouts == [MAX_WAIT_S, MAX_WAIT_S]


def test_wait_is_the_time_to_the_deadline() -> None:
    loop, _, inbox, _ = loop_with([LinkUp(), Shutdown()], deadline_in=0.25)
    loop.run()
    assert inbox.timeouts == [pytest.approx(0.25), pytest.approx(0.25)]


def test_past_deadline_means_no_wait() -> None:
    loop, _, inbox, _ = loop_with([LinkUp(), Shutdown()], deadline_in=-5)
    loop.run()
    assert inbox.timeouts == [0.0, 0.0]


def test_wait_is_in_real_seconds_on_a_scaled_clock() -> None:
    loop, _, inbox, _ = loop_with(
        [LinkUp(), Shutdown()], deadline_in=30, clock=ScaledFakeClock(60.0)
    )
    loop.run()
    assert inbox.timeouts == [pytest.approx(0.5), pytest.approx(0.5)]


# --- storage faults -------------------------------------------------------------------------


def test_a_storage_error_is_reported_and_the_loop_goes_on() -> None:
    loop, room, _, alive = loop_with([LinkUp(), CallPressed(), Shutdown()], deadline_in=3600)
    full = StorageFull("/data/journal.sqlite", "database or disk is full")
    room.fail[LinkUp()] = full
    loop.run()
    assert room.handled == [LinkUp(), CallPressed()]  # the next message was handled
    assert room.log.errors == [full]
    assert alive == [1, 2]  # the watchdog hears a loop that still turns


def test_a_storage_fault_is_said_to_systemd_and_sounded_until_it_ends() -> None:
    said: list[str] = []
    buzzer = FakeAnnunciator()
    clock = FakeClock()
    room = StubRoom(clock, deadline_in=3600)
    inbox = RecordingQueue()
    loop = CoreLoop(room, inbox, clock, notify=said.append, annunciator=buzzer)  # type: ignore[arg-type]
    full = StorageFull("/data/journal.sqlite", "no space")
    room.log.storage_fault = full
    for m in (LinkUp(), Shutdown()):
        inbox.put(m)
    loop.run()
    assert said == [f"STATUS=room room-1: STORAGE FAULT: {full}"]
    assert buzzer.history == ["failure"]
    # An alarm's own pattern takes the buzzer; when it ends, the failure pattern returns.
    room.annunciation.pattern = "high"
    for m in (LinkUp(), Shutdown()):
        inbox.put(m)
    loop.run()
    room.annunciation.pattern = "off"
    for m in (LinkUp(), Shutdown()):
        inbox.put(m)
    loop.run()
    assert buzzer.history == ["failure", "failure"]
    room.log.storage_fault = None
    for m in (LinkUp(), Shutdown()):
        inbox.put(m)
    loop.run()
    assert said[-1] == "STATUS=room room-1: idle"
    assert buzzer.history == ["failure", "failure", "off"]


def test_a_failing_watchdog_notification_does_not_stop_the_loop(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock()
    room = StubRoom(clock, deadline_in=3600)
    inbox = RecordingQueue()

    def alive() -> None:
        raise OSError(24, "Too many open files")

    loop = CoreLoop(room, inbox, clock, alive=alive)  # type: ignore[arg-type]
    for m in (LinkUp(), CallPressed(), Shutdown()):
        inbox.put(m)
    with caplog.at_level(logging.ERROR, logger="roomd.core"):
        loop.run()
    assert room.handled == [LinkUp(), CallPressed()]
    assert "watchdog notification failed" in caplog.text
