"""firmware/bootconfig.py on Pi OS sample config.txt files: merge, idempotence, conflicts."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
TOOL = ROOT / "firmware" / "bootconfig.py"
FRAGMENT = ROOT / "firmware" / "roomd-config.txt"
FIXTURES = Path(__file__).with_name("fixtures")
NOW = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bootconfig", TOOL)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bootconfig"] = module
    spec.loader.exec_module(module)
    return module


bc = _load()


@pytest.fixture
def boot(tmp_path: Path) -> Path:
    """An empty /boot/firmware with a clean cmdline.txt."""
    d = tmp_path / "firmware"
    d.mkdir()
    shutil.copy(FIXTURES / "cmdline-bookworm.txt", d / "cmdline.txt")
    return d


def _install(boot: Path, fixture: str) -> Path:
    config = boot / "config.txt"
    shutil.copy(FIXTURES / fixture, config)
    return config


def _run(config: Path, *args: str) -> int:
    return int(bc.run(["--config", str(config), *args], now=NOW))


def _backups(config: Path) -> list[Path]:
    return sorted(config.parent.glob("config.txt.roomd-bak-*"))


CLEAN = ["bookworm-2023-12-lite.txt", "bookworm-2024-11-lite.txt"]


@pytest.mark.parametrize("fixture", CLEAN)
def test_merge_then_idempotent(
    boot: Path, fixture: str, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _install(boot, fixture)
    original = config.read_text()

    assert _run(config, "--check") == 1
    diff = capsys.readouterr().out
    assert diff.startswith("---") and "+# BEGIN roomd" in diff and "+enable_uart=1" in diff

    assert _run(config) == 0
    merged = config.read_text()
    assert merged.startswith(original), "the Pi OS lines are kept as they were"
    lines = merged.splitlines()
    begin = next(i for i, line in enumerate(lines) if line.startswith("# BEGIN roomd"))
    assert lines.count("# END roomd") == 1
    assert bc.section_at_end(lines[:begin]) == "all"
    assert bc.section_at_end(lines) == "all"
    active = {s.text for s in bc.settings(lines[begin:])}
    assert {
        "dtparam=watchdog=on",
        "enable_uart=1",
        "dtoverlay=pwm-2chan,pin=18,func=2,pin2=19,func2=2",
        "dtoverlay=disable-bt",
        "dtoverlay=uart0-pi5",
    } <= active
    (backup,) = _backups(config)
    assert backup.name == "config.txt.roomd-bak-20250102T030405Z"
    assert backup.read_text() == original

    capsys.readouterr()
    assert _run(config) == 0
    assert "up to date" in capsys.readouterr().out
    assert config.read_text() == merged
    assert len(_backups(config)) == 1, "no backup when nothing changes"
    assert _run(config, "--check") == 0


def test_cli_exit_codes(boot: Path) -> None:
    config = _install(boot, "bookworm-2024-11-lite.txt")
    check = [sys.executable, str(TOOL), "--check", "--config", str(config)]
    first = subprocess.run(check, capture_output=True, text=True, check=False)
    assert first.returncode == 1 and "+# END roomd" in first.stdout
    merge = subprocess.run(check[:2] + check[3:], capture_output=True, text=True, check=False)
    assert merge.returncode == 0, merge.stderr
    assert "backup: config.txt.roomd-bak-" in merge.stdout
    again = subprocess.run(check, capture_output=True, text=True, check=False)
    assert again.returncode == 0 and "up to date" in again.stdout
    missing = subprocess.run(
        [sys.executable, str(TOOL), "--config", str(boot / "nope.txt")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert missing.returncode == 2 and "nope.txt" in missing.stderr


def test_conflict_enable_uart_0_refused(boot: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = _install(boot, "bookworm-raspi-config-serial-off.txt")
    before = config.read_text()
    assert _run(config, "--check") == 1
    err = capsys.readouterr().err
    assert "conflict: line 52 [all]: 'enable_uart=0'" in err
    assert _run(config) == 3
    assert config.read_text() == before and not _backups(config)
    assert _run(config, "--force") == 0
    assert "# BEGIN roomd" in config.read_text()
    # Still flagged afterwards: the line outside the block is left for a human to remove.
    assert _run(config, "--check") == 1


def test_section_and_i2s_conflict_on_upgraded_image(
    boot: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _install(boot, "bullseye-upgraded-pi4.txt")
    assert _run(config) == 3
    assert "dtparam=i2s=on" in capsys.readouterr().err
    assert _run(config, "--force") == 0
    lines = config.read_text().splitlines()
    begin = next(i for i, line in enumerate(lines) if line.startswith("# BEGIN roomd"))
    # The file ended inside [pi4]: an [all] is opened before the block.
    assert lines[begin - 2 : begin] == ["[all]", ""]
    assert bc.section_at_end(lines[:begin]) == "all"
    assert _run(config, "--force") == 0
    assert config.read_text().splitlines() == lines


def test_serial_console_in_cmdline_is_a_conflict(
    boot: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _install(boot, "bookworm-2024-11-lite.txt")
    shutil.copy(FIXTURES / "cmdline-serial-console.txt", boot / "cmdline.txt")
    assert _run(config) == 3
    assert "console=serial0" in capsys.readouterr().err


def test_block_replaced_in_place(boot: Path, tmp_path: Path) -> None:
    config = _install(boot, "bookworm-2024-11-lite.txt")
    assert _run(config) == 0
    with config.open("a") as fh:
        fh.write("# added later by someone\ndtparam=i2c_arm=on\n")
    fragment = tmp_path / "fragment.txt"
    changed = FRAGMENT.read_text().replace("enable_uart=1", "enable_uart=1\ngpu_mem=16")
    fragment.write_text(changed)
    assert _run(config, "--fragment", str(fragment)) == 0
    text = config.read_text()
    assert "gpu_mem=16" in text
    assert text.count("# BEGIN roomd") == 1
    assert text.endswith("# END roomd\n# added later by someone\ndtparam=i2c_arm=on\n")
    backups = _backups(config)
    assert len(backups) == 2 and backups[0] != backups[1], "an earlier backup is never overwritten"


@pytest.mark.parametrize(
    "markers",
    [
        "# BEGIN roomd\nenable_uart=1\n",
        "# END roomd\n# BEGIN roomd\n",
        "# BEGIN roomd\n# END roomd\n# BEGIN roomd\n# END roomd\n",
    ],
)
def test_broken_markers(boot: Path, markers: str) -> None:
    config = _install(boot, "bookworm-2024-11-lite.txt")
    with config.open("a") as fh:
        fh.write(markers)
    before = config.read_text()
    assert _run(config) == 2
    assert _run(config, "--check") == 2
    assert config.read_text() == before


@pytest.mark.parametrize(
    ("outside", "conflict"),
    [
        ("[none]\nenable_uart=0\n", False),
        ("[pi4]\ndtoverlay=disable-bt\n", False),
        ("enable_uart=1\n", False),
        ("dtparam=watchdog=off\n", True),
        ("[pi4]\ndtoverlay=miniuart-bt\n", True),
        ("[pi5]\ndtoverlay=miniuart-bt\n", False),
        ("dtoverlay=pwm,pin=18,func=2\n", True),
        ("dtoverlay=pwm-2chan,pin=12,func=4,pin2=13,func2=4\n", True),
        ("dtoverlay=pwm-2chan,pin=18,func=2,pin2=19,func2=2\n", False),
        ("#dtparam=i2s=on\n", False),
        ("dtparam=i2s=on,spi=on\n", True),
    ],
)
def test_conflict_rules(outside: str, conflict: bool) -> None:
    ours = bc.settings(bc.block_lines(FRAGMENT.read_text()))
    found = bc.find_conflicts(bc.settings(outside.splitlines()), ours)
    assert bool(found) is conflict, found


def test_empty_config(boot: Path) -> None:
    config = boot / "config.txt"
    config.write_text("")
    assert _run(config) == 0
    assert config.read_text().startswith("# BEGIN roomd")
    assert _run(config, "--check") == 0
