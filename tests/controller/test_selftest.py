"""``roomd --self-test`` against the simulated room and a real broker."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

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
    for check in ("broker", "lights", "buzzer", "oximeter", "nibp"):
        assert lines[check] == "PASS", result.stdout
    assert lines["call"] == "PASS"
    assert "0 failed" in result.stdout.splitlines()[-1]


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
    assert lines["lights"].startswith("PASS") and "(rgb)" in lines["lights"]
