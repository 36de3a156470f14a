"""The serial reader: reconnect with backoff, lost/ok on transitions, prompt close."""

from __future__ import annotations

import os
import select
import threading
import time
from collections.abc import Iterator
from typing import Any

import serial
from conftest import WAIT, Inbox, raw_pty

from controller.events import DeviceChanged
from hw.vitals.serial_port import TICK_RETRY_S, SerialReader, open_serial


class Lines:
    """A trivial parser: one frame per byte b'x'."""

    def __init__(self) -> None:
        self.bad_frames = 0
        self.resets = 0

    def feed(self, data: bytes) -> list[bytes]:
        return [bytes((b,)) for b in data]

    def reset(self) -> None:
        self.resets += 1


class ScriptedPort:
    """A fake port that returns ``chunks`` then raises as if unplugged."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = list(chunks)
        self.written: list[bytes] = []
        self.closed = False
        self.timeout: float | None = None
        self.read_timeouts: list[float | None] = []  # the timeout each read was given

    def read(self, size: int = 1) -> bytes:
        self.read_timeouts.append(self.timeout)
        if self.chunks:
            return self.chunks.pop(0)
        raise serial.SerialException("read failed: [Errno 5] Input/output error")

    def write(self, data: bytes) -> int:
        self.written.append(data)
        return len(data)

    def close(self) -> None:
        self.closed = True


class QuietPort(ScriptedPort):
    """A port that stays open and silent: read returns nothing after its timeout."""

    def __init__(self) -> None:
        super().__init__([])
        self._never = threading.Event()

    def read(self, size: int = 1) -> bytes:
        self._never.wait(0.01)  # the port's read timeout, as pyserial's
        return b""


def reader_of(inbox: Inbox, factory: Any, path: str = "p", **kw: Any) -> SerialReader[bytes]:
    """A reader of one frame per byte on the port ``factory`` opens (frames dropped unless
    ``on_frame`` is given); ``kw`` as ``SerialReader`` takes them."""
    kw.setdefault("parser", Lines())
    kw.setdefault("on_frame", lambda f: None)
    return SerialReader(path, 9600, device="nibp", emit=inbox.emit, serial_factory=factory, **kw)


def test_backoff_doubles_to_the_cap_then_ok_then_lost(inbox: Inbox) -> None:
    waits: list[float] = []
    opened = threading.Event()
    port = ScriptedPort([b"ab"])
    attempts = {"n": 0}

    def factory(path: str, baud: int, timeout: float | None) -> ScriptedPort:
        attempts["n"] += 1
        if attempts["n"] <= 5:
            raise FileNotFoundError(2, "No such file", path)
        if attempts["n"] == 6:
            opened.set()
            return port
        raise FileNotFoundError(2, "No such file", path)

    stop = threading.Event()

    def wait(seconds: float) -> bool:
        waits.append(seconds)
        if len(waits) >= 8:
            stop.set()
            return True
        return False

    frames: list[bytes] = []
    parser = Lines()
    reader = reader_of(
        inbox,
        factory,
        "/dev/serial/by-id/usb-X",
        parser=parser,
        on_frame=frames.append,
        wait=wait,
        backoff_initial=0.5,
        backoff_max=5.0,
    )
    reader.start()
    assert stop.wait(5)
    reader.close()
    assert not reader.alive
    # 5 failed opens: 0.5 1 2 4 5; after the lost read: back to 0.5, then 1, 2
    assert waits == [0.5, 1.0, 2.0, 4.0, 5.0, 0.5, 0.5, 1.0]
    statuses = [m.status for m in inbox.q.queue if isinstance(m, DeviceChanged)]
    assert statuses == ["lost", "ok", "lost"]  # transitions only, never repeated
    assert frames == [b"a", b"b"]
    assert port.closed and parser.resets == 1


def test_writes_reach_the_port_and_are_dropped_while_lost(inbox: Inbox) -> None:
    port = QuietPort()
    got = threading.Event()

    def write(data: bytes) -> int:
        port.written.append(data)
        got.set()
        return len(data)

    port.write = write  # type: ignore[method-assign]
    reader = reader_of(inbox, lambda p, b, t: port)
    reader.write(b"stale")  # queued before the port opened: never sent
    reader.start()
    inbox.wait_for(lambda m: isinstance(m, DeviceChanged) and m.status == "ok")
    reader.write(b"\x3a\x20\xa6")
    assert got.wait(5)
    reader.close()
    assert port.written == [b"\x3a\x20\xa6"]


def test_close_is_prompt_while_backing_off(inbox: Inbox) -> None:
    def factory(path: str, baud: int, timeout: float | None) -> ScriptedPort:
        raise serial.SerialException("could not open port")

    reader = reader_of(inbox, factory, backoff_initial=60.0, backoff_max=60.0)
    reader.start()
    inbox.wait_for(lambda m: isinstance(m, DeviceChanged) and m.status == "lost")
    reader.close(timeout=2.0)  # the 60 s backoff is cut short by close()
    assert not reader.alive


def test_a_driver_bug_does_not_look_like_an_unplug(inbox: Inbox) -> None:
    port = ScriptedPort([b"xy"])
    seen: list[bytes] = []

    def on_frame(frame: bytes) -> None:
        seen.append(frame)
        if frame == b"x":
            raise ValueError("driver bug")

    reader = reader_of(inbox, lambda p, b, t: port, on_frame=on_frame, backoff_initial=60.0)
    reader.start()
    inbox.wait_for(lambda m: isinstance(m, DeviceChanged) and m.status == "lost")
    reader.close()
    assert seen == [b"x", b"y"]


def test_each_read_waits_until_the_drivers_next_deadline(inbox: Inbox) -> None:
    port = ScriptedPort([b"a", b"b", b"c", b"d"])
    due: Iterator[float | Exception | None] = iter(
        [2.5, None, -0.3, RuntimeError("driver bug"), 7.0]
    )

    def on_tick() -> float | None:
        value = next(due, None)
        if isinstance(value, Exception):
            raise value
        return value

    reader = reader_of(inbox, lambda p, b, t: port, on_tick=on_tick, backoff_initial=60.0)
    reader.start()
    inbox.wait_for(lambda m: isinstance(m, DeviceChanged) and m.status == "lost")
    reader.close()
    # At the open, then after each read: a deadline bounds the next read; none lets it wait
    # for data; a past one does not wait; a failing tick is asked again a second later.
    assert port.read_timeouts == [2.5, None, 0.0, TICK_RETRY_S, 7.0]


def test_an_idle_reader_sleeps_in_its_read_until_a_write_bytes_or_an_unplug(
    inbox: Inbox,
) -> None:
    """On a real pty: with nothing due the read has no timeout (the thread does not poll);
    a queued write cuts it short and goes out, bytes are read as they come, and closing the
    far end is seen at once."""
    ports: list[serial.Serial] = []
    frames: list[bytes] = []
    got = threading.Event()

    def factory(path: str, baud: int, timeout: float | None) -> serial.Serial:
        ports.append(open_serial(path, baud, timeout))  # type: ignore[arg-type]
        return ports[-1]

    def on_frame(frame: bytes) -> None:
        frames.append(frame)
        got.set()

    with raw_pty() as (master, path):
        reader = reader_of(inbox, factory, path, on_frame=on_frame, backoff_initial=60.0)
        try:
            reader.start()
            inbox.wait_for(lambda m: isinstance(m, DeviceChanged) and m.status == "ok")
            assert ports[0].timeout is None
            reader.write(b"\x3a\x20\xa6")
            assert select.select([master], [], [], WAIT)[0], "the write stayed queued"
            assert os.read(master, 16) == b"\x3a\x20\xa6"
            os.write(master, b"x")
            assert got.wait(WAIT) and frames == [b"x"]
            unplugged = time.monotonic()
            os.close(master)
            inbox.wait_for(lambda m: isinstance(m, DeviceChanged) and m.status == "lost")
            assert time.monotonic() - unplugged < 1.0
        finally:
            reader.close()
    assert not reader.alive
