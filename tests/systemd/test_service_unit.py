"""systemd/roomd.service: systemd-analyze verify (no output at all) and the security score."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from deploy_helpers import EXEC_START, UNIT, make_verify_root, need_systemd_analyze, verify

MAX_EXPOSURE = 2.5


def _directives(text: str) -> list[tuple[str, str]]:
    out = []
    for raw in text.splitlines():
        line = raw.strip()
        if line and not line.startswith(("#", ";", "[")):
            key, _, value = line.partition("=")
            out.append((key.strip(), value.strip()))
    return out


def _root_with(tmp_path: Path, unit_text: str) -> Path:
    root = tmp_path / "root"
    unitdir = root / "etc/systemd/system"
    unitdir.mkdir(parents=True)
    (unitdir / "roomd.service").write_text(unit_text)
    make_verify_root(root)
    return root


def test_verify_is_silent(tmp_path: Path) -> None:
    result = verify(_root_with(tmp_path, UNIT.read_text()))
    # systemd 252's verify exits 0 on warnings: any output at all is a failure.
    assert result.returncode == 0 and result.stdout == "" and result.stderr == "", (
        result.stdout + result.stderr
    )


def test_verify_harness_catches_mistakes(tmp_path: Path) -> None:
    """The check above can fail: a typo and a missing executable are reported."""
    bad = UNIT.read_text().replace("WatchdogSec=20s", "WatchdogSec=20s\nWatchDogSec=20s")
    root = _root_with(tmp_path, bad)
    (root / EXEC_START.lstrip("/")).unlink()
    result = verify(root)
    out = result.stdout + result.stderr
    assert "Unknown key 'WatchDogSec'" in out
    assert f"Command {EXEC_START} is not executable" in out


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
    m = re.search(r"Overall exposure level for roomd\.service: (\d+\.\d+)", result.stdout)
    assert m, result.stdout + result.stderr
    score = float(m.group(1))
    print(f"\nsystemd-analyze security --offline=yes roomd.service: exposure {score}")
    failing = [ln.strip() for ln in result.stdout.splitlines() if ln.lstrip().startswith("✗")]
    assert score <= MAX_EXPOSURE, "\n".join(failing)


def test_required_settings() -> None:
    pairs = _directives(UNIT.read_text())
    settings = dict(pairs)
    expected = {
        "Type": "notify",
        "NotifyAccess": "main",
        "WatchdogSec": "20s",
        "Restart": "on-failure",
        "User": "roomd",
        "StateDirectory": "roomd",
        "RuntimeDirectory": "roomd",
        "ConfigurationDirectory": "roomd",
        "ExecStart": f"{EXEC_START} --config /etc/roomd/roomd.toml --data-dir /var/lib/roomd",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "NoNewPrivileges": "yes",
        "PrivateTmp": "yes",
        "DevicePolicy": "closed",
        "SystemCallArchitectures": "native",
        "CapabilityBoundingSet": "",
        "RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6",
        "LockPersonality": "yes",
        "RestrictRealtime": "yes",
        "UMask": "0027",
        "StartLimitIntervalSec": "300",
        "StartLimitBurst": "5",
    }
    for key, value in expected.items():
        assert settings.get(key) == value, key
    envs = [v for k, v in pairs if k == "Environment"]
    assert "LG_WD=%t/roomd" in envs and "GPIOZERO_PIN_FACTORY=lgpio" in envs
    assert ("SystemCallFilter", "@system-service") in pairs
    for key in ("ProtectKernelTunables", "ProtectKernelModules", "ProtectKernelLogs"):
        assert settings.get(key) == "yes", key
    # Devices: GPIO, serial and sound only, never "m" (mknod).
    allowed = [v for k, v in pairs if k == "DeviceAllow"]
    assert {a.split()[0] for a in allowed} == {
        "char-gpiochip",
        "char-*gpiomem*",
        "char-ttyAMA",
        "char-ttyS",
        "char-ttyUSB",
        "char-ttyACM",
        "char-alsa",
    }
    assert all(a.split()[1] == "rw" for a in allowed)
    assert "/sys/class/pwm" in settings["ReadWritePaths"]


def test_unit_has_no_placeholder_paths() -> None:
    text = UNIT.read_text()
    assert "/home/" not in text and "/usr/local/" not in text
