"""What roomd asks of the operating system: is the clock synchronised, and how to log."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

from controller.events import ClockSync, InboxMessage


class JournaldFormatter(logging.Formatter):
    """Lines for systemd's journal: a syslog priority prefix journald turns into the entry's
    level (journalctl -p warning), the logger, the message; journald adds the time."""

    PRIORITY: ClassVar[dict[str, int]] = {
        "CRITICAL": 2,
        "ERROR": 3,
        "WARNING": 4,
        "INFO": 6,
        "DEBUG": 7,
    }

    def format(self, record: logging.LogRecord) -> str:
        """One journal line per record (tracebacks indented on the following lines)."""
        prefix = f"<{self.PRIORITY.get(record.levelname, 6)}>"
        return prefix + super().format(record).replace("\n", "\n" + prefix + "  ")


def setup_logging(level: str) -> None:
    """Log to stderr: journal-ready under systemd, timestamped on a terminal.

    Nothing the room logs carries a secret or a patient identifier: passwords never reach the
    log, and patients appear only as the clinic's pseudonym (patient_ref), if at all.
    """
    handler = logging.StreamHandler(sys.stderr)
    if os.environ.get("JOURNAL_STREAM"):
        handler.setFormatter(JournaldFormatter("%(name)s: %(message)s"))
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=level, handlers=[handler], force=True)


def clock_synchronised() -> bool | None:
    """Whether systemd says the clock is NTP-synchronised; None when it cannot tell."""
    if Path("/run/systemd/timesync/synchronized").exists():
        return True
    try:
        out = subprocess.run(
            ["timedatectl", "show", "--property=NTPSynchronized", "--value"],
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    answer = out.stdout.strip()
    return {"yes": True, "no": False}.get(answer) if out.returncode == 0 else None


class ClockWatch:
    """Tells the room, now and every minute, whether the system clock is synchronised."""

    def __init__(
        self,
        emit: Callable[[InboxMessage], None],
        check: Callable[[], bool | None] = clock_synchronised,
        interval_s: float = 60.0,
    ) -> None:
        self._emit = emit
        self._check = check
        self._interval = interval_s
        self._stop = threading.Event()
        self._last: bool | str | None = "unknown"
        self._thread = threading.Thread(target=self._run, name="clock-watch", daemon=True)

    def start(self) -> None:
        """Check at once, then every interval."""
        self._thread.start()

    def poll(self) -> None:
        """One check; the room hears only of changes."""
        synced = self._check()
        if synced != self._last:
            self._last = synced
            self._emit(ClockSync(synced))

    def close(self) -> None:
        """Stop checking."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2)

    def _run(self) -> None:
        while True:
            self.poll()
            if self._stop.wait(self._interval):
                return
