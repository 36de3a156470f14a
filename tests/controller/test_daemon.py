"""roomd's command line, config refusal, the scaled clock's continuity, the simulated room."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from controller.clock import SystemClock
from controller.config import Config, parse_config
from controller.daemon import Devices, main, parse_args, scaled_clock
from controller.events import (
    CallHeld,
    CallPressed,
    DeviceChanged,
    InboxMessage,
    PlaylistEnded,
    SimAction,
)
from controller.journal import Journal


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "roomd.toml"
    path.write_text(text, encoding="utf-8")
    return path


# --- the command line -----------------------------------------------------------------------


def test_parse_args_defaults_match_the_contract() -> None:
    args = parse_args([])
    assert args.config == "/etc/roomd/roomd.toml"
    assert args.data_dir == "/var/lib/roomd"
    assert args.simulate is False
    assert args.time_scale == 1.0


def test_parse_args_options() -> None:
    args = parse_args(
        ["--config", "/tmp/r.toml", "--simulate", "--time-scale", "60", "--data-dir", "/d"]
    )
    assert (args.config, args.simulate, args.time_scale, args.data_dir) == (
        "/tmp/r.toml",
        True,
        60.0,
        "/d",
    )


def test_bad_config_exits_2_with_one_line_per_bad_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(
        tmp_path,
        '[room]\nid = "Room 3"\n[mqtt]\nport = 0\nhots = "x"\n[protocol]\ncall_escalate_s = -1\n',
    )
    data = tmp_path / "data"
    code = main(["--config", str(path), "--data-dir", str(data)])
    assert code == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    keys = ["room.id", "mqtt.port", "mqtt.hots", "protocol.call_escalate_s"]
    assert len(lines) == len(keys), lines
    for key in keys:
        assert sum(line.startswith(f"{path}: {key}: ") for line in lines) == 1, (key, lines)
    assert any("did you mean 'host'" in line for line in lines)
    assert not (data / "journal.sqlite").exists()  # refused before touching the journal


def test_a_password_file_others_can_read_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Found while wiring the adapters, after the journal opened: still one line, exit 2."""
    secret = tmp_path / "mqtt.pw"
    secret.write_text("roomd:pw\n")
    secret.chmod(0o644)
    path = write(
        tmp_path, f'[room]\nid = "r3"\n[mqtt]\nusername = "roomd"\npassword_file = "{secret}"\n'
    )
    code = main(["--config", str(path), "--data-dir", str(tmp_path / "data"), "--simulate"])
    assert code == 2
    assert capsys.readouterr().err.strip() == (
        f"{secret}: password file is readable by others; chmod 600 or 640"
    )


def test_report_with_a_bad_config_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, '[room]\nid = "Room 3"\n')
    assert main(["report", "s1", "--config", str(path), "--data-dir", str(tmp_path)]) == 2
    assert capsys.readouterr().err.startswith(f"{path}: room.id: ")


def test_missing_config_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "absent.toml"
    assert main(["--config", str(path), "--data-dir", str(tmp_path / "d")]) == 2
    assert capsys.readouterr().err.strip() == f"{path}: file not found"


def test_time_scale_without_simulate_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, '[room]\nid = "room-1"\n')
    data = tmp_path / "data"
    code = main(["--config", str(path), "--time-scale", "60", "--data-dir", str(data)])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith("--time-scale: ")
    assert not (data / "journal.sqlite").exists()


def test_non_positive_time_scale_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, '[room]\nid = "room-1"\n')
    code = main(
        ["--config", str(path), "--simulate", "--time-scale=0", "--data-dir", str(tmp_path)]
    )
    assert code == 2
    assert capsys.readouterr().err.strip().startswith("--time-scale: ")


# --- the scaled clock -----------------------------------------------------------------------


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    j = Journal(tmp_path / "journal.sqlite")
    yield j
    j.close()


def test_unscaled_clock_is_real_time(journal: Journal) -> None:
    clock = scaled_clock(journal, 1.0)
    assert clock.time_scale == 1.0
    before = datetime.now(UTC)
    assert before - timedelta(seconds=1) <= clock.now() <= datetime.now(UTC)
    assert journal.get_meta("time_anchor") is None


def test_scaled_clock_continues_across_two_calls(journal: Journal) -> None:
    first = scaled_clock(journal, 60.0)
    t1 = first.now()
    second = scaled_clock(journal, 60.0)  # a restart on the same journal
    t2 = second.now()
    assert second.time_scale == 60.0
    assert t2 >= t1
    assert t2 - t1 < timedelta(seconds=5)  # continuous: no jump either way
    # The stored anchor was reused (it is kept to the millisecond).
    assert abs(second.anchor[1] - first.anchor[1]) < timedelta(milliseconds=1)
    assert abs(second.anchor[0] - first.anchor[0]) < timedelta(milliseconds=1)


def test_scaled_clock_never_goes_before_the_journal(journal: Journal) -> None:
    first = scaled_clock(journal, 60.0)
    # Events stamped in scaled time, an hour of session ahead of real time.
    ahead = first.now() + timedelta(hours=1)
    journal.append(ahead, "s-1", "phase_changed", {"to": "infusion"})
    other = scaled_clock(journal, 30.0)  # a different scale: a new anchor
    assert other.time_scale == 30.0
    assert other.now() >= ahead
    again = scaled_clock(journal, 30.0)
    assert again.now() >= ahead


def test_scaled_clock_on_an_empty_journal_starts_at_real_time(journal: Journal) -> None:
    before = datetime.now(UTC)
    clock = scaled_clock(journal, 10.0)
    real0, scaled0 = clock.anchor
    assert real0 == scaled0
    # The anchor is now (it may be kept to the millisecond, as the journal stores it).
    assert before - timedelta(milliseconds=1) <= real0 <= datetime.now(UTC)
    assert isinstance(clock, SystemClock)


# --- the simulated room (``--simulate``) -----------------------------------------------------


@pytest.fixture
def sim_config(tmp_path: Path) -> Config:
    # An oximeter with a port and a manual NIBP: no pseudo-terminal device starts. No music
    # directory: the stand-in player, not libVLC.
    return parse_config(
        {
            "room": {"id": "r"},
            "hardware": {
                "oximeter": {"port": "/dev/null-not-used"},
                "nibp": {"driver": "manual"},
            },
            "audio": {"music_dir": str(tmp_path / "no-music-here")},
        }
    )


@pytest.fixture
def sim(sim_config: Config) -> Iterator[tuple[Devices, list[InboxMessage]]]:
    emitted: list[InboxMessage] = []
    devices = Devices(sim_config, emitted.append, SystemClock(), simulate=True)
    yield devices, emitted
    devices.act(SimAction("release_call"))  # a pending simulated release becomes a no-op
    devices.close()


def after(devices: Devices, seconds: float) -> None:
    """Let the call button's hold check look at the button ``seconds`` from now, at once."""
    devices.call_button.poll(time.monotonic() + seconds)


def test_simulated_devices_start_no_pty_device(
    sim: tuple[Devices, list[InboxMessage]],
) -> None:
    devices, emitted = sim
    assert devices.sim_devices == []
    assert devices.sim_oximeter is None
    assert devices.nibp is None
    assert devices.oximeter is not None  # the configured port is used as set (not opened yet)
    present = devices.present()
    assert present["call_button"] == "ok" and present["nibp"] == "absent"
    assert "oximeter" not in present  # a serial device reports itself when opened
    assert DeviceChanged("call_button", "ok", "GPIO17") in emitted


def test_sim_press_call(sim: tuple[Devices, list[InboxMessage]]) -> None:
    devices, emitted = sim
    emitted.clear()
    devices.act(SimAction("press_call"))
    assert emitted == [CallPressed()]


def test_sim_hold_call_long_enough_clears(sim: tuple[Devices, list[InboxMessage]]) -> None:
    devices, emitted = sim
    hold = devices.call_button.clear_hold_s
    emitted.clear()
    devices.act(SimAction("hold_call", {"seconds": 3}))
    assert emitted == [CallPressed()]
    after(devices, hold)
    assert emitted == [CallPressed(), CallHeld()]


def test_sim_released_before_the_hold_time_is_only_a_press(
    sim: tuple[Devices, list[InboxMessage]],
) -> None:
    devices, emitted = sim
    emitted.clear()
    devices.act(SimAction("hold_call", {"seconds": 60}))
    devices.act(SimAction("release_call"))
    after(devices, devices.call_button.clear_hold_s * 5)
    assert emitted == [CallPressed()]


def test_sim_finish_playlist(sim: tuple[Devices, list[InboxMessage]]) -> None:
    devices, emitted = sim
    devices.audio.play(["a.ogg", "b.ogg"])
    emitted.clear()
    devices.act(SimAction("finish_playlist"))
    assert [type(m).__name__ for m in emitted] == [
        "TrackEnded",
        "TrackStarted",
        "TrackEnded",
        "PlaylistEnded",
    ]
    assert emitted[-1] == PlaylistEnded()
    assert devices.audio.playing is False


def test_sim_unknown_action_is_logged_not_raised(
    sim: tuple[Devices, list[InboxMessage]], caplog: pytest.LogCaptureFixture
) -> None:
    devices, emitted = sim
    emitted.clear()
    with caplog.at_level(logging.WARNING, logger="roomd"):
        devices.act(SimAction("teleport", {"where": "moon"}))
        devices.act(SimAction("incident", {"kind": "alien"}))
    assert emitted == []
    messages = [r.getMessage() for r in caplog.records]
    assert any("teleport" in m for m in messages)
    assert any("alien" in m for m in messages)


def test_sim_incident_reaches_the_simulated_patient(
    sim: tuple[Devices, list[InboxMessage]],
) -> None:
    devices, _ = sim
    assert devices.patient.desaturating is False
    devices.act(SimAction("incident", {"kind": "desaturation"}))
    assert devices.patient.desaturating is True
