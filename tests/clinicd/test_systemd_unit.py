"""systemd/clinicd.service: verify is silent, the exposure score is low, the settings hold."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from tests.systemd.deploy_helpers import ROOT, make_verify_root, need_systemd_analyze, verify

UNIT = ROOT / "systemd" / "clinicd.service"
EXEC_START = "/opt/roomd/venv/bin/clinicd"
MAX_EXPOSURE = 2.0


def _settings(text: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if line and not line.startswith(("#", ";", "[")):
            key, _, value = line.partition("=")
            out.setdefault(key.strip(), []).append(value.strip())
    return out


def _root_with(tmp_path: Path, text: str) -> Path:
    root = tmp_path / "root"
    (root / "etc/systemd/system").mkdir(parents=True)
    (root / "etc/systemd/system/clinicd.service").write_text(text)
    make_verify_root(root)
    exe = root / EXEC_START.lstrip("/")
    exe.write_text("#!/bin/sh\nexit 0\n")
    exe.chmod(0o755)
    return root


def test_verify_is_silent_and_can_fail(tmp_path: Path) -> None:
    result = verify(_root_with(tmp_path / "good", UNIT.read_text()), "clinicd.service")
    assert result.returncode == 0 and result.stdout + result.stderr == "", result.stderr
    bad = UNIT.read_text().replace("PrivateUsers=yes", "PrivateUsers=yes\nPrivateUser=yes")
    result = verify(_root_with(tmp_path / "bad", bad), "clinicd.service")
    assert "Unknown key 'PrivateUser'" in result.stdout + result.stderr


def test_security_exposure() -> None:
    exe = need_systemd_analyze()
    result = subprocess.run(
        [exe, "security", "--offline=yes", "--no-pager", str(UNIT)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "SYSTEMD_LOG_COLOR": "0", "LANG": "C.UTF-8"},
    )
    m = re.search(r"Overall exposure level for clinicd\.service: (\d+\.\d+)", result.stdout)
    assert m, result.stdout + result.stderr
    print(f"\nsystemd-analyze security --offline=yes clinicd.service: exposure {m.group(1)}")
    assert float(m.group(1)) <= MAX_EXPOSURE


def test_settings_match_the_command_line_and_roomds_hardening() -> None:
    mine = _settings(UNIT.read_text())
    room = _settings((ROOT / "systemd" / "roomd.service").read_text())
    assert mine["ExecStart"] == [
        f"{EXEC_START} --config /etc/clinicd/clinicd.toml --data-dir /var/lib/clinicd"
    ]
    assert mine["Type"] == ["notify"] and mine["User"] == ["clinicd"]
    hardening = [
        "NoNewPrivileges", "CapabilityBoundingSet", "ProtectSystem", "ProtectHome", "PrivateTmp",
        "ProtectKernelTunables", "ProtectKernelModules", "ProtectKernelLogs", "RestrictNamespaces",
        "RestrictSUIDSGID", "LockPersonality", "MemoryDenyWriteExecute", "SystemCallFilter",
        "SystemCallArchitectures", "RestrictAddressFamilies",
    ]  # fmt: skip
    for key in hardening:
        assert mine[key] == room[key], key
    assert mine["PrivateDevices"] == ["yes"] and "DeviceAllow" not in mine
