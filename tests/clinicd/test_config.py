"""clinicd.toml: defaults, every bad key reported with its file, exit 2 from the command."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from controller.errors import ConfigError
from mqtt_bridge.clinicd.config import load_config, parse_config

EXAMPLE = Path(__file__).resolve().parents[2] / "clinicd.example.toml"


def clinicd(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the command; what it printed and its exit code."""
    return subprocess.run(
        [sys.executable, "-m", "mqtt_bridge.clinicd", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_defaults_and_the_example_file() -> None:
    config = parse_config({})
    assert config.mqtt.topic_prefix == "clinic" and config.mqtt.session_expiry_s == 86400
    assert (config.course.sessions, config.course.min_gap_hours) == (6, 48)
    assert config.course.max_gap_days == 10 and config.hl7 is None
    assert config.db_path("/var/lib/clinicd") == Path("/var/lib/clinicd/archive.sqlite")
    assert load_config(EXAMPLE) == config
    assert parse_config({"archive": {"db": "/x/a.db"}}).db_path("/d") == Path("/x/a.db")


def test_every_bad_key_is_named() -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(
            {
                "mqtt": {"hots": "x", "port": 0},
                "course": {"sessions": "six", "min_gap_hour": 1},
                "hl7": {"host": "ehr"},
                "extra": {},
            },
            "c.toml",
        )
    problems = err.value.problems
    assert len(problems) == 6, problems
    assert "mqtt.hots: unknown key (did you mean 'host'?)" in problems
    assert "course.min_gap_hour: unknown key (did you mean 'min_gap_hours'?)" in problems
    assert "hl7.port: required key is missing" in problems
    assert any(p.startswith("mqtt.port:") for p in problems)
    assert any(p.startswith("course.sessions:") for p in problems)
    assert "extra: unknown key" in problems
    assert all(line.startswith("c.toml: ") for line in str(err.value).splitlines())


@pytest.mark.parametrize(
    "value", ["MONTREAL-KETAMINE-CLINIC", "CLINIC|A", "CLINIC^A", "A&B", "A~B", "A\\B"]
)
def test_hl7_identities_fit_an_hl7_namespace_id(value: str) -> None:
    """Over 20 characters or holding a delimiter, MSH-4 / PID-3.4 fail hl7apy strict (an EHR
    would refuse every message): refused at start, naming the key."""
    for key in ("sending_facility", "assigning_authority"):
        with pytest.raises(ConfigError) as err:
            parse_config({"hl7": {"host": "ehr", "port": 2575, key: value}}, "c.toml")
        assert any(p.startswith(f"hl7.{key}:") for p in err.value.problems), err.value.problems
    ok = parse_config(
        {"hl7": {"host": "ehr", "port": 2575, "sending_facility": "MTL-KETAMINE-CLINIC"}}, "c"
    )
    assert ok.hl7 is not None and ok.hl7.sending_facility == "MTL-KETAMINE-CLINIC"


@pytest.mark.parametrize(
    ("content", "problem"),
    [(None, "file not found"), (b"[mqtt\n", "not valid TOML"), (b"\xff\xfe", "not UTF-8")],
)
def test_unreadable_files(tmp_path: Path, content: bytes | None, problem: str) -> None:
    path = tmp_path / "clinicd.toml"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ConfigError, match=problem):
        load_config(path)


def test_command_exits_2_naming_file_and_keys(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[mqtt]\nprot = 1883\n[course]\nmax_gap_days = -1\n")
    result = clinicd("--config", str(bad))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines == [
        f"{bad}: mqtt.prot: unknown key (did you mean 'port'?)",
        f"{bad}: course.max_gap_days: Input should be greater than 0 (got -1)",
    ]


def test_an_archive_that_cannot_be_opened_exits_1(tmp_path: Path) -> None:
    config = tmp_path / "clinicd.toml"
    config.write_text(f'[archive]\ndb = "{tmp_path}"\n')  # a directory, not a database
    result = clinicd("--config", str(config))
    assert result.returncode == 1
    assert f"clinicd: cannot open the archive {tmp_path}" in result.stderr
