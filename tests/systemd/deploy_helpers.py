"""Helpers for the deployment tests: a throw-away root that systemd-analyze can verify in."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SYSTEMD_DIR = ROOT / "systemd"
UNIT = SYSTEMD_DIR / "roomd.service"
EXEC_START = "/opt/roomd/venv/bin/roomd"
HOST_UNITS = Path("/usr/lib/systemd/system")


def need_systemd_analyze() -> str:
    """The path of systemd-analyze, or skip saying exactly what is missing."""
    exe = shutil.which("systemd-analyze")
    if exe is None:
        pytest.skip("systemd-analyze not found: install the Debian package 'systemd'")
    return exe


def make_verify_root(root: Path) -> None:
    """Give ``root`` what `systemd-analyze verify --root` needs besides our own files.

    verify resolves every unit it loads (sysinit.target, basic.target, …) under --root, so the
    host's vendor units are copied in; a stub stands in for ExecStart unless one is there.
    """
    if not HOST_UNITS.is_dir():
        pytest.skip(f"{HOST_UNITS} missing: install the Debian package 'systemd'")
    dest = root / HOST_UNITS.relative_to("/")
    if not dest.exists():
        shutil.copytree(HOST_UNITS, dest, symlinks=True)
    exe = root / EXEC_START.lstrip("/")
    if not exe.exists():
        exe.parent.mkdir(parents=True, exist_ok=True)
        exe.write_text("#!/bin/sh\nexit 0\n")
        exe.chmod(0o755)


def verify(root: Path, unit: str = "roomd.service") -> subprocess.CompletedProcess[str]:
    """`systemd-analyze verify` of a unit installed under ``root`` (stdout+stderr merged)."""
    exe = need_systemd_analyze()
    return subprocess.run(
        [exe, "verify", f"--root={root}", unit],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "SYSTEMD_LOG_COLOR": "0", "LANG": "C.UTF-8"},
    )
