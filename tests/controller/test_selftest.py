"""``roomd --self-test`` against the simulated room and a real broker."""

from __future__ import annotations

import queue
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from controller.selftest import SelfTest, print_results
from tests.controller.harness import make_config
from tests.support.broker import Broker, free_port


def run_self_test(
    tmp_path: Path, port: int, extra_toml: str = ""
) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "roomd.toml"
    config.write_text(f'[room]\nid = "room-st"\n[mqtt]\nport = {port}\n{extra_toml}')
    return subprocess.run(
        [sys.executable, "-m", "controller", "--simulate", "--self-test", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=90,
    )


def test_self_test_passes_on_the_simulated_room(tmp_path: Path, broker: Broker) -> None:
    result = run_self_test(tmp_path, broker.port)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = {line.split()[1]: line.split()[0] for line in result.stdout.splitlines()[:-1]}
    # Observed by the room itself: a broker's answer, a parsed frame, an open port.
    for check in ("broker", "oximeter", "nibp"):
        assert lines[check] == "PASS", result.stdout
    # A light, a sound, a press: for a person to confirm, never PASS.
    for check in ("lights", "call", "buzzer"):
        assert lines[check] == "CHECK", result.stdout
    assert "PASS" not in {lines.get("headphones"), lines.get("speakers")}
    summary = result.stdout.splitlines()[-1]
    assert "3 passed" in summary and "3 to check by eye or ear" in summary, summary
    assert summary.endswith("0 failed")


def test_self_test_fails_when_the_broker_is_unreachable(tmp_path: Path) -> None:
    result = run_self_test(tmp_path, free_port())
    assert result.returncode == 1
    assert result.stdout.splitlines()[0].startswith("FAIL  broker")


def test_self_test_reads_the_drivers_the_config_names(tmp_path: Path, broker: Broker) -> None:
    # The daemon loads the adapters before reading the config: named drivers are known.
    result = run_self_test(
        tmp_path,
        broker.port,
        '[hardware.oximeter]\ndriver = "nonin_df7"\n[hardware.nibp]\ndriver = "manual"\n'
        '[hardware.lighting]\ndriver = "rgb"\npins = [5, 6, 13]\n',
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = {line.split()[1]: line for line in result.stdout.splitlines()[:-1]}
    assert lines["oximeter"].startswith("PASS") and "nonin_df7:" in lines["oximeter"]
    assert lines["nibp"].startswith("SKIP")
    assert lines["lights"].startswith("CHECK") and "(rgb)" in lines["lights"]


def oximeter_check(**room: str) -> tuple[str, str, str]:
    """The oximeter check of a room whose config builds no oximeter driver."""
    config = make_config(room={"id": "room-st", **room})
    return SelfTest(config, SimpleNamespace(oximeter=None), queue.SimpleQueue()).oximeter()


def test_a_missing_oximeter_fails_the_self_test() -> None:
    verdict, check, detail = oximeter_check()
    assert (verdict, check) == ("FAIL", "oximeter")
    assert "[hardware.oximeter] port" in detail and 'monitoring = "manual"' in detail


def test_a_missing_oximeter_is_skipped_with_manual_monitoring() -> None:
    verdict, _, detail = oximeter_check(monitoring="manual")
    assert verdict == "SKIP"
    assert "manual" in detail


@pytest.mark.parametrize(
    ("verdicts", "code"),
    [(["PASS", "CHECK", "SKIP"], 0), (["PASS", "CHECK", "FAIL"], 1)],
)
def test_checks_to_confirm_do_not_fail_but_are_counted(
    verdicts: list[str], code: int, capsys: pytest.CaptureFixture[str]
) -> None:
    assert print_results([(v, f"c{i}", "detail") for i, v in enumerate(verdicts)]) == code
    out = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in out[:-1]] == verdicts
    assert "1 passed, 1 to check by eye or ear" in out[-1]
    assert out[-1].endswith(f"{code} failed")
