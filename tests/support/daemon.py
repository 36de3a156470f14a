"""The real ``roomd`` process, started and killed by the tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path


class RoomProcess:
    """``python -m controller --simulate`` with its own config and data directory."""

    def __init__(
        self,
        workdir: Path,
        port: int,
        *,
        room_id: str = "room-e2e",
        time_scale: float = 60.0,
        extra_toml: str = "",
    ) -> None:
        self.workdir = workdir
        self.room_id = room_id
        self.time_scale = time_scale
        self.config = workdir / "roomd.toml"
        self.config.write_text(
            f'[room]\nid = "{room_id}"\n[mqtt]\nhost = "127.0.0.1"\nport = {port}\n'
            f"keepalive_s = 5\n{extra_toml}"
        )
        self.data_dir = workdir / "data"
        self.log = workdir / "roomd.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.root = f"clinic/rooms/{room_id}"

    def argv(self) -> list[str]:
        """The command line the process is started with."""
        return [
            sys.executable, "-m", "controller", "--simulate",
            "--time-scale", str(self.time_scale),
            "--config", str(self.config), "--data-dir", str(self.data_dir),
        ]  # fmt: skip

    def env(self) -> dict[str, str]:
        """The process's environment."""
        return {**os.environ, "PYTHONUNBUFFERED": "1"}

    def start(self) -> None:
        """Start the process (it connects in the background), its output in ``log``."""
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                self.argv(), stdout=log, stderr=subprocess.STDOUT, env=self.env()
            )

    def kill9(self) -> None:
        """Crash it: SIGKILL, no chance to clean up."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def terminate(self, timeout: float = 10.0) -> int:
        """A clean stop (SIGTERM); its exit code."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout)

    def alive(self) -> bool:
        """Whether the process still runs."""
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        """Make sure it is gone."""
        if self.alive():
            assert self.proc is not None
            self.proc.kill()
            self.proc.wait(timeout=10)

    def logtext(self) -> str:
        """What it logged."""
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def wait_until(predicate, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    """Poll (bounded) until ``predicate()`` holds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)
