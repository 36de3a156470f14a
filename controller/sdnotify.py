"""systemd's notification protocol (READY, STATUS, WATCHDOG); a no-op without NOTIFY_SOCKET."""

from __future__ import annotations

import os
import socket
import time
from contextlib import suppress


class Notifier:
    """Sends sd_notify messages to systemd when it is listening."""

    def __init__(self) -> None:
        addr = os.environ.get("NOTIFY_SOCKET", "")
        if addr.startswith("@"):
            addr = "\0" + addr[1:]  # abstract namespace socket
        self._addr = addr
        usec = os.environ.get("WATCHDOG_USEC", "")
        self.watchdog_interval = int(usec) / 2e6 if usec.isdigit() else None
        self._last_ping = 0.0

    def notify(self, message: str) -> None:
        """Send one message (``READY=1``, ``STATUS=…``); ignored when not under systemd."""
        if not self._addr:
            return
        # systemd gone (shutdown), no file descriptor left, a bad address: nothing to tell and
        # nothing to fail over; the caller (the core loop) must never see an error from here.
        with (
            suppress(OSError, ValueError),
            socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock,
        ):
            sock.sendto(message.encode(errors="replace"), self._addr)

    def alive(self) -> None:
        """Feed the watchdog, at most every half watchdog interval (called by the core loop)."""
        if self.watchdog_interval is None:
            return
        now = time.monotonic()
        if now - self._last_ping >= self.watchdog_interval:
            self._last_ping = now
            self.notify("WATCHDOG=1")
