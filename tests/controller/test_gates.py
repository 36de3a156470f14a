"""The gates' vitals check: blood pressure age and limits, SpO2 and heart rate."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from controller.config import AlarmsSection
from controller.gates import GateResult, check_vitals
from controller.models import NibpReading, VitalsSample

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
