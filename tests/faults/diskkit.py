"""Real storage faults for the tests: a small tmpfs that can be filled, remounted read-only
and unmounted; libfiu (``fiu-run``/``fiu-ctrl``) to make the daemon's system calls fail.

Mounting needs root (the CI runs the tests as root); without it these tests skip, as the TLS
tests do without openssl.
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

FILLER = ".filler"


def need_root() -> None:
    """Skip unless the test may mount file systems."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root (the CI runs the tests as root)")


def need_fiu() -> None:
    """Skip unless libfiu's tools are installed (``make deps``: fiu-utils, libfiu0)."""
    if shutil.which("fiu-run") is None or shutil.which("fiu-ctrl") is None:
        pytest.skip("libfiu is not installed (make deps installs fiu-utils and libfiu0)")


def _run(*cmd: str) -> None:
    subprocess.run(cmd, check=True, capture_output=True, timeout=30)


@contextmanager
def small_tmpfs(where: Path, size: str = "4m") -> Iterator[Path]:
    """A tmpfs of ``size`` mounted on ``where`` for the block; unmounted after (bounded)."""
    need_root()
    where.mkdir(parents=True, exist_ok=True)
    _run("mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(where))
    try:
        yield where
    finally:
        try:
            _run("umount", str(where))
        except subprocess.CalledProcessError:
            _run("umount", "-l", str(where))  # a lingering reader: detach it now


def fill(folder: Path) -> int:
    """Write a filler file in ``folder`` until the file system is full; bytes written."""
    written = 0
    with open(folder / FILLER, "ab", buffering=0) as fh:
        for chunk in (1 << 16, 4096, 512, 1):
            block = b"\0" * chunk
            while True:
                try:
                    fh.write(block)
                except OSError as exc:
                    if exc.errno != errno.ENOSPC:
                        raise
                    break
                written += chunk
    return written


def free(folder: Path) -> None:
    """Remove the filler: the space returns."""
    (folder / FILLER).unlink(missing_ok=True)


def remount(where: Path, mode: str) -> None:
    """Remount the tmpfs ``ro`` or ``rw``."""
    _run("mount", "-o", f"remount,{mode}", str(where))


def fiu_ctrl(pid: int, fifo: Path, *commands: str) -> None:
    """Enable or disable libfiu failure points in a process started under
    ``fiu-run -f <fifo>``."""
    args = ["fiu-ctrl", "-f", str(fifo)]
    for command in commands:
        args += ["-c", command]
    _run(*args, str(pid))
