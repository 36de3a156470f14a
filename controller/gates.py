"""The gates between phases: what must be true before the infusion and before discharge.

A gate not met refuses the step with every unmet item in words; a clinician's ``override``
with a reason passes it, and both are journaled as ``gate_checked``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from controller.alarms import AlarmEngine
from controller.config import AlarmsSection
from controller.errors import GateNotMet
from controller.eventlog import EventLog
from controller.models import NibpReading, VitalsSample
from controller.monitoring import Monitoring
from controller.ports import Clock
from controller.state import SessionState


@dataclass
class GateResult:
    """A gate's verdict: ``unmet`` items, each with the reason in words."""

    gate: str
    unmet: dict[str, str] = field(default_factory=dict)

    @property
    def met(self) -> bool:
        """Whether nothing is unmet."""
        return not self.unmet

    def message(self) -> str:
        """The unmet items in one sentence."""
        return f"{self.gate} gate not met: " + "; ".join(f"{k}: {v}" for k, v in self.unmet.items())


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


class Gates:
    """Evaluates the safety and discharge gates as things stand, and records each check."""

    def __init__(
        self,
        *,
        clock: Clock,
        log: EventLog,
        session: SessionState,
        monitoring: Monitoring,
        alarms: AlarmEngine,
    ) -> None:
        self._clock = clock
        self._log = log
        self._session = session
        self._monitoring = monitoring
        self._alarms = alarms

    def evaluate(self, name: str) -> GateResult:
        """A gate's verdict now."""
        result = GateResult(name)
        if name == "safety":
            for item in ("readiness", "consent"):
                if item not in self._session.confirmed:
                    result.unmet[item] = f"{item} not confirmed by a clinician"
        if name in ("safety", "discharge"):
            protocol = self._session.protocol
            vitals = self._monitoring.current_vitals()
            manual = vitals is not None and vitals.source == "manual"
            # A hand-measured SpO2/HR stays valid as long as a baseline NIBP would.
            baseline_s = protocol.baseline_max_age_minutes * 60
            check_vitals(
                result,
                now=self._clock.now(),
                nibp=self._monitoring.current_nibp(),
                nibp_max_age_s=baseline_s,
                sample=vitals,
                sample_max_age_s=baseline_s if manual else self._alarms.limits.stale_s,
                limits=self._alarms.limits,
            )
        return result

    def pass_gate(self, name: str | None, cmd: Any) -> None:
        """Check gate ``name`` (if any) for a command; GateNotMet unless met or overridden."""
        if name is not None:
            self.check(self.evaluate(name), cmd)

    def check(self, result: GateResult, cmd: Any) -> None:
        """Record a gate's verdict; GateNotMet unless met or overridden by the command."""
        override = getattr(cmd, "override", None)
        data: dict[str, Any] = {"gate": result.gate, "met": result.met, "unmet": list(result.unmet)}
        if not result.met:
            data["reasons"] = result.unmet
        if not result.met and override is not None:
            data["override"] = {"reason": override.reason, "by": cmd.by}
        self._log.emit("gate_checked", data)
        if not result.met and override is None:
            raise GateNotMet(result.message(), {"gate": result.gate, "unmet": result.unmet})
