"""Helpers shared by the vitals tests: frames built from the formats' descriptions."""

from __future__ import annotations

import contextlib
import os
import queue
import tty
from collections.abc import Callable, Iterator
from typing import Any

import pytest

WAIT = 5.0
"""Upper bound for waiting on thread I/O (never a sleep: the wait ends as soon as it's met)."""


def df2_frame(status: int, pleth: int, value: int) -> bytes:
    """One DF2 frame: 01 STATUS PLETH FLOAT CHK (CHK = sum of the first four mod 256)."""
    head = bytes((0x01, status, pleth, value))
    return head + bytes((sum(head) & 0xFF,))


def df2_packet(hr: int, spo2: int, status: int = 0x80) -> bytes:
    """A 25-frame DF2 packet: SYNC on frame 0, HR msb/lsb in frames 0/1, SpO2 in frame 2."""
    floats = [(hr >> 7) & 0x03, hr & 0x7F, spo2 & 0x7F] + [0] * 22
    return b"".join(
        df2_frame(status | (0x01 if i == 0 else 0) | 0x80, 100 + i, floats[i]) for i in range(25)
    )


def suntech_module(data: bytes) -> bytes:
    """A module frame 3E LEN data CK with LEN = the whole frame, sum of all bytes 0 mod 256."""
    body = bytes((0x3E, len(data) + 3)) + data
    return body + bytes(((-sum(body)) & 0xFF,))


def suntech_result(sys: int, dia: int, map_: int, hr: int, error: int = 0) -> bytes:
    """The 24-byte 'get BP data' answer."""
    data = bytearray(21)
    data[0:2] = sys.to_bytes(2, "little")
    data[2:4] = dia.to_bytes(2, "little")
    data[14:16] = hr.to_bytes(2, "little")
    data[16:18] = map_.to_bytes(2, "little")
    data[18] = error
    return suntech_module(bytes(data))


class Inbox:
    """The core's inbox as a driver sees it: ``emit`` puts, tests wait for what they expect."""

    def __init__(self) -> None:
        self.q: queue.Queue[Any] = queue.Queue()
        self.seen: list[Any] = []

    def emit(self, msg: Any) -> None:
        self.q.put(msg)

    def wait_for(self, pred: Callable[[Any], bool], timeout: float = WAIT) -> Any:
        """The first message (from now on) matching ``pred``; fails after ``timeout``."""
        while True:
            try:
                msg = self.q.get(timeout=timeout)
            except queue.Empty:
                pytest.fail(f"nothing matching arrived within {timeout} s; saw {self.seen[-5:]}")
            self.seen.append(msg)
            if pred(msg):
                return msg


@pytest.fixture
def inbox() -> Inbox:
    return Inbox()


@contextlib.contextmanager
def raw_pty() -> Iterator[tuple[int, str]]:
    """A raw pseudo-terminal: (the device's end, the path a driver opens)."""
    master, slave = os.openpty()
    tty.setraw(slave)
    try:
        yield master, os.ttyname(slave)
    finally:
        for fd in (master, slave):
            with contextlib.suppress(OSError):
                os.close(fd)
