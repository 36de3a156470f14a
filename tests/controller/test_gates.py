"""The gates' vitals check: blood pressure age and limits, SpO2 and heart rate."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from controller.config import AlarmsSection, Config
from controller.errors import GateNotMet
from controller.events import VitalsArrived
from controller.gates import GateResult, Gates, check_vitals, discharge_limits
from controller.models import Advance, NibpReading, Override, RecordVitals, VitalsSample
from controller.monitoring import Monitoring
from tests.controller.bench import Bench
from tests.controller.harness import ALL_OK, make_config

LIMITS = AlarmsSection()
NOW = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
MAX_NIBP_AGE_S = 15 * 60
MAX_SAMPLE_AGE_S = 10.0

# --- check_vitals ---------------------------------------------------------------------------


def nibp(sys: int = 120, dia: int = 80, age_s: float = 60) -> NibpReading:
    return NibpReading(
        ts=NOW - timedelta(seconds=age_s), sys=sys, dia=dia, map=93, hr=70, source="fake"
    )


def sample(spo2: int | None = 97, hr: int | None = 72, age_s: float = 1) -> VitalsSample:
    return VitalsSample(ts=NOW - timedelta(seconds=age_s), spo2=spo2, hr=hr, source="fake")


def gate(
    reading: NibpReading | None = None,
    vitals: VitalsSample | None = None,
    *,
    no_nibp: bool = False,
    no_sample: bool = False,
) -> GateResult:
    result = GateResult("safety")
    check_vitals(
        result,
        now=NOW,
        nibp=None if no_nibp else (reading or nibp()),
        nibp_max_age_s=MAX_NIBP_AGE_S,
        sample=None if no_sample else (vitals or sample()),
        sample_max_age_s=MAX_SAMPLE_AGE_S,
        limits=LIMITS,
    )
    return result


def test_vitals_in_range_meet_the_gate() -> None:
    result = gate()
    assert result.met
    assert result.unmet == {}


def test_vitals_exactly_at_the_limits_meet_the_gate() -> None:
    result = gate(
        nibp(int(LIMITS.sys_high.limit), int(LIMITS.dia_high.limit), age_s=MAX_NIBP_AGE_S),
        sample(int(LIMITS.spo2_low.limit), int(LIMITS.hr_high.limit), age_s=MAX_SAMPLE_AGE_S),
    )
    assert result.met, result.unmet
    assert gate(nibp(int(LIMITS.sys_low.limit)), sample(hr=int(LIMITS.hr_low.limit))).met


def test_no_nibp() -> None:
    result = gate(no_nibp=True)
    assert set(result.unmet) == {"nibp"}
    assert result.unmet["nibp"] == "no blood pressure recorded"


def test_nibp_too_old() -> None:
    result = gate(nibp(age_s=MAX_NIBP_AGE_S + 60))
    assert set(result.unmet) == {"nibp"}
    assert "16 min old" in result.unmet["nibp"]
    assert "max 15" in result.unmet["nibp"]


def test_an_hour_old_nibp_says_an_hour() -> None:
    result = gate(nibp(age_s=3600))
    assert result.unmet["nibp"] == "last blood pressure is 60 min old (max 15)"


@pytest.mark.parametrize(
    ("sys", "dia"),
    [(int(LIMITS.sys_high.limit) + 1, 80), (140, int(LIMITS.dia_high.limit) + 1)],
)
def test_nibp_above_limits(sys: int, dia: int) -> None:
    result = gate(nibp(sys, dia))
    assert set(result.unmet) == {"nibp"}
    assert result.unmet["nibp"] == f"blood pressure {sys}/{dia} above limits"


def test_nibp_systolic_below_limit() -> None:
    sys = int(LIMITS.sys_low.limit) - 1
    result = gate(nibp(sys, 50))
    assert set(result.unmet) == {"nibp"}
    assert result.unmet["nibp"] == f"systolic {sys} below {LIMITS.sys_low.limit:g}"


def test_no_sample_leaves_spo2_and_hr_unmet() -> None:
    result = gate(no_sample=True)
    assert result.unmet == {"spo2": "no valid SpO2 reading", "hr": "no valid heart rate reading"}


def test_stale_sample_leaves_spo2_and_hr_unmet() -> None:
    result = gate(vitals=sample(age_s=MAX_SAMPLE_AGE_S + 0.5))
    assert set(result.unmet) == {"spo2", "hr"}


def test_sample_without_spo2() -> None:
    result = gate(vitals=sample(spo2=None))
    assert result.unmet == {"spo2": "no valid SpO2 reading"}


def test_sample_without_hr() -> None:
    result = gate(vitals=sample(hr=None))
    assert result.unmet == {"hr": "no valid heart rate reading"}


def test_spo2_below_limit() -> None:
    spo2 = int(LIMITS.spo2_low.limit) - 1
    result = gate(vitals=sample(spo2=spo2))
    assert result.unmet == {"spo2": f"SpO2 {spo2} below {LIMITS.spo2_low.limit:g}"}


@pytest.mark.parametrize("hr", [int(LIMITS.hr_low.limit) - 1, int(LIMITS.hr_high.limit) + 1])
def test_hr_outside_limits(hr: int) -> None:
    result = gate(vitals=sample(hr=hr))
    assert set(result.unmet) == {"hr"}
    assert result.unmet["hr"].startswith(f"heart rate {hr} outside ")


def test_everything_unmet_at_once_and_the_message() -> None:
    result = gate(no_nibp=True, no_sample=True)
    assert not result.met
    assert list(result.unmet) == ["nibp", "spo2", "hr"]
    assert result.message() == (
        "safety gate not met: nibp: no blood pressure recorded; spo2: no valid SpO2 reading; "
        "hr: no valid heart rate reading"
    )


def test_check_vitals_adds_to_what_is_already_unmet() -> None:
    result = GateResult("safety", {"consent": "consent not confirmed by a clinician"})
    check_vitals(
        result,
        now=NOW,
        nibp=nibp(),
        nibp_max_age_s=MAX_NIBP_AGE_S,
        sample=sample(spo2=None),
        sample_max_age_s=MAX_SAMPLE_AGE_S,
        limits=LIMITS,
    )
    assert list(result.unmet) == ["consent", "spo2"]


# --- the Gates part alone -------------------------------------------------------------------


class GateBench:
    """Gates on a bench, over real Monitoring (no NIBP module: readings come by hand)."""

    def __init__(self, data_dir: Path, config: Config | None = None) -> None:
        self.b = b = Bench(data_dir, config, devices=ALL_OK)
        self.monitoring = Monitoring(
            clock=b.clock, journal=b.journal, log=b.log, timers=b.timers, alarms=b.alarms,
            session=b.facts, health=b.health, nibp=None,
        )  # fmt: skip
        b.folds.append(self.monitoring.apply)
        self.gates = Gates(
            config=b.config, clock=b.clock, log=b.log, session=b.facts,
            monitoring=self.monitoring, alarms=b.alarms,
        )  # fmt: skip

    def confirm(self, *items: str) -> None:
        for item in items:
            self.b.log.emit("confirmed", {"item": item, "by": "dr-lee"})

    def sample(self, spo2: int = 97, hr: int = 72) -> None:
        self.monitoring.on_sample(VitalsArrived(self.b.sample(spo2, hr)))

    def manual(self, **values: int) -> None:
        self.monitoring.record_vitals(RecordVitals(request_id="r", by="rn-kim", **values))


@pytest.fixture
def gb(tmp_path: Path) -> Iterator[GateBench]:
    g = GateBench(tmp_path)
    g.b.start_session()
    yield g
    g.b.close()


def test_safety_gate_lists_everything_unmet(gb: GateBench) -> None:
    result = gb.gates.evaluate("safety")
    assert list(result.unmet) == ["readiness", "consent", "nibp", "spo2", "hr"]
    assert result.unmet["consent"] == "consent not confirmed by a clinician"


def test_safety_gate_met(gb: GateBench) -> None:
    gb.confirm("readiness", "consent")
    gb.manual(sys=120, dia=80)
    gb.sample()
    assert gb.gates.evaluate("safety").met


def test_the_discharge_gate_asks_for_readiness_reminders_and_vitals(gb: GateBench) -> None:
    assert list(gb.gates.evaluate("discharge").unmet) == [
        "psych_ready",
        "reminders_given",
        "nibp",
        "spo2",
        "hr",
    ]
    gb.manual(sys=120, dia=80)
    gb.sample()
    assert list(gb.gates.evaluate("discharge").unmet) == ["psych_ready", "reminders_given"]
    gb.confirm("psych_ready", "reminders_given")
    assert gb.gates.evaluate("discharge").met


def test_an_oximeter_sample_is_valid_for_stale_s_a_manual_one_for_the_baseline_age(
    gb: GateBench,
) -> None:
    gb.confirm("readiness", "consent")
    gb.manual(sys=120, dia=80)
    gb.sample()
    gb.b.clock.advance(LIMITS.stale_s + 1)
    assert set(gb.gates.evaluate("safety").unmet) == {"spo2", "hr"}
    gb.manual(spo2=97, hr=70)
    gb.b.clock.advance(14 * 60)
    assert gb.gates.evaluate("safety").met, "hand-measured: as valid as a baseline NIBP"
    gb.b.clock.advance(2 * 60)
    assert set(gb.gates.evaluate("safety").unmet) == {"nibp", "spo2", "hr"}


def test_discharge_wants_live_readings(gb: GateBench) -> None:
    # At discharge a hand entry counts for [discharge] manual_max_age_s, not the baseline age.
    gb.confirm("psych_ready", "reminders_given")
    gb.manual(sys=120, dia=80, spo2=97, hr=70)
    gb.b.clock.advance(gb.b.config.discharge.manual_max_age_s)
    assert gb.gates.evaluate("discharge").met
    gb.b.clock.advance(1)
    assert set(gb.gates.evaluate("discharge").unmet) == {"spo2", "hr"}


def test_the_plans_baseline_age_is_used(tmp_path: Path) -> None:
    g = GateBench(tmp_path)
    g.b.start_session(protocol={"baseline_max_age_minutes": 30})
    g.confirm("readiness", "consent")
    g.manual(sys=120, dia=80, spo2=97, hr=70)
    g.b.clock.advance(25 * 60)
    assert g.gates.evaluate("safety").met
    g.b.close()


def test_a_wall_clock_step_neither_ages_nor_freshens_the_vitals(gb: GateBench) -> None:
    gb.confirm("psych_ready", "reminders_given")
    gb.manual(sys=120, dia=80)
    gb.sample()
    gb.b.clock.step_wall(3600)
    assert gb.gates.evaluate("discharge").met
    gb.b.clock.advance(16 * 60)
    gb.b.clock.step_wall(-7200)
    assert "nibp" in gb.gates.evaluate("discharge").unmet


def test_a_met_gate_is_recorded(gb: GateBench) -> None:
    gb.gates.check(GateResult("infusion_start"), Advance(request_id="r", by="dr-lee"))
    assert gb.b.events("gate_checked") == [{"gate": "infusion_start", "met": True, "unmet": []}]


def test_an_unmet_gate_refuses_with_every_reason(gb: GateBench) -> None:
    gb.confirm("psych_ready", "reminders_given")
    with pytest.raises(GateNotMet) as exc:
        gb.gates.pass_gate("discharge", Advance(request_id="r", by="dr-lee"))
    unmet = {
        "nibp": "no blood pressure recorded",
        "spo2": "no valid SpO2 reading",
        "hr": "no valid heart rate reading",
    }
    assert exc.value.details == {"gate": "discharge", "unmet": unmet}
    assert exc.value.message.startswith("discharge gate not met: nibp: no blood pressure")
    assert gb.b.events("gate_checked") == [
        {"gate": "discharge", "met": False, "unmet": list(unmet), "reasons": unmet}
    ]


def test_an_override_passes_an_unmet_gate_and_is_recorded(gb: GateBench) -> None:
    cmd = Advance(request_id="r", by="dr-lee", override=Override(reason="monitor in use"))
    gb.gates.pass_gate("safety", cmd)
    (data,) = gb.b.events("gate_checked")
    assert data["met"] is False
    assert data["override"] == {"reason": "monitor in use", "by": "dr-lee"}


def test_an_override_of_a_met_gate_is_not_recorded_as_one(gb: GateBench) -> None:
    cmd = Advance(request_id="r", by="dr-lee", override=Override(reason="x"))
    gb.gates.check(GateResult("safety"), cmd)
    assert "override" not in gb.b.events("gate_checked")[0]


def test_no_gate_checks_nothing(gb: GateBench) -> None:
    before = gb.b.journal.last_seq
    gb.gates.pass_gate(None, Advance(request_id="r", by="dr-lee"))
    assert gb.b.journal.last_seq == before


def raise_high(gb: GateBench) -> str:
    gb.b.alarms.raise_now("emergency", kind="physiological", priority="high", message="E")
    return gb.b.alarms.alarms["emergency"].id


def ready_for_discharge(gb: GateBench) -> None:
    gb.confirm("psych_ready", "reminders_given")
    gb.manual(sys=120, dia=80)
    gb.sample()


def test_an_unacknowledged_high_alarm_holds_discharge_past_any_override(gb: GateBench) -> None:
    ready_for_discharge(gb)
    raise_high(gb)
    gb.b.clock.advance(1)
    gb.b.alarms.raise_now("sys_high", kind="physiological", priority="high", message="BP")
    result = gb.gates.evaluate("discharge")
    assert result.unmet == {"alarms": "high-priority alarm not acknowledged: emergency, sys_high"}
    assert not result.overridable
    cmd = Advance(request_id="r", by="dr-lee", override=Override(reason="family waiting"))
    with pytest.raises(GateNotMet) as exc:
        gb.gates.pass_gate("discharge", cmd)
    assert exc.value.details["not_overridable"] == ["alarms"]
    assert exc.value.message.endswith("(an override cannot pass: acknowledge the alarm first)")
    (data,) = gb.b.events("gate_checked")
    assert data["override_refused"] == ["alarms"]
    assert data["override"] == {"reason": "family waiting", "by": "dr-lee"}


def test_a_refused_override_names_only_the_item_it_cannot_pass(gb: GateBench) -> None:
    gb.confirm("psych_ready")
    raise_high(gb)
    cmd = Advance(request_id="r", by="dr-lee", override=Override(reason="family waiting"))
    with pytest.raises(GateNotMet) as exc:
        gb.gates.pass_gate("discharge", cmd)
    assert set(exc.value.details["unmet"]) == {"reminders_given", "nibp", "spo2", "hr", "alarms"}
    assert exc.value.details["not_overridable"] == ["alarms"]
    assert exc.value.message.startswith("discharge gate not met: reminders_given: ")
    assert gb.b.events("gate_checked")[0]["override_refused"] == ["alarms"]


def test_an_acknowledged_high_alarm_no_longer_holds_discharge(gb: GateBench) -> None:
    ready_for_discharge(gb)
    gb.b.alarms.acknowledge(raise_high(gb), "dr-lee")
    assert gb.gates.evaluate("discharge").met


def test_a_high_alarm_does_not_hold_the_other_gates(gb: GateBench) -> None:
    gb.confirm("readiness", "consent", "iv_line")
    gb.manual(sys=120, dia=80)
    gb.sample()
    raise_high(gb)
    assert gb.gates.evaluate("safety").met
    assert gb.gates.evaluate("infusion_start").met


def test_an_override_of_items_it_may_pass_refuses_nothing(gb: GateBench) -> None:
    result = gb.gates.evaluate("discharge")
    assert result.overridable and not result.met
    cmd = Advance(request_id="r", by="dr-lee", override=Override(reason="monitor in use"))
    gb.gates.check(result, cmd)
    assert "override_refused" not in gb.b.events("gate_checked")[0]


def test_the_infusion_gate_wants_the_iv_line_too(gb: GateBench) -> None:
    gb.confirm("readiness", "consent")
    gb.manual(sys=120, dia=80)
    gb.sample()
    assert gb.gates.evaluate("infusion_start").unmet == {"iv_line": "IV line not confirmed"}


def test_discharge_limits_apart_from_the_alarm_limits(tmp_path: Path) -> None:
    g = GateBench(tmp_path, make_config(discharge={"spo2_low": 95, "sys_high": 150}))
    g.b.start_session()
    ready_for_discharge(g)
    g.sample(spo2=94)
    assert g.gates.evaluate("discharge").unmet == {"spo2": "SpO2 94 below 95"}
    assert g.gates.evaluate("safety").unmet.get("spo2") is None, "the alarm limit elsewhere"
    g.manual(sys=160, dia=80)
    g.sample()
    assert g.gates.evaluate("discharge").unmet == {"nibp": "blood pressure 160/80 above limits"}
    g.b.close()


def test_discharge_limits_keep_the_alarms_priority_and_delay() -> None:
    alarms = AlarmsSection()
    limits = discharge_limits(alarms, make_config(discharge={"hr_high": 100}).discharge)
    assert limits.hr_high == alarms.hr_high.model_copy(update={"limit": 100})
    assert limits.hr_low == alarms.hr_low


def test_the_baseline_nibp_is_valid_for_exactly_its_age(gb: GateBench) -> None:
    gb.confirm("readiness", "consent")
    gb.manual(sys=120, dia=80)
    gb.b.clock.advance(15 * 60 - 5)
    gb.sample()
    assert gb.gates.evaluate("safety").met
    gb.b.clock.advance(10)
    gb.sample()
    assert set(gb.gates.evaluate("safety").unmet) == {"nibp"}


def test_at_discharge_an_oximeter_sample_is_live_for_stale_s_only(gb: GateBench) -> None:
    # manual_max_age_s is for hand entries; the oximeter's readings must be live.
    ready_for_discharge(gb)
    gb.b.clock.advance(LIMITS.stale_s + 1)
    assert set(gb.gates.evaluate("discharge").unmet) == {"spo2", "hr"}
