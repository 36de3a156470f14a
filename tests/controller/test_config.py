"""``roomd.toml``: loading, defaults, every bad key at once, "did you mean", file problems,
driver names and the drivers' own keys checked against what the adapters registered."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import tempfile
import textwrap
import tomllib
from pathlib import Path
from typing import Any

import pytest

import hw
from controller import drivers
from controller.config import (
    Config,
    ConfigError,
    LightingSection,
    MqttSection,
    NibpSection,
    OximeterSection,
    ProtocolSection,
    load_config,
    parse_config,
)

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "roomd.example.toml"

hw.register_all()  # as the daemon does before it reads a config


def write(tmp_path: Path, text: str, name: str = "roomd.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def problems_of(data: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(data, "/etc/roomd/roomd.toml")
    return info.value.problems


# --- the example and the defaults -----------------------------------------------------------


def test_example_file_loads_with_its_values() -> None:
    raw = tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))
    config = load_config(EXAMPLE)
    assert isinstance(config, Config)
    assert config.room.id == raw["room"]["id"]
    assert config.room.site == raw["room"]["site"]
    assert config.mqtt.port == raw["mqtt"]["port"]
    assert config.protocol.infusion_minutes == raw["protocol"]["infusion_minutes"]
    assert config.alarms.spo2_critical.limit == raw["alarms"]["spo2_critical"]["limit"]
    infusion = raw["hardware"]["lighting"]["scenes"]["infusion"]
    assert config.hardware.lighting.scenes["infusion"].level == infusion["level"]
    assert config.hardware.lighting.scenes["infusion"].colour == tuple(infusion["colour"])
    # Scenes the example does not list keep their defaults.
    assert set(config.hardware.lighting.scenes) == set(LightingSection().scenes)


def test_only_room_id_is_required(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, '[room]\nid = "room-1"\n'))
    assert config.room.id == "room-1"
    # The contract's defaults.
    assert config.mqtt.host == "127.0.0.1"
    assert config.mqtt.port == 1883
    assert config.mqtt.username == ""
    assert config.mqtt.topic_prefix == "clinic"
    assert config.protocol.infusion_minutes == 40
    assert config.protocol.nibp_interval_minutes == 10
    assert config.protocol.call_escalate_s == 30
    assert config.protocol.call_reminder_s == 180
    assert config.alarms.spo2_low.limit == 92
    assert config.alarms.spo2_critical.priority == "high"
    assert config.alarms.stale_s == 10
    assert config.alarms.escalate_after_s == 60
    assert config.hardware.call_button.clear_hold_s == 2.0
    assert config.hardware.oximeter.port == ""
    assert config.audio.duck_db == 12


def test_missing_room_and_missing_room_id_are_reported() -> None:
    assert problems_of({}) == ["room: required key is missing"]
    assert problems_of({"room": {"site": "x"}}) == ["room.id: required key is missing"]


# --- every bad key, at once -----------------------------------------------------------------


def test_every_bad_key_is_reported_at_once_with_file_and_key(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "[room]\n"
        'id = "Room 3"\n'
        "[mqtt]\n"
        "port = 70000\n"
        "[protocol]\n"
        "nibp_interval_minutes = 20\n"
        "[alarms]\n"
        'spo2_low = {limit = 92, priority = "urgent", delay_s = 10}\n',
    )
    with pytest.raises(ConfigError) as info:
        load_config(path)
    err = info.value
    assert err.path == str(path)
    keys = ["room.id", "mqtt.port", "protocol.nibp_interval_minutes", "alarms.spo2_low.priority"]
    assert len(err.problems) == len(keys)
    for key in keys:
        assert sum(p.startswith(f"{key}: ") for p in err.problems) == 1, (key, err.problems)
    lines = str(err).splitlines()
    assert len(lines) == len(keys)
    assert all(line.startswith(f"{path}: ") for line in lines)
    # What is wrong, with the value given.
    assert any("70000" in p for p in err.problems)
    assert isinstance(err, ValueError)


def test_did_you_mean_for_a_misspelt_section() -> None:
    assert problems_of({"room": {"id": "r"}, "protocl": {}}) == [
        "protocl: unknown key (did you mean 'protocol'?)"
    ]


def test_did_you_mean_for_misspelt_keys_at_every_depth() -> None:
    problems = problems_of(
        {
            "room": {"id": "r"},
            "mqtt": {"hots": "broker"},
            "hardware": {"call_buton": {}, "nibp": {"drvier": "manual"}},
            "alarms": {"spo2_lo": {"limit": 90, "priority": "low", "delay_s": 1}},
        }
    )
    assert sorted(problems) == sorted(
        [
            "mqtt.hots: unknown key (did you mean 'host'?)",
            "hardware.call_buton: unknown key (did you mean 'call_button'?)",
            "hardware.nibp.drvier: unknown key (did you mean 'driver'?)",
            "alarms.spo2_lo: unknown key (did you mean 'spo2_low'?)",
        ]
    )


def test_unknown_key_without_a_close_match_has_no_hint() -> None:
    assert problems_of({"room": {"id": "r"}, "mqtt": {"zzzzzz": 1}}) == ["mqtt.zzzzzz: unknown key"]


def test_did_you_mean_inside_a_lighting_scene() -> None:
    problems = problems_of(
        {"room": {"id": "r"}, "hardware": {"lighting": {"scenes": {"infusion": {"levle": 0.1}}}}}
    )
    assert any(
        p.startswith("hardware.lighting.scenes.infusion.levle: unknown key")
        and "did you mean 'level'" in p
        for p in problems
    ), problems


# --- scenes ---------------------------------------------------------------------------------


def test_unknown_scene_name_is_refused() -> None:
    problems = problems_of(
        {"room": {"id": "r"}, "hardware": {"lighting": {"scenes": {"infusoin": {"level": 0.1}}}}}
    )
    assert len(problems) == 1
    assert problems[0].startswith("hardware.lighting.scenes: ")
    assert "infusoin" in problems[0]


def test_partial_scenes_override_keeps_the_other_defaults() -> None:
    defaults = LightingSection().scenes
    config = parse_config(
        {
            "room": {"id": "r"},
            "hardware": {"lighting": {"scenes": {"debrief": {"level": 0.25, "fade_s": 90}}}},
        }
    )
    scenes = config.hardware.lighting.scenes
    assert set(scenes) == set(defaults)
    assert scenes["debrief"].level == 0.25
    assert scenes["debrief"].fade_s == 90
    assert scenes["debrief"] != defaults["debrief"]
    for name in set(defaults) - {"debrief"}:
        assert scenes[name] == defaults[name], name


def test_scene_level_out_of_range_is_refused() -> None:
    problems = problems_of(
        {"room": {"id": "r"}, "hardware": {"lighting": {"scenes": {"idle": {"level": 1.5}}}}}
    )
    assert [p.split(":")[0] for p in problems] == ["hardware.lighting.scenes.idle.level"]


# --- drivers: names and their own keys, from the registry ----------------------------------


def test_an_unknown_driver_is_refused_naming_the_drivers_there_are() -> None:
    problems = problems_of(
        {
            "room": {"id": "r"},
            "hardware": {
                "oximeter": {"driver": "nonin-df2"},
                "nibp": {"driver": "manuel"},
                "lighting": {"driver": "laser"},
            },
        }
    )
    assert problems == [
        "hardware.lighting.driver: unknown lighting driver; lighting drivers are dmx, pwm, "
        "rgb, sysfs_pwm (got 'laser')",
        "hardware.oximeter.driver: unknown oximeter driver (did you mean 'nonin_df2'?); "
        "oximeter drivers are masimo_ascii, nonin_ascii, nonin_df2, nonin_df7 (got 'nonin-df2')",
        "hardware.nibp.driver: unknown nibp driver (did you mean 'manual'?); nibp drivers are "
        "manual, suntech (got 'manuel')",
    ]


def test_the_section_and_the_drivers_own_keys_are_reported_together() -> None:
    problems = problems_of(
        {
            "room": {"id": "r"},
            "hardware": {
                "lighting": {
                    "driver": "dmx",
                    "dmx_chanels": [1],
                    "dmx_channels": [0, 1, 2],
                    "scenes": {"idle": {"level": 2}},
                },
                "oximeter": {"driver": "nonin_df2", "baud": 10, "pins": [18]},
            },
        }
    )
    assert problems == [
        "hardware.lighting.scenes.idle.level: Input should be less than or equal to 1 (got 2)",
        "hardware.lighting.dmx_channels.0: Input should be greater than or equal to 1 (got 0)",
        "hardware.lighting.dmx_chanels: unknown key (did you mean 'dmx_channels'?)",
        "hardware.oximeter.baud: Input should be greater than or equal to 1200 (got 10)",
        "hardware.oximeter.pins: unknown key for the nonin_df2 driver (it has no keys of its own)",
    ]


def test_the_drivers_own_keys_are_kept_and_defaults_come_from_the_driver() -> None:
    config = parse_config(
        {
            "room": {"id": "r"},
            "hardware": {"lighting": {"driver": "dmx", "port": "/dev/roomd/dmx"}},
        }
    )
    dmx = config.hardware.lighting.driver_settings()
    assert dmx.model_dump() == {"port": "/dev/roomd/dmx", "dmx_channels": [1, 2, 3]}
    # A section left alone names no driver: nothing is looked up until a driver is built.
    assert config.hardware.oximeter.settings is None
    assert config.hardware.oximeter.driver_settings() == drivers.DriverSettings()


@pytest.mark.parametrize("section", [LightingSection, OximeterSection, NibpSection])
def test_every_default_driver_is_a_registered_one(section: type[LightingSection]) -> None:
    default = section().driver
    assert default in drivers.names(section.kind)
    assert section().driver_settings() == drivers.settings_model(section.kind, default)()


def run_python(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter (an empty registry), importing from this tree."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_config_reads_without_the_adapters_but_a_named_driver_needs_them(
    tmp_path: Path,
) -> None:
    result = run_python(
        """
        import sys
        from controller.config import ConfigError, parse_config

        parse_config({"room": {"id": "r"}})  # names no driver: no adapter needed
        assert not [m for m in sys.modules if m == "hw" or m.startswith("hw.")]
        try:
            parse_config({"room": {"id": "r"}, "hardware": {"nibp": {"driver": "manual"}}})
        except ConfigError as exc:
            print(exc)
        import controller.daemon  # the daemon's process: the registry loads the adapters
        config = parse_config({"room": {"id": "r"}, "hardware": {"nibp": {"driver": "manual"}}})
        print(config.hardware.nibp.driver)
        """,
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "<config>: hardware.nibp.driver: no nibp drivers are registered (the hardware adapters "
        "were not loaded) (got 'manual')",
        "manual",
    ]


def test_the_daemon_exits_2_naming_file_and_key_for_an_unknown_driver(tmp_path: Path) -> None:
    path = write(tmp_path, '[room]\nid = "r"\n[hardware.oximeter]\ndriver = "masimo"\n')
    result = run_python(
        f"""
        import sys
        from controller.daemon import main
        sys.exit(main(["--config", {str(path)!r}, "--data-dir", {str(tmp_path / "d")!r}]))
        """,
        tmp_path,
    )
    assert result.returncode == 2, result.stderr
    assert f"{path}: hardware.oximeter.driver: unknown oximeter driver (did you mean " in (
        result.stderr
    )
    assert "oximeter drivers are masimo_ascii, nonin_ascii, nonin_df2, nonin_df7" in result.stderr


# --- file problems --------------------------------------------------------------------------


def test_toml_syntax_error_is_a_config_error(tmp_path: Path) -> None:
    path = write(tmp_path, '[room]\nid = "room-1\n')
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.path == str(path)
    assert len(info.value.problems) == 1
    assert "not valid TOML" in info.value.problems[0]


def test_file_that_is_not_utf8_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "roomd.toml"
    path.write_bytes('[room]\nid = "room-1"\nsite = "Montréal"\n'.encode("latin-1"))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.path == str(path)


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "nope.toml"
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.problems == ["file not found"]
    assert str(info.value) == f"{path}: file not found"


def test_directory_instead_of_a_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path)
    assert info.value.path == str(tmp_path)
    assert len(info.value.problems) == 1


def _load_as(uid: int, path: Path) -> int:
    """Run load_config(path) in a child process with ``uid``; its verdict as an exit code."""
    pid = os.fork()
    if pid == 0:  # the child: never returns to pytest
        code = 9
        try:
            os.setgid(uid)
            os.setuid(uid)
            load_config(path)
            code = 0
        except ConfigError as exc:
            code = 1 if exc.problems == ["permission denied"] else 2
        except BaseException:
            code = 3
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def test_unreadable_file_is_a_config_error(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        path = write(tmp_path, '[room]\nid = "room-1"\n')
        path.chmod(0)
        try:
            with pytest.raises(ConfigError) as info:
                load_config(path)
            assert info.value.problems == ["permission denied"]
        finally:
            path.chmod(stat.S_IRUSR | stat.S_IWUSR)
        return
    # Root reads a mode-000 file anyway, so the unreadable case is checked in a child process
    # that drops to the unprivileged "nobody" uid (65534), in a directory it may traverse.
    nobody = 65534
    with tempfile.TemporaryDirectory() as tmp:
        os.chmod(tmp, 0o755)
        path = Path(tmp) / "roomd.toml"
        path.write_text('[room]\nid = "room-1"\n', encoding="utf-8")
        path.chmod(0o644)
        assert _load_as(nobody, path) == 0  # the child can reach and read a readable file
        path.chmod(0)
        assert _load_as(nobody, path) == 1


# --- values ---------------------------------------------------------------------------------


@pytest.mark.parametrize("room_id", ["room-3", "a", "0", "r" * 32, "icu-bed-12"])
def test_room_id_pattern_accepts(room_id: str) -> None:
    assert parse_config({"room": {"id": room_id}}).room.id == room_id


@pytest.mark.parametrize(
    "room_id", ["", "Room-3", "room 3", "room_3", "room/3", "r" * 33, "salle-é", "room+1"]
)
def test_room_id_pattern_refuses(room_id: str) -> None:
    problems = problems_of({"room": {"id": room_id}})
    assert len(problems) == 1
    assert problems[0].startswith("room.id: ")


@pytest.mark.parametrize("minutes", [10, 12.5, 15])
def test_nibp_interval_within_bounds(minutes: float) -> None:
    config = parse_config({"room": {"id": "r"}, "protocol": {"nibp_interval_minutes": minutes}})
    assert config.protocol.nibp_interval_minutes == minutes


@pytest.mark.parametrize("minutes", [0, 9, 9.99, 15.01, 16, 60])
def test_nibp_interval_outside_bounds(minutes: float) -> None:
    problems = problems_of({"room": {"id": "r"}, "protocol": {"nibp_interval_minutes": minutes}})
    assert len(problems) == 1
    assert problems[0].startswith("protocol.nibp_interval_minutes: ")
    assert repr(minutes) in problems[0]


def test_sections_are_frozen() -> None:
    config = parse_config({"room": {"id": "r"}})
    with pytest.raises(ValueError):
        config.room.id = "other"  # type: ignore[misc]
    assert ProtocolSection().nibp_interval_minutes == config.protocol.nibp_interval_minutes
    assert MqttSection().port == config.mqtt.port


# --- what the protocol expects, and the clinic's time zone ----------------------------------


def test_protocol_expectations_default_to_the_seeds() -> None:
    protocol = ProtocolSection()
    assert protocol.playlist_minutes == (50, 60)
    assert protocol.debrief_minutes == (20, 30)
    assert protocol.dose_mg_per_kg == 0.5
    assert {"nausea", "dizziness", "dissociation", "headache"} <= set(protocol.side_effects)
    assert parse_config({"room": {"id": "r"}}).room.timezone == "UTC"


def test_a_clinic_sets_its_own_expectations_and_time_zone() -> None:
    config = parse_config(
        {
            "room": {"id": "r", "timezone": "America/Montreal"},
            "protocol": {"playlist_minutes": [45, 70], "side_effects": ["tingling"]},
        }
    )
    assert config.room.timezone == "America/Montreal"
    assert config.protocol.playlist_minutes == (45, 70)
    assert config.protocol.side_effects == ["tingling"]


@pytest.mark.parametrize(
    ("data", "key", "words"),
    [
        ({"room": {"id": "r", "timezone": "Mars/Olympus"}}, "room.timezone", "IANA"),
        ({"room": {"id": "r", "timezone": "EST5EDT/../x"}}, "room.timezone", "IANA"),
        ({"protocol": {"playlist_minutes": [60, 50]}}, "protocol.playlist_minutes", "exceed"),
        ({"protocol": {"playlist_minutes": [50]}}, "protocol.playlist_minutes.1", "missing"),
        ({"protocol": {"debrief_minutes": [0, 30]}}, "protocol.debrief_minutes.0", ""),
        ({"protocol": {"dose_mg_per_kg": 0}}, "protocol.dose_mg_per_kg", ""),
        ({"protocol": {"side_effects": []}}, "protocol.side_effects", ""),
        ({"protocol": {"side_effects": [""]}}, "protocol.side_effects.0", ""),
        # the list rides on every retained state: bounded so the state fits the broker
        (
            {"protocol": {"side_effects": [f"e{i}" for i in range(51)]}},
            "protocol.side_effects",
            "50",
        ),
    ],
)
def test_bad_expectations_and_zones_name_the_key(
    data: dict[str, Any], key: str, words: str
) -> None:
    [problem] = problems_of({"room": {"id": "r"}} | data)
    assert problem.startswith(f"{key}:") and words in problem


# --- strict types and the broker keys (issue 15) --------------------------------------------


@pytest.mark.parametrize(
    ("section", "key", "value"),
    [
        ("mqtt", "port", "18883"),
        ("mqtt", "session_expiry_s", True),
        ("mqtt", "keepalive_s", 15.0),
        ("room", "allow_unsynced_clock", "yes"),
        ("protocol", "nibp_interval_minutes", "5"),
    ],
)
def test_values_of_the_wrong_type_are_refused_not_coerced(
    section: str, key: str, value: Any
) -> None:
    data: dict[str, Any] = {"room": {"id": "r"}}
    data.setdefault(section, {})[key] = value
    (problem,) = problems_of(data)
    assert problem.startswith(f"{section}.{key}: "), problem


def test_a_number_where_a_float_is_wanted_is_fine() -> None:
    config = parse_config({"room": {"id": "r"}, "mqtt": {"command_max_age_s": 45}})
    assert config.mqtt.command_max_age_s == 45


@pytest.mark.parametrize("host", ["", " ", "broker host"])
def test_an_empty_or_spaced_host_is_refused(host: str) -> None:
    (problem,) = problems_of({"room": {"id": "r"}, "mqtt": {"host": host}})
    assert problem.startswith("mqtt.host: ")


def test_a_missing_or_broken_tls_ca_is_refused_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "nope.crt"
    (problem,) = problems_of({"room": {"id": "r"}, "mqtt": {"tls_ca": str(missing)}})
    assert problem.startswith("mqtt.tls_ca: ") and f"no such file: {missing}" in problem
    junk = write(tmp_path, "not a certificate\n", "junk.crt")
    (problem,) = problems_of({"room": {"id": "r"}, "mqtt": {"tls_ca": str(junk)}})
    assert problem.startswith("mqtt.tls_ca: ") and "not a PEM CA certificate" in problem


def test_the_daemon_exits_2_for_a_missing_tls_ca(tmp_path: Path) -> None:
    path = write(tmp_path, f'[room]\nid = "r"\n[mqtt]\ntls_ca = "{tmp_path}/ca.crt"\n')
    result = run_python(
        f"""
        import sys
        from controller.daemon import main
        sys.exit(main(["--config", {str(path)!r}, "--data-dir", {str(tmp_path / "d")!r}]))
        """,
        tmp_path,
    )
    assert result.returncode == 2, result.stderr
    assert f"{path}: mqtt.tls_ca: " in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_a_limit_that_is_not_a_number_is_refused_naming_the_key(tmp_path: Path, value: str) -> None:
    # A NaN limit compares false with every value: it would silently disable the alarm.
    path = write(
        tmp_path,
        f'[room]\nid = "room-3"\n[alarms]\n'
        f'spo2_low = {{limit = {value}, priority = "medium", delay_s = 10}}\n'
        f"stale_s = {value}\n",
    )
    with pytest.raises(ConfigError) as info:
        load_config(path)
    problems = info.value.problems
    assert any(p.startswith("alarms.spo2_low.limit: ") for p in problems), problems
    assert any(p.startswith("alarms.stale_s: ") for p in problems), problems
