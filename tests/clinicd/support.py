"""The real ``clinicd`` process for the archive's tests, and a client of its verbs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.support.probe import Probe

ARCHIVE_ROOT = "clinic/archive"


class ArchiveProcess:
    """``python -m mqtt_bridge.clinicd`` with its own config and data directory."""

    def __init__(self, workdir: Path, port: int, extra_toml: str = "") -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.workdir = workdir
        self.config = workdir / "clinicd.toml"
        self.config.write_text(
            f'[mqtt]\nhost = "127.0.0.1"\nport = {port}\nkeepalive_s = 5\n'
            f"[archive]\nrequest_timeout_s = 3\nresync_s = 5\n{extra_toml}"
        )
        self.data_dir = workdir / "data"
        self.db = self.data_dir / "archive.sqlite"
        self.log = workdir / "clinicd.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the archive (it connects in the background)."""
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "mqtt_bridge.clinicd",
                    "--config",
                    str(self.config),
                    "--data-dir",
                    str(self.data_dir),
                    "--log-level",
                    "DEBUG",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )

    def kill9(self) -> None:
        """Crash it."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def terminate(self, timeout: float = 15.0) -> int:
        """A clean stop; its exit code."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout)

    def stop(self) -> None:
        """Make sure it is gone."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def logtext(self) -> str:
        """What it logged."""
        return self.log.read_text(errors="replace") if self.log.exists() else ""


class ArchiveClient(Probe):
    """A clinician's view of the archive: its status and its verbs."""

    def __init__(self, port: int) -> None:
        super().__init__(port, ARCHIVE_ROOT)

    def online(self) -> bool:
        """Whether the archive's retained status says online."""
        return self.retained.get(f"{ARCHIVE_ROOT}/status") == b"online"
