"""The room's health alone: devices, the clock's sync, journal recovery, audio failures."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from controller.events import AudioFailed, ClockSync, DeviceChanged
from controller.health import DEVICES, Health
from controller.models import Devices
from tests.controller.bench import Bench


@pytest.fixture
def b(tmp_path: Path) -> Iterator[Bench]:
    bench = Bench(tmp_path, devices={"oximeter": "ok", "lighting": "ok"})
    yield bench
    bench.close()


def test_devices_are_absent_unless_told(b: Bench) -> None:
    assert b.health.devices == {
        "oximeter": "ok",
        "nibp": "absent",
        "call_button": "absent",
        "lighting": "ok",
        "audio": "absent",
    }
    assert set(DEVICES) == set(Devices.model_fields), "the state reports every device"


def test_the_given_devices_are_copied(tmp_path: Path) -> None:
    given = {"nibp": "ok"}
    bench = Bench(tmp_path)
    health = Health(bench.log, bench.alarms, given)
    health.devices["nibp"] = "lost"
    assert given == {"nibp": "ok"}
    bench.close()


def test_usable(b: Bench) -> None:
    assert b.health.usable("oximeter")
    assert not b.health.usable("nibp")
    b.health.on_device(DeviceChanged("oximeter", "lost", "unplugged"))
    assert not b.health.usable("oximeter")


def test_a_lost_device_is_recorded_and_a_technical_alarm(b: Bench) -> None:
    b.health.on_device(DeviceChanged("oximeter", "lost", "serial port gone"))
    assert b.events("device_lost") == [
        {"device": "oximeter", "status": "lost", "detail": "serial port gone"}
    ]
    assert b.health.devices["oximeter"] == "lost"
    alarm = b.alarms.alarms["oximeter_lost"]
    assert (alarm.kind, alarm.priority) == ("technical", "medium")
    assert alarm.message == "oximeter lost: serial port gone"


def test_a_device_back_clears_its_alarm(b: Bench) -> None:
    b.health.on_device(DeviceChanged("oximeter", "lost", "gone"))
    b.health.on_device(DeviceChanged("oximeter", "ok", "back"))
    assert b.events("device_connected") == [
        {"device": "oximeter", "status": "ok", "detail": "back"}
    ]
    assert b.health.devices["oximeter"] == "ok"
    assert b.codes() == []


def test_a_device_found_is_connected(b: Bench) -> None:
    b.health.on_device(DeviceChanged("nibp", "ok"))
    assert b.types()[-1] == "device_connected"
    assert b.health.devices["nibp"] == "ok"
    assert b.codes() == []


def test_the_same_status_again_changes_nothing(b: Bench) -> None:
    b.health.on_device(DeviceChanged("oximeter", "ok"))
    b.health.on_device(DeviceChanged("nibp", "absent"))
    assert b.journal.last_seq == 0
    b.health.on_device(DeviceChanged("oximeter", "lost", "a"))
    b.health.on_device(DeviceChanged("oximeter", "lost", "b"))
    assert len(b.events("device_lost")) == 1


def test_a_device_gone_absent_is_no_alarm_and_ends_a_lost_one(b: Bench) -> None:
    b.health.on_device(DeviceChanged("lighting", "lost", "x"))
    b.health.on_device(DeviceChanged("lighting", "absent", "removed from the config"))
    assert b.events("device_lost")[-1]["status"] == "absent"
    assert b.health.devices["lighting"] == "absent"
    assert b.codes() == []


def test_an_unsynchronised_clock_is_an_alarm(b: Bench) -> None:
    assert b.health.clock_synced
    b.health.on_clock_sync(ClockSync(False))
    assert not b.health.clock_synced
    alarm = b.alarms.alarms["clock_unsynced"]
    assert (alarm.kind, alarm.priority) == ("technical", "medium")
    assert "NTP" in alarm.message
    b.health.on_clock_sync(ClockSync(True))
    assert b.health.clock_synced
    assert b.codes() == []


def test_a_clock_that_cannot_be_told_is_taken_as_synced(b: Bench) -> None:
    b.health.on_clock_sync(ClockSync(False))
    b.health.on_clock_sync(ClockSync(None))
    assert b.health.clock_synced
    assert b.codes() == []


def test_journal_recovery_is_announced_and_an_alarm(b: Bench) -> None:
    b.health.journal_recovered("/data/journal.sqlite.damaged-x", 812, "r" * 600)
    (data,) = b.events("journal_recovered")
    assert data["damaged_file"] == "/data/journal.sqlite.damaged-x"
    assert data["last_seq"] == 812
    assert data["reason"] == "r" * 500, "the reason is cut to 500 characters"
    alarm = b.alarms.alarms["journal_recovered"]
    assert (alarm.kind, alarm.priority) == ("technical", "medium")


def test_an_audio_failure_is_a_low_alarm_per_output(b: Bench) -> None:
    b.health.on_audio_failed(AudioFailed("speakers", "device gone"))
    b.health.on_audio_failed(AudioFailed("headphones", "xrun"))
    assert set(b.codes()) == {"audio_speakers_failed", "audio_headphones_failed"}
    alarm = b.alarms.alarms["audio_speakers_failed"]
    assert (alarm.kind, alarm.priority) == ("technical", "low")
    assert alarm.message == "Audio output speakers failed: device gone"


def test_device_status_is_rebuilt_from_the_journal(b: Bench) -> None:
    b.health.on_device(DeviceChanged("oximeter", "lost", "x"))
    b.health.on_device(DeviceChanged("nibp", "ok"))
    fresh = Health(b.log, b.alarms, {"oximeter": "ok", "lighting": "ok"})
    for event in b.all_events():
        fresh.apply(event)
    assert fresh.devices == b.health.devices
