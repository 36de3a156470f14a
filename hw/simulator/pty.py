"""A simulated serial device's plumbing: a pseudo-terminal behind a stable path, a thread,
and the device-level incidents (unplug, garbage, recover)."""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import tempfile
import threading
import tty
from collections.abc import Callable

from hw.simulator.patient import SimulatedPatient

INCIDENTS = ("desaturation", "hypertension", "sensor_off", "unplug", "garbage", "recover")
"""Incident kinds the simulated room accepts (the contract's ``sim/incident``)."""


class Pty:
    """A pseudo-terminal whose slave is always reached through one stable symlink.

    ``unplug()`` closes the pty (a reader's next read fails) and removes the link; ``plug()``
    opens a fresh pty behind the same link, so a driver reconnects by reopening the path.
    """

    def __init__(self, name: str) -> None:
        self._dir = tempfile.mkdtemp(prefix="roomd-sim-")
        self.path = os.path.join(self._dir, name)
        self.master: int | None = None
        self._slave: int | None = None
        self.lock = threading.Lock()
        self.plug()

    def plug(self) -> None:
        """Open a fresh pty behind the path (nothing if one is open)."""
        with self.lock:
            if self.master is not None:
                return
            master, slave = os.openpty()
            tty.setraw(slave)  # binary frames must pass untouched (no CR/LF translation, echo)
            os.set_blocking(master, False)
            # Keep our slave end open: the pty stays alive between driver reconnects.
            self.master, self._slave = master, slave
            tmp = self.path + ".new"
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            os.symlink(os.ttyname(slave), tmp)
            os.replace(tmp, self.path)

    def unplug(self) -> None:
        """Close the pty and remove the path: a reader's next read fails."""
        with self.lock:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)
            for fd in (self.master, self._slave):
                if fd is not None:
                    with contextlib.suppress(OSError):
                        os.close(fd)
            self.master = self._slave = None

    @property
    def plugged(self) -> bool:
        """Whether a pty is open behind the path."""
        return self.master is not None

    def write(self, data: bytes) -> None:
        """Write to the device's side; dropped when unplugged or when nobody reads."""
        with self.lock:
            if self.master is None:
                return
            # Nobody reading: the pty buffer fills and the device's output is simply lost.
            with contextlib.suppress(BlockingIOError, OSError):
                os.write(self.master, data)

    def close(self) -> None:
        """Unplug for good and remove the private directory."""
        self.unplug()
        shutil.rmtree(self._dir, ignore_errors=True)


class SimDevice:
    """What both simulated devices share: a pty, a thread, device-level incidents."""

    def __init__(self, name: str, patient: SimulatedPatient, seed: int | None) -> None:
        self.patient = patient
        self._pty = Pty(name)
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._rng = random.Random(seed)
        self._garbage_pending = False
        self._thread: threading.Thread | None = None

    @property
    def port_path(self) -> str:
        """The path a driver opens (a symlink to the current pty)."""
        return self._pty.path

    @property
    def plugged(self) -> bool:
        """Whether the device is 'connected' (its pty exists)."""
        return self._pty.plugged

    def incident(self, kind: str) -> None:
        """Apply a scripted incident: see ``INCIDENTS``."""
        if kind not in INCIDENTS:
            raise ValueError(f"unknown incident {kind!r}; kinds are {', '.join(INCIDENTS)}")
        self.patient.incident(kind)
        if kind == "unplug":
            self._pty.unplug()
        elif kind == "garbage":
            self._garbage_pending = True
        elif kind == "recover":
            self._garbage_pending = False
            self._pty.plug()

    def _start(self, target: Callable[[], None], name: str) -> None:
        self._thread = threading.Thread(target=target, name=name, daemon=True)
        self._thread.start()

    def _nap(self, seconds: float) -> bool:
        """Wait ``seconds`` or until woken (``_wake``); ``False`` once the device is closed."""
        self._wake.wait(seconds)
        self._wake.clear()
        return not self._stop.is_set()

    def _take_garbage(self) -> bytes:
        if not self._garbage_pending:
            return b""
        self._garbage_pending = False
        return self._rng.randbytes(64)

    def close(self) -> None:
        """Stop the thread and remove the pty."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(2.0)
        self._pty.close()
