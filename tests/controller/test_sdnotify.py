"""sd_notify over a real AF_UNIX datagram socket: READY, the watchdog's rate, no systemd."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from controller import sdnotify
from controller.sdnotify import Notifier


@pytest.fixture
def listener(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[socket.socket]:
    """systemd's side: a datagram socket bound in tmp, named by NOTIFY_SOCKET."""
    path = tmp_path / "notify"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(2.0)
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    yield sock
    sock.close()


def received(sock: socket.socket) -> list[bytes]:
    """Every datagram waiting (local datagrams arrive before sendto returns)."""
    sock.setblocking(False)
    out = []
    try:
        while True:
            out.append(sock.recv(4096))
    except BlockingIOError:
        pass
    finally:
        sock.settimeout(2.0)
    return out


class FakeTime:
    def __init__(self, now: float) -> None:
        self.now = now

    def monotonic(self) -> float:
        return self.now


def test_ready_arrives(listener: socket.socket) -> None:
    notifier = Notifier()
    notifier.notify("READY=1")
    assert listener.recv(4096) == b"READY=1"
    notifier.notify("STATUS=room room-1: idle")
    assert listener.recv(4096) == b"STATUS=room room-1: idle"


def test_watchdog_usec_sets_half_the_interval(
    listener: socket.socket, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", "30000000")
    assert Notifier().watchdog_interval == pytest.approx(15.0)


@pytest.mark.parametrize("value", ["", "abc", "-5", "1.5"])
def test_bad_or_missing_watchdog_usec_means_no_watchdog(
    listener: socket.socket, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", value)
    notifier = Notifier()
    assert notifier.watchdog_interval is None
    notifier.alive()
    assert received(listener) == []


def test_alive_rate_limits_watchdog_pings(
    listener: socket.socket, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", "2000000")  # systemd wants a ping every 2 s
    fake = FakeTime(1000.0)
    monkeypatch.setattr(sdnotify, "time", SimpleNamespace(monotonic=fake.monotonic))
    notifier = Notifier()
    assert notifier.watchdog_interval == pytest.approx(1.0)

    notifier.alive()
    assert received(listener) == [b"WATCHDOG=1"]
    for t in (1000.1, 1000.5, 1000.99):
        fake.now = t
        notifier.alive()
    assert received(listener) == []
    fake.now = 1001.0
    notifier.alive()
    assert received(listener) == [b"WATCHDOG=1"]
    fake.now = 1001.5
    notifier.alive()
    assert received(listener) == []
    fake.now = 1010.0
    notifier.alive()
    notifier.alive()
    assert received(listener) == [b"WATCHDOG=1"]


def test_no_notify_socket_is_a_no_op(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    monkeypatch.setenv("WATCHDOG_USEC", "2000000")

    def no_socket(*args: object) -> None:
        raise AssertionError("no socket may be opened without NOTIFY_SOCKET")

    monkeypatch.setattr(
        sdnotify,
        "socket",
        SimpleNamespace(socket=no_socket, AF_UNIX=socket.AF_UNIX, SOCK_DGRAM=socket.SOCK_DGRAM),
    )
    notifier = Notifier()
    notifier.notify("READY=1")
    notifier.alive()
    notifier.notify("STOPPING=1")


def test_systemd_gone_is_not_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "nobody-listens"))
    Notifier().notify("STOPPING=1")


def test_abstract_socket_name(monkeypatch: pytest.MonkeyPatch) -> None:
    name = f"roomd-test-{uuid.uuid4().hex}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.settimeout(2.0)
    try:
        monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
        Notifier().notify("READY=1")
        assert sock.recv(4096) == b"READY=1"
    finally:
        sock.close()
