"""Monitoring alone: oximeter samples, the blood-pressure schedule, hand-entered vitals."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from controller.errors import DeviceUnavailable, InvalidPayload
from controller.events import NibpCompleted, NibpFailed, VitalsArrived
from controller.models import NibpReading, RecordVitals, iso_utc
from controller.monitoring import NIBP_OVERDUE_S, NIBP_PHASES, Monitoring
from hw.fake import FakeNibp
from tests.controller.bench import Bench
from tests.controller.harness import ALL_OK, Harness

INTERVAL_S = 10 * 60  # [protocol] nibp_interval_minutes default
STALE_S = 10.0  # [alarms] stale_s default


class Mon:
    """Monitoring on a bench, with a commandable NIBP module unless told otherwise."""

    def __init__(
        self,
        data_dir: Path,
        *,
        module: bool = True,
        devices: dict[str, str] | None = None,
        manual: bool = False,
    ) -> None:
        self.b = Bench(data_dir, devices=ALL_OK if devices is None else devices)
        self.nibp = FakeNibp(self.b.inbox.append, self.b.clock)
        b = self.b
        self.m = Monitoring(
            clock=b.clock, journal=b.journal, log=b.log, timers=b.timers, alarms=b.alarms,
            session=b.facts, health=b.health, nibp=self.nibp if module else None, manual=manual,
        )  # fmt: skip
        b.folds.append(self.m.apply)

    def sample(self, spo2: int | None = 97, hr: int | None = 74, quality: str = "ok") -> None:
        """The oximeter reports now; the loop's tick follows, as in the room."""
        self.m.on_sample(VitalsArrived(self.b.sample(spo2, hr, quality)))
        self.b.alarms.tick()

    def run(self, seconds: float, **sample: Any) -> None:
        """One sample a second for ``seconds``, firing this part's timers as they fall due."""
        for _ in range(int(seconds)):
            self.b.clock.advance(1)
            self.fire()
            self.sample(**sample)

    def fire(self) -> list[str]:
        return self.b.fire(self.m.timer_table())

    def in_infusion(self, **plan: Any) -> None:
        self.b.start_session(**plan)
        self.b.enter("infusion")
        self.b.log.emit("infusion_started", {"target_s": 2400, "by": "x"})

    def vitals(self, **values: Any) -> dict[str, Any]:
        return self.m.record_vitals(RecordVitals(request_id="r", by="rn-kim", **values))


@pytest.fixture
def mon(tmp_path: Path) -> Iterator[Mon]:
    m = Mon(tmp_path)
    yield m
    m.b.close()


# --- samples ------------------------------------------------------------------------------------


def test_a_sample_is_kept_journaled_and_published(mon: Mon) -> None:
    mon.b.start_session()
    sample = mon.b.sample(96, 70)
    mon.m.on_sample(VitalsArrived(sample))
    assert mon.m.latest_sample == sample
    assert mon.m.latest_sample_mono == mon.b.clock.monotonic()
    assert mon.b.link.vitals == [sample]
    kept = mon.b.journal.vitals("s-001")
    assert [(kind, payload) for _, kind, payload in kept] == [("sample", sample.model_dump_json())]


def test_offline_a_sample_is_kept_not_published(tmp_path: Path) -> None:
    mon = Mon(tmp_path)
    mon.b.log.link_down()
    mon.sample()
    assert mon.m.latest_sample is not None
    assert mon.b.link.vitals == []
    mon.b.close()


def test_a_sample_without_values_is_not_valid_data(mon: Mon) -> None:
    mon.sample()
    valid_at = mon.m.last_valid_sample_mono
    mon.b.clock.advance(3)
    mon.sample(None, None, "searching")
    assert mon.m.latest_sample_mono == mon.b.clock.monotonic()
    assert mon.m.last_valid_sample_mono == valid_at
    mon.b.clock.advance(1)
    mon.sample(None, 60)
    assert mon.m.last_valid_sample_mono == mon.b.clock.monotonic()


def test_limits_are_checked_only_in_active_phases(mon: Mon) -> None:
    critical = mon.b.config.alarms.spo2_critical
    low = int(critical.limit) - 5
    mon.run(critical.delay_s + 5, spo2=low)
    assert mon.b.codes() == [], "idle: no patient, no alarm"
    mon.b.start_session()
    mon.sample(spo2=low)  # the condition's onset
    mon.run(critical.delay_s - 1, spo2=low)
    assert mon.b.codes() == []
    mon.run(1, spo2=low)
    assert mon.b.codes() == ["spo2_critical"]
    mon.b.enter("ended")
    mon.run(critical.delay_s + 5, spo2=low - 1)
    assert [a.value for a in mon.b.alarms.current()] == [low], "not checked once ended"


def test_sensor_off_is_an_alarm_after_its_delay(mon: Mon) -> None:
    mon.b.start_session()
    mon.sample()
    mon.run(STALE_S - 1, spo2=None, hr=None, quality="sensor_off")
    assert "sensor_off" not in mon.b.codes(), "a probe re-seated within the delay is no alarm"
    mon.run(2, spo2=None, hr=None, quality="sensor_off")
    alarm = mon.b.alarms.alarms["sensor_off"]
    assert (alarm.kind, alarm.priority) == ("technical", "medium")
    assert alarm.message == "Oximeter: sensor off"
    mon.sample()
    assert "sensor_off" not in mon.b.codes(), "a good sample clears it"


def test_no_sensor_is_worded_and_not_checked_outside_a_session(mon: Mon) -> None:
    mon.run(STALE_S + 2, spo2=None, hr=None, quality="no_sensor")
    assert mon.b.codes() == []
    mon.b.start_session()
    mon.run(STALE_S + 2, spo2=None, hr=None, quality="no_sensor")
    assert mon.b.alarms.alarms["sensor_off"].message == "Oximeter: no sensor"


# --- staleness ----------------------------------------------------------------------------------


def test_stale_data_is_an_alarm_in_an_active_phase(mon: Mon) -> None:
    mon.m.check_stale()
    assert mon.b.codes() == [], "idle: not judged"
    mon.b.start_session()
    mon.sample()
    mon.b.clock.advance(STALE_S)
    mon.m.check_stale()
    assert mon.b.codes() == [], "exactly stale_s old is still fresh"
    mon.b.clock.advance(0.5)
    mon.m.check_stale()
    alarm = mon.b.alarms.alarms["vitals_stale"]
    assert (alarm.kind, alarm.priority) == ("technical", "medium")
    assert alarm.message == "No valid oximeter data for over 10 s"
    mon.sample()
    mon.m.check_stale()
    assert mon.b.codes() == []


def test_no_sample_at_all_is_stale_at_once(mon: Mon) -> None:
    mon.b.start_session()
    mon.m.check_stale()
    assert mon.b.codes() == ["vitals_stale"]


def test_staleness_is_judged_on_the_monotonic_clock(mon: Mon) -> None:
    mon.b.start_session()
    mon.sample()
    mon.b.clock.step_wall(3600)
    mon.m.check_stale()
    assert mon.b.codes() == []


def test_an_absent_oximeter_is_not_watched(tmp_path: Path) -> None:
    mon = Mon(tmp_path, devices={**ALL_OK, "oximeter": "absent"})
    mon.b.start_session()
    mon.m.check_stale()
    assert mon.b.codes() == []
    assert not mon.m.watching()
    mon.b.close()


def test_watching_only_in_an_active_phase(mon: Mon) -> None:
    assert not mon.m.watching()
    mon.b.start_session()
    assert mon.m.watching()
    mon.b.enter("ended")
    assert not mon.m.watching()


# --- the blood-pressure schedule ----------------------------------------------------------------


def test_infusion_started_arms_nibp_at_the_protocol_interval(mon: Mon) -> None:
    mon.in_infusion()
    assert mon.b.timers.due_at("nibp") == mon.b.clock.now() + timedelta(seconds=INTERVAL_S)
    assert not mon.b.timers.pending("nibp_overdue")


def test_the_plans_interval_is_used(mon: Mon) -> None:
    mon.in_infusion(protocol={"nibp_interval_minutes": 15})
    assert mon.b.timers.remaining("nibp") == 15 * 60


def test_infusion_started_keeps_an_nibp_already_armed(mon: Mon) -> None:
    mon.b.start_session()
    mon.b.timers.set_in("nibp", 42)
    mon.b.enter("infusion")
    mon.b.log.emit("infusion_started", {"target_s": 2400, "by": "x"})
    assert mon.b.timers.remaining("nibp") == 42


def test_nibp_due_says_when_next_measures_and_arms_overdue(mon: Mon) -> None:
    mon.in_infusion()
    mon.b.clock.advance(INTERVAL_S)
    assert mon.fire() == ["nibp"]
    next_due = mon.b.clock.now() + timedelta(seconds=INTERVAL_S)
    assert mon.b.events("nibp_due") == [{"next_due_at": iso_utc(next_due)}]
    assert mon.b.events("nibp_requested") == [{"by": "schedule"}]
    assert mon.nibp.started == 1
    assert mon.b.timers.due_at("nibp") == next_due
    assert mon.b.timers.remaining("nibp_overdue") == NIBP_OVERDUE_S


def test_nibp_due_arms_overdue_once(mon: Mon) -> None:
    mon.in_infusion()
    mon.m.nibp_due()
    mon.b.clock.advance(60)
    mon.m.nibp_due()
    assert mon.b.timers.remaining("nibp_overdue") == NIBP_OVERDUE_S - 60


def test_no_module_no_request_but_still_due(tmp_path: Path) -> None:
    mon = Mon(tmp_path, devices={**ALL_OK, "nibp": "lost"})
    mon.in_infusion()
    mon.m.nibp_due()
    assert len(mon.b.events("nibp_due")) == 1
    assert mon.b.events("nibp_requested") == []
    assert mon.nibp.started == 0
    assert mon.b.timers.pending("nibp_overdue")
    mon.b.close()


def test_a_result_cancels_overdue_and_keeps_the_schedule(mon: Mon) -> None:
    mon.in_infusion()
    mon.m.nibp_due()
    due = mon.b.timers.due_at("nibp")
    mon.m.on_nibp_completed(NibpCompleted(mon.nibp.finish(124, 80, 70)))
    assert not mon.b.timers.pending("nibp_overdue")
    assert mon.b.timers.due_at("nibp") == due


def test_a_manual_blood_pressure_cancels_overdue(mon: Mon) -> None:
    mon.in_infusion()
    mon.m.nibp_due()
    mon.vitals(hr=70)
    assert mon.b.timers.pending("nibp_overdue"), "a heart rate is not a blood pressure"
    mon.vitals(sys=120, dia=80)
    assert not mon.b.timers.pending("nibp_overdue")


@pytest.mark.parametrize("phase", ["debrief", "discharge"])
def test_the_schedule_runs_on_in_the_later_phases(mon: Mon, phase: str) -> None:
    mon.in_infusion()
    mon.m.nibp_due()
    mon.b.enter(phase)  # type: ignore[arg-type]
    assert mon.b.timers.pending("nibp") and mon.b.timers.pending("nibp_overdue")


@pytest.mark.parametrize("phase", ["preparation", "ended", "check_in"])
def test_a_phase_outside_the_schedule_cancels_both_timers(mon: Mon, phase: str) -> None:
    assert phase not in NIBP_PHASES
    mon.in_infusion()
    mon.m.nibp_due()
    mon.b.enter(phase)  # type: ignore[arg-type]
    assert not mon.b.timers.pending("nibp")
    assert not mon.b.timers.pending("nibp_overdue")


def test_a_due_measurement_not_taken_is_overdue(mon: Mon) -> None:
    mon.in_infusion()
    mon.m.nibp_due()
    mon.b.clock.advance(NIBP_OVERDUE_S - 1)
    assert mon.fire() == []
    mon.b.clock.advance(1)
    assert mon.fire() == ["nibp_overdue"]
    alarm = mon.b.alarms.alarms["nibp_overdue"]
    assert (alarm.kind, alarm.priority) == ("technical", "medium")
    assert alarm.message == "Blood pressure due and not measured"
    assert not mon.b.timers.pending("nibp_overdue")
    # The next due time finds the alarm standing: no second overdue timer.
    mon.b.clock.advance(INTERVAL_S - NIBP_OVERDUE_S)
    assert mon.fire() == ["nibp"]
    assert not mon.b.timers.pending("nibp_overdue")
    # A reading clears it.
    mon.m.on_nibp_completed(NibpCompleted(mon.nibp.finish()))
    assert "nibp_overdue" not in mon.b.codes()


def test_a_reading_is_journaled_published_cleared_and_checked(mon: Mon) -> None:
    mon.b.start_session()
    mon.m.on_nibp_failed(NibpFailed("weak_signal"))
    assert mon.b.codes() == ["nibp_failed"]
    assert mon.b.alarms.alarms["nibp_failed"].priority == "low"
    assert mon.b.events("nibp_failed") == [{"code": "weak_signal"}]
    reading = mon.nibp.finish(190, 95, 80)
    mon.m.on_nibp_completed(NibpCompleted(reading))
    assert mon.b.events("nibp_result") == [
        {"sys": 190, "dia": 95, "map": reading.map, "hr": 80, "source": "fake"}
    ]
    assert mon.b.link.nibp[-1] == reading
    assert mon.b.journal.vitals("s-001")[-1][1:] == ("nibp", reading.model_dump_json())
    assert mon.b.codes() == ["sys_high"], "nibp_failed cleared, the reading checked"
    assert mon.m.latest_nibp is not None and mon.m.latest_nibp.sys == 190


def test_a_reading_outside_a_session_is_not_checked(mon: Mon) -> None:
    mon.m.on_nibp_completed(NibpCompleted(mon.nibp.finish(200, 120, 80)))
    assert mon.b.codes() == []
    assert mon.b.link.nibp != []


# --- commands -----------------------------------------------------------------------------------


def test_nibp_now_measures(mon: Mon) -> None:
    assert mon.m.nibp_now(RecordVitals(request_id="r", by="rn-kim")) == {}
    assert mon.nibp.started == 1
    assert mon.b.events("nibp_requested") == [{"by": "rn-kim"}]


def test_nibp_now_refuses_without_a_module(tmp_path: Path) -> None:
    mon = Mon(tmp_path, module=False)
    with pytest.raises(DeviceUnavailable, match="record_vitals"):
        mon.m.nibp_now(RecordVitals(request_id="r", by="x"))
    assert mon.b.events("nibp_requested") == []
    mon.b.close()


@pytest.mark.parametrize("status", ["lost", "absent"])
def test_nibp_now_refuses_when_the_module_is_not_ok(tmp_path: Path, status: str) -> None:
    mon = Mon(tmp_path, devices={**ALL_OK, "nibp": status})
    with pytest.raises(DeviceUnavailable):
        mon.m.nibp_now(RecordVitals(request_id="r", by="x"))
    assert mon.nibp.started == 0
    mon.b.close()


@pytest.mark.parametrize(
    ("values", "fields"),
    [
        ({}, ["'sys'", "'dia'", "'hr'", "'spo2'"]),
        ({"sys": 120}, ["'sys'", "'dia'"]),
        ({"dia": 80, "hr": 70}, ["'sys'", "'dia'"]),
        ({"sys": 80, "dia": 80}, ["'dia'", "'sys'"]),
        ({"sys": 80, "dia": 95}, ["'dia'"]),
    ],
)
def test_record_vitals_refuses_bad_input_naming_the_field(
    mon: Mon, values: dict[str, int], fields: list[str]
) -> None:
    mon.b.start_session()
    before = mon.b.journal.last_seq
    with pytest.raises(InvalidPayload) as exc:
        mon.vitals(**values)
    for field in fields:
        assert field in exc.value.message
    assert mon.b.journal.last_seq == before, "nothing recorded"
    assert mon.m.latest_nibp is None and mon.m.manual_spo2_hr is None


def test_a_manual_blood_pressure_becomes_the_latest_nibp(mon: Mon) -> None:
    mon.b.start_session()
    assert mon.vitals(sys=121, dia=80, hr=66) == {"sys": 121, "dia": 80, "hr": 66}
    assert mon.b.events("vitals_recorded") == [
        {"sys": 121, "dia": 80, "hr": 66, "by": "rn-kim", "source": "manual"}
    ]
    expected = NibpReading(
        ts=mon.b.clock.now(), sys=121, dia=80, map=94, hr=66, source="manual", by="rn-kim"
    )
    assert mon.m.latest_nibp == expected, "MAP = (sys + 2 dia) / 3, rounded"
    assert mon.b.link.nibp == [expected]
    assert mon.b.journal.vitals("s-001")[-1][1:] == ("nibp", expected.model_dump_json())


def test_a_manual_blood_pressure_is_checked_against_the_limits(mon: Mon) -> None:
    mon.b.start_session()
    mon.vitals(sys=85, dia=50)
    assert mon.b.codes() == ["sys_low"]


def test_manual_spo2_and_hr_are_not_a_blood_pressure(mon: Mon) -> None:
    mon.b.start_session()
    mon.vitals(spo2=95, hr=70)
    assert mon.m.latest_nibp is None
    assert mon.b.link.nibp == []
    assert mon.m.manual_spo2_hr == (mon.b.clock.now(), 95, 70)


def test_readings_belong_to_their_session(mon: Mon) -> None:
    mon.b.start_session()
    mon.vitals(sys=121, dia=80, spo2=97)
    mon.b.log.emit("session_ended", {"reason": "r", "by": "x"})
    assert mon.m.latest_nibp is None and mon.m.manual_spo2_hr is None
    assert mon.m.current_vitals() is None


# --- the readings as they stand now -------------------------------------------------------------


def test_current_vitals_prefers_a_newer_manual_entry(mon: Mon) -> None:
    mon.b.start_session()
    assert mon.m.current_vitals() is None
    mon.sample(96, 71)
    current = mon.m.current_vitals()
    assert current is not None and (current.spo2, current.source) == (96, "fake")
    mon.b.clock.advance(5)
    mon.vitals(hr=80)
    current = mon.m.current_vitals()
    assert current is not None
    assert (current.spo2, current.hr, current.source) == (None, 80, "manual")
    assert current.ts == mon.b.clock.now()
    mon.b.clock.advance(5)
    mon.sample(95, 72)
    current = mon.m.current_vitals()
    assert current is not None and (current.spo2, current.source) == (95, "fake")


def test_a_manual_entry_alone_is_the_current_vitals(mon: Mon) -> None:
    mon.b.start_session()
    mon.vitals(spo2=98)
    current = mon.m.current_vitals()
    assert current is not None and (current.spo2, current.hr) == (98, None)


def test_readings_are_reaged_by_their_monotonic_age(mon: Mon) -> None:
    mon.b.start_session()
    mon.sample()
    mon.vitals(sys=120, dia=80)
    mon.b.clock.advance(30)
    mon.b.clock.step_wall(-3600)  # NTP steps the wall clock: the readings are 30 s old still
    vitals, nibp = mon.m.current_vitals(), mon.m.current_nibp()
    assert vitals is not None and nibp is not None
    assert vitals.ts == mon.b.clock.now() - timedelta(seconds=30)
    assert nibp.ts == mon.b.clock.now() - timedelta(seconds=30)
    mon.b.clock.step_wall(7200)
    nibp = mon.m.current_nibp()
    assert nibp is not None and nibp.ts == mon.b.clock.now() - timedelta(seconds=30)


def test_current_nibp_is_none_without_a_reading(mon: Mon) -> None:
    assert mon.m.current_nibp() is None


# --- storage of readings: vitals are a session's telemetry, not an idle room's ---------


def stored(path: Path) -> list[tuple[str | None, str]]:
    db = sqlite3.connect(path)
    try:
        return list(db.execute("SELECT session_id, kind FROM vitals ORDER BY id"))
    finally:
        db.close()


def test_no_vitals_are_stored_outside_a_session(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    h.run(120, step=1)  # an idle room with its oximeter on
    h.journal.flush()
    assert stored(h.journal.path) == []
    assert h.room.monitoring.latest_sample is not None  # kept in memory, for the gates
    h.to_pre_infusion()
    h.run(60, step=1)
    h.ok("end_session", reason="test")
    h.run(120, step=1)
    h.journal.flush()
    rows = stored(h.journal.path)
    assert {sid for sid, _ in rows} == {"s-001"}
    assert [kind for _, kind in rows].count("nibp") == 1
    assert [kind for _, kind in rows].count("sample") == 61  # the baseline one and 60 more
    h.close()


# --- manual monitoring ([room] monitoring = "manual") ----------------------------------------

MANUAL_S = 5 * 60  # [protocol] manual_interval_minutes default


def test_manual_monitoring_prompts_then_alarms_when_a_prompt_goes_unanswered(
    tmp_path: Path,
) -> None:
    mon = Mon(tmp_path, manual=True)
    mon.in_infusion()
    assert mon.b.timers.remaining("manual_vitals") == MANUAL_S
    mon.b.clock.advance(MANUAL_S)
    assert mon.fire() == ["manual_vitals"]
    due = iso_utc(mon.b.clock.now() + timedelta(seconds=MANUAL_S))
    assert mon.b.events("vitals_due") == [{"escalated": False, "next_due_at": due}]
    assert mon.b.timers.remaining("manual_vitals") == MANUAL_S
    mon.b.clock.advance(MANUAL_S)
    assert "manual_vitals" in mon.fire()  # with the blood pressure's, due at 10 min too
    assert mon.b.events("vitals_due")[-1]["escalated"] is True
    alarm = mon.b.alarms.alarms["manual_vitals_overdue"]
    assert (alarm.kind, alarm.priority) == ("technical", "medium")
    assert alarm.message.startswith("Hand-entered SpO2 and heart rate overdue")
    mon.vitals(sys=120, dia=80)
    assert "manual_vitals_overdue" in mon.b.codes(), "a blood pressure is not what was asked"
    mon.vitals(hr=70)
    assert "manual_vitals_overdue" not in mon.b.codes()
    mon.b.clock.advance(MANUAL_S)
    assert mon.fire() == ["manual_vitals"]
    assert mon.b.events("vitals_due")[-1]["escalated"] is False, "the last prompt was answered"
    mon.b.enter("debrief")
    assert not mon.b.timers.pending("manual_vitals"), "prompts are for the infusion only"
    mon.b.close()


@pytest.mark.parametrize("values", [{"spo2": 96}, {"hr": 70}])
def test_either_hand_value_answers_the_prompt(tmp_path: Path, values: dict[str, int]) -> None:
    mon = Mon(tmp_path, manual=True)
    mon.in_infusion()
    for _ in range(2):
        mon.b.clock.advance(MANUAL_S)
        mon.fire()
    mon.vitals(**values)
    assert mon.b.codes() == []
    mon.b.close()


def test_without_manual_monitoring_nothing_prompts(mon: Mon) -> None:
    mon.in_infusion()
    assert not mon.b.timers.pending("manual_vitals")


def test_a_replayed_overdue_alarm_leaves_no_overdue_timer(mon: Mon) -> None:
    # Folding the journal again after a restart: the raised alarm is the overdue timer's
    # trace, so no second alarm may be armed.
    mon.in_infusion()
    mon.b.log.emit("nibp_due", {"next_due_at": iso_utc(mon.b.clock.now())})
    assert mon.b.timers.pending("nibp_overdue")
    mon.b.alarms.raise_now("nibp_overdue", kind="technical", priority="medium", message="x")
    assert not mon.b.timers.pending("nibp_overdue")
