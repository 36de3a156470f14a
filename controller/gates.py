"""The gates between phases: what must be true before the infusion and before discharge.

A gate not met refuses the step with every unmet item in words; a clinician's ``override``
with a reason passes it, and both are journaled as ``gate_checked``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from controller.alarms import AlarmEngine
from controller.config import AlarmsSection, Config, DischargeSection
from controller.errors import GateNotMet
from controller.eventlog import EventLog
from controller.models import AlarmLimit, NibpReading, VitalsSample
from controller.monitoring import Monitoring
from controller.ports import Clock
from controller.state import SessionState


@dataclass
class GateResult:
    """A gate's verdict: ``unmet`` items, each with the reason in words."""

    gate: str
    unmet: dict[str, str] = field(default_factory=dict)
    hard: set[str] = field(default_factory=set)  # unmet items no override may pass

    @property
    def met(self) -> bool:
        """Whether nothing is unmet."""
        return not self.unmet

    def message(self) -> str:
        """The unmet items in one sentence."""
        return f"{self.gate} gate not met: " + "; ".join(f"{k}: {v}" for k, v in self.unmet.items())

    @property
    def overridable(self) -> bool:
        """Whether an override may pass what is unmet."""
        return not (self.hard & self.unmet.keys())


def check_vitals(
    result: GateResult,
    *,
    now: datetime,
    nibp: NibpReading | None,
    nibp_max_age_s: float,
    sample: VitalsSample | None,
    sample_max_age_s: float,
    limits: AlarmsSection,
) -> None:
    """Add to ``result`` what keeps the vitals from being valid and within limits."""
    if nibp is None:
        result.unmet["nibp"] = "no blood pressure recorded"
    else:
        age = (now - nibp.ts).total_seconds()
        if age > nibp_max_age_s:
            result.unmet["nibp"] = (
                f"last blood pressure is {age / 60:.0f} min old (max {nibp_max_age_s / 60:g})"
            )
        elif nibp.sys > limits.sys_high.limit or nibp.dia > limits.dia_high.limit:
            result.unmet["nibp"] = f"blood pressure {nibp.sys}/{nibp.dia} above limits"
        elif nibp.sys < limits.sys_low.limit:
            result.unmet["nibp"] = f"systolic {nibp.sys} below {limits.sys_low.limit:g}"
    fresh = sample is not None and (now - sample.ts).total_seconds() <= sample_max_age_s
    if not fresh or sample is None or sample.spo2 is None:
        result.unmet["spo2"] = "no valid SpO2 reading"
    elif sample.spo2 < limits.spo2_low.limit:
        result.unmet["spo2"] = f"SpO2 {sample.spo2} below {limits.spo2_low.limit:g}"
    if not fresh or sample is None or sample.hr is None:
        result.unmet["hr"] = "no valid heart rate reading"
    elif not limits.hr_low.limit <= sample.hr <= limits.hr_high.limit:
        result.unmet["hr"] = (
            f"heart rate {sample.hr} outside {limits.hr_low.limit:g}-{limits.hr_high.limit:g}"
        )


DISCHARGE_LIMITS = ("spo2_low", "hr_low", "hr_high", "sys_high", "dia_high", "sys_low")
"""The limits ``[discharge]`` may set apart from the alarm limits."""
CONFIRMATIONS: dict[str, tuple[str, ...]] = {
    "safety": ("readiness", "consent"),
    "infusion_start": ("readiness", "consent", "iv_line"),
    "discharge": ("psych_ready", "reminders_given"),
}
"""The clinicians' confirmations each gate wants."""
WORDS = {
    "readiness": "readiness not confirmed by a clinician",
    "consent": "consent not confirmed by a clinician",
    "iv_line": "IV line not confirmed",
    "psych_ready": "psychological readiness for discharge not confirmed by a clinician",
    "reminders_given": "safety reminders (no driving, an escort home) not confirmed as given",
}


def discharge_limits(alarms: AlarmsSection, discharge: DischargeSection) -> AlarmsSection:
    """The limits a patient is discharged within: ``[discharge]`` where set, else the alarms'."""
    update: dict[str, AlarmLimit] = {}
    for code in DISCHARGE_LIMITS:
        value = getattr(discharge, code)
        if value is not None:
            update[code] = getattr(alarms, code).model_copy(update={"limit": value})
    return alarms.model_copy(update=update)


class Gates:
    """Evaluates the gates as things stand, and records each check."""

    def __init__(
        self,
        *,
        config: Config,
        clock: Clock,
        log: EventLog,
        session: SessionState,
        monitoring: Monitoring,
        alarms: AlarmEngine,
    ) -> None:
        self._discharge = config.discharge
        self._clock = clock
        self._log = log
        self._session = session
        self._monitoring = monitoring
        self._alarms = alarms

    def evaluate(self, name: str) -> GateResult:
        """A gate's verdict now: ``safety``, ``infusion_start`` or ``discharge``."""
        result = GateResult(name)
        for item in CONFIRMATIONS[name]:
            if item not in self._session.confirmed:
                result.unmet[item] = WORDS[item]
        protocol = self._session.protocol
        baseline_s = protocol.baseline_max_age_minutes * 60
        vitals = self._monitoring.current_vitals()
        manual = vitals is not None and vitals.source == "manual"
        limits = self._alarms.limits
        if name == "discharge":
            high = self._alarms.unacknowledged_high()
            if high:
                codes = ", ".join(a.code for a in high)
                result.unmet["alarms"] = f"high-priority alarm not acknowledged: {codes}"
                result.hard.add("alarms")
            limits = discharge_limits(limits, self._discharge)
            # The readings a patient leaves on must be live, not the baseline's.
            sample_age_s = self._discharge.manual_max_age_s if manual else limits.stale_s
        else:
            # A hand-measured SpO2/HR stays valid as long as a baseline NIBP would.
            sample_age_s = baseline_s if manual else limits.stale_s
        check_vitals(
            result,
            now=self._clock.now(),
            nibp=self._monitoring.current_nibp(),
            nibp_max_age_s=baseline_s,
            sample=vitals,
            sample_max_age_s=sample_age_s,
            limits=limits,
        )
        return result

    def pass_gate(self, name: str | None, cmd: Any) -> None:
        """Check gate ``name`` (if any) for a command; GateNotMet unless met or overridden."""
        if name is not None:
            self.check(self.evaluate(name), cmd)

    def check(self, result: GateResult, cmd: Any) -> None:
        """Record a gate's verdict; GateNotMet unless met, or overridden where it may be."""
        override = getattr(cmd, "override", None)
        data: dict[str, Any] = {"gate": result.gate, "met": result.met, "unmet": list(result.unmet)}
        if not result.met:
            data["reasons"] = result.unmet
        passed = result.met or (override is not None and result.overridable)
        if not result.met and override is not None:
            data["override"] = {"reason": override.reason, "by": cmd.by}
            if not result.overridable:
                data["override_refused"] = sorted(result.hard & result.unmet.keys())
        self._log.emit("gate_checked", data)
        if not passed:
            details: dict[str, Any] = {"gate": result.gate, "unmet": result.unmet}
            message = result.message()
            if override is not None:
                details["not_overridable"] = sorted(result.hard & result.unmet.keys())
                message += " (an override cannot pass: acknowledge the alarm first)"
            raise GateNotMet(message, details)
