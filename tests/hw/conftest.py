"""Fixtures for the room I/O tests (lights, call button, buzzer).

Only fixtures live here, none autouse: tests/hw/vitals/ shares this directory.
"""

from __future__ import annotations

import os
import select
import threading
import tty
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from gpiozero.pins.mock import MockFactory, MockPWMPin

from controller.clock import FakeClock
from controller.events import DeviceChanged

WAIT = 5.0
"""Upper bound (real seconds) on any wait for a thread; tests pass far sooner."""


@pytest.fixture
def mock_pins() -> Iterator[MockFactory]:
    """A fresh gpiozero MockFactory with PWM-capable pins, reset afterwards."""
    factory = MockFactory(pin_class=MockPWMPin)
    yield factory
    factory.reset()


@pytest.fixture
def room_clock() -> FakeClock:
    """The core's fake clock: it moves only when a test (or an AutoJump waiter) moves it."""
    return FakeClock()


@pytest.fixture
def closer() -> Iterator[Callable[[Any], Any]]:
    """Register devices to close at teardown (newest first), even if the test failed."""
    things: list[Any] = []

    def register(thing: Any) -> Any:
        things.append(thing)
        return thing

    yield register
    for thing in reversed(things):
        thing.close()


class Emitted:
    """Records what an adapter emitted; thread-safe, with a bounded wait."""

    def __init__(self) -> None:
        self.messages: list[Any] = []
        self._cond = threading.Condition()

    def __call__(self, msg: Any) -> None:
        with self._cond:
            self.messages.append(msg)
            self._cond.notify_all()

    def of(self, kind: type) -> list[Any]:
        """The messages of one type, in order."""
        with self._cond:
            return [m for m in self.messages if isinstance(m, kind)]

    def statuses(self, device: str) -> list[str]:
        """The statuses reported for ``device``, in order."""
        return [m.status for m in self.of(DeviceChanged) if m.device == device]

    def wait_for(self, pred: Callable[[list[Any]], bool], timeout: float = WAIT) -> bool:
        """Wait until ``pred(messages)`` holds; ``False`` after ``timeout`` real seconds."""
        with self._cond:
            return self._cond.wait_for(lambda: pred(list(self.messages)), timeout)


@pytest.fixture
def emitted() -> Emitted:
    """An ``emit`` callable that records every message."""
    return Emitted()


class AutoJump:
    """A waiter that jumps a FakeClock to the end of each timed wait (Trio's autojump).

    A device thread using it runs through fake time as fast as it can, up to ``limit`` fake
    seconds from the start; past that, and for untimed waits, it waits for a wake-up for real.
    Every requested timeout is recorded.
    """

    def __init__(self, clock: FakeClock, limit: float = 60.0) -> None:
        self.clock = clock
        self.until = clock.monotonic() + limit
        self.timeouts: list[float | None] = []
        self.exhausted = threading.Event()

    def __call__(self, event: threading.Event, timeout: float | None) -> bool:
        self.timeouts.append(timeout)
        if event.is_set():
            return True
        if timeout is None or self.clock.monotonic() + timeout > self.until:
            if timeout is not None:
                self.exhausted.set()
            return event.wait(0.05)
        self.clock.advance(timeout)
        return event.is_set()


@pytest.fixture
def autojump(room_clock: FakeClock) -> AutoJump:
    """An AutoJump waiter on ``room_clock``."""
    return AutoJump(room_clock)


class PtyWidget:
    """The far end of a pseudo-terminal standing in for an ENTTEC DMX USB Pro.

    ``path`` is a stable symlink (like /dev/serial/by-id/...): ``unplug()`` closes the pty so
    the driver's writes fail, ``replug()`` makes a new pty behind the same path.
    """

    def __init__(self, directory: Path) -> None:
        self.path = str(directory / "enttec")
        self._master: int | None = None
        self.replug()

    def replug(self) -> None:
        """Plug a (new) widget in behind ``path``."""
        master, slave = os.openpty()
        tty.setraw(slave)
        name = os.ttyname(slave)
        os.close(slave)  # the pty lives on while the master is open
        tmp = self.path + ".new"
        os.symlink(name, tmp)
        os.replace(tmp, self.path)
        self._master = master

    def unplug(self) -> None:
        """Pull the widget out: the pty goes away and writes to it fail."""
        if self._master is not None:
            os.close(self._master)
            self._master = None

    def read(self, size: int, timeout: float = WAIT) -> bytes:
        """Read exactly ``size`` bytes the driver sent (fewer if ``timeout`` passes)."""
        assert self._master is not None
        buf = b""
        while len(buf) < size:
            ready, _, _ = select.select([self._master], [], [], timeout)
            if not ready:
                break
            buf += os.read(self._master, size - len(buf))
        return buf

    def pending(self) -> bool:
        """Whether the driver sent bytes not read yet."""
        assert self._master is not None
        return bool(select.select([self._master], [], [], 0)[0])

    def close(self) -> None:
        """Unplug for good."""
        self.unplug()


@pytest.fixture
def dmx_widget(tmp_path: Path) -> Iterator[PtyWidget]:
    """A pty-backed DMX widget at ``.path``."""
    widget = PtyWidget(tmp_path)
    yield widget
    widget.close()
