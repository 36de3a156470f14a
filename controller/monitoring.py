"""Monitoring: the oximeter's samples, blood pressure on schedule, hand-entered vitals.

The room is an adjunct to the certified monitor: it watches the values it is sent, checks
them against the alarm limits in active phases, and keeps the blood pressure on the session's
schedule (``nibp_due`` every few minutes from the infusion to discharge, a technical alarm when a
due measurement is not taken).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar

from controller import events as ev
from controller.alarms import AlarmEngine
from controller.clock import mono_at
from controller.errors import DeviceUnavailable, InvalidPayload
from controller.eventlog import EventLog
from controller.health import Health
from controller.journal import Journal
from controller.models import Event, NibpReading, RecordVitals, VitalsSample, iso_utc, parse_utc
from controller.ports import Clock, Nibp
from controller.prompts import Prompt, give_prompt
from controller.state import SessionState
from controller.timers import Timers

NIBP_OVERDUE_S = 5 * 60
"""A due blood pressure not taken within this long is a technical alarm."""
NIBP_PHASES = ("infusion", "debrief", "discharge")
"""The phases in which blood pressure is measured on schedule."""
MANUAL_VITALS = Prompt(
    "vitals_due",
    "manual_vitals_overdue",
    "Hand-entered SpO2 and heart rate overdue: measure and record them",
)
"""Manual monitoring: SpO2 and heart rate by hand every few minutes of the infusion."""

T = TypeVar("T", VitalsSample, NibpReading)


class Monitoring:
    """The patient's vitals as the room knows them, and the blood-pressure schedule."""

    def __init__(
        self,
        *,
        clock: Clock,
        journal: Journal,
        log: EventLog,
        timers: Timers,
        alarms: AlarmEngine,
        session: SessionState,
        health: Health,
        nibp: Nibp | None,
        manual: bool = False,
    ) -> None:
        self._manual = manual  # [room] monitoring = "manual": SpO2/HR entered by hand
        self._clock = clock
        self._journal = journal
        self._log = log
        self._timers = timers
        self._alarms = alarms
        self._session = session
        self._health = health
        self._nibp = nibp
        self.latest_sample: VitalsSample | None = None
        self.latest_sample_mono: float | None = None
        self.last_valid_sample_mono: float | None = None
        self._reset()

    def _reset(self) -> None:
        self.manual_done = True  # the last prompt for hand-entered SpO2/HR was answered
        self.manual_spo2_hr: tuple[datetime, int | None, int | None] | None = None
        self.manual_mono = float("-inf")
        # A reading belongs to the patient it was taken on: never to the next one's gate.
        self.latest_nibp: NibpReading | None = None
        self.latest_nibp_mono: float | None = None

    def timer_table(self) -> dict[str, Callable[[], None]]:
        """The timers this part owns, by name."""
        return {
            "nibp": self.nibp_due,
            "nibp_overdue": self._nibp_overdue,
            "manual_vitals": self._manual_vitals_due,
        }

    # --- the fold -------------------------------------------------------------------

    def apply(self, event: Event) -> None:
        """Fold readings and the NIBP schedule from one journal event."""
        ts, data = event.ts, event.data
        match event.type:
            case "session_started" | "session_ended":
                self._reset()
            case "nibp_result":
                self._store_nibp(ts, NibpReading(ts=ts, **_reading(data)))
            case "vitals_recorded":
                if "sys" in data:
                    mean = round((data["sys"] + 2 * data["dia"]) / 3)
                    reading = NibpReading(
                        ts=ts,
                        sys=data["sys"],
                        dia=data["dia"],
                        map=mean,
                        hr=data.get("hr"),
                        source="manual",
                        by=data["by"],
                    )
                    self._store_nibp(ts, reading)
                if "spo2" in data or "hr" in data:
                    self.manual_spo2_hr = (ts, data.get("spo2"), data.get("hr"))
                    self.manual_mono = mono_at(self._clock, ts)
                    self.manual_done = True
            case "infusion_started":
                protocol = self._session.protocol
                if not self._timers.pending("nibp"):
                    self._timers.set_at(
                        "nibp", ts + timedelta(minutes=protocol.nibp_interval_minutes)
                    )
                if self._manual:
                    due = ts + timedelta(minutes=protocol.manual_interval_minutes)
                    self._timers.set_at("manual_vitals", due)
            case "vitals_due":
                self.manual_done = False
                self._timers.set_at("manual_vitals", parse_utc(data["next_due_at"]))
            case "nibp_due":
                self._timers.set_at("nibp", parse_utc(data["next_due_at"]))
                # Only while no overdue alarm stands: a firing that changes nothing would
                # leave no trace in the journal, and a resumed room must hold the same timers.
                if (
                    not self._timers.pending("nibp_overdue")
                    and "nibp_overdue" not in self._alarms.alarms
                ):
                    self._timers.set_at("nibp_overdue", ts + timedelta(seconds=NIBP_OVERDUE_S))
            case "alarm_raised" if data["alarm"]["code"] == "nibp_overdue":
                self._timers.cancel("nibp_overdue")  # fired: the alarm is its trace
            case "phase_changed":
                if data["to"] != "infusion":
                    self._timers.cancel("manual_vitals")
                if data["to"] not in NIBP_PHASES:
                    self._timers.cancel("nibp", "nibp_overdue")
            case _:
                pass

    def _store_nibp(self, ts: datetime, reading: NibpReading) -> None:
        self.latest_nibp = reading
        self.latest_nibp_mono = mono_at(self._clock, ts)
        self._timers.cancel("nibp_overdue")

    # --- what the devices say -------------------------------------------------------

    def on_sample(self, msg: ev.VitalsArrived) -> None:
        """An oximeter sample: keep it, publish it, check it against the limits."""
        sample = msg.sample
        self.latest_sample = sample
        self.latest_sample_mono = self._clock.monotonic()
        if sample.spo2 is not None or sample.hr is not None:
            self.last_valid_sample_mono = self._clock.monotonic()
        # The alarms first: nothing the disk does may delay or stop them.
        if self._session.active:
            self._alarms.check_sample(sample)
            self._alarms.set_condition(
                "sensor_off",
                sample.quality in ("sensor_off", "no_sensor"),
                kind="technical",
                priority="medium",
                message=f"Oximeter: {sample.quality.replace('_', ' ')}",
                delay_s=self._alarms.limits.stale_s,
            )
        self._log.publish_vitals(sample)
        self._keep(sample.ts, "sample", sample.model_dump_json())

    def _keep(self, ts: datetime, kind: str, payload: str) -> None:
        """Store a reading in the session's record; outside a session only the latest is kept
        (in memory, for the gates): vitals are telemetry, and an idle room writes nothing."""
        sid = self._session.session_id
        if sid is not None:
            self._journal.record_vitals(ts, sid, kind, payload)

    def on_nibp_completed(self, msg: ev.NibpCompleted) -> None:
        """The NIBP module measured: record, publish and check the reading."""
        r = msg.reading
        self._log.emit(
            "nibp_result",
            {"sys": r.sys, "dia": r.dia, "map": r.map, "hr": r.hr, "source": r.source},
        )
        self._keep(r.ts, "nibp", r.model_dump_json())
        self._log.publish_nibp(r)
        self._alarms.clear("nibp_failed")
        self._alarms.clear("nibp_overdue")
        if self._session.active:
            self._alarms.check_nibp(r)

    def on_nibp_failed(self, msg: ev.NibpFailed) -> None:
        """The NIBP module failed a measurement: a low technical alarm."""
        self._log.emit("nibp_failed", {"code": msg.code})
        self._alarms.raise_now(
            "nibp_failed", kind="technical", priority="low", message=f"NIBP failed: {msg.code}"
        )

    def check_stale(self) -> None:
        """No valid oximeter data for longer than ``stale_s`` in an active phase is an alarm."""
        if not self._session.active or self._health.devices.get("oximeter") == "absent":
            return
        limit = self._alarms.limits.stale_s
        last = self.last_valid_sample_mono
        age = None if last is None else self._clock.monotonic() - last
        self._alarms.set_condition(
            "vitals_stale",
            age is None or age > limit,
            kind="technical",
            priority="medium",
            message=f"No valid oximeter data for over {limit:g} s",
            delay_s=0,
        )

    def watching(self) -> bool:
        """Whether staleness must be judged every second (an oximeter, an active phase)."""
        return self._session.active and self._health.devices.get("oximeter") != "absent"

    # --- the schedule ---------------------------------------------------------------

    def nibp_due(self) -> None:
        """Blood pressure is due: say so, and measure when a module can."""
        minutes = self._session.protocol.nibp_interval_minutes
        next_due = self._clock.now() + timedelta(minutes=minutes)
        self._log.emit("nibp_due", {"next_due_at": iso_utc(next_due)})
        if self._nibp is not None and self._health.devices.get("nibp") == "ok":
            self._request("schedule")

    def _nibp_overdue(self) -> None:
        self._alarms.raise_now(
            "nibp_overdue",
            kind="technical",
            priority="medium",
            message="Blood pressure due and not measured",
        )

    def _manual_vitals_due(self) -> None:
        # Manual monitoring: SpO2 and heart rate by hand every few minutes of the infusion.
        give_prompt(
            MANUAL_VITALS,
            answered=self.manual_done,
            every_minutes=self._session.protocol.manual_interval_minutes,
            clock=self._clock,
            log=self._log,
            alarms=self._alarms,
        )

    def _request(self, by: str) -> None:
        assert self._nibp is not None
        self._nibp.start_measurement()
        self._log.emit("nibp_requested", {"by": by})

    # --- commands -------------------------------------------------------------------

    def nibp_now(self, cmd: Any) -> dict[str, Any]:
        """``nibp_now``: measure blood pressure now."""
        if self._nibp is None or self._health.devices.get("nibp") != "ok":
            raise DeviceUnavailable(
                "no commandable blood-pressure module; measure by hand and use record_vitals"
            )
        self._request(cmd.by)
        return {}

    def record_vitals(self, cmd: RecordVitals) -> dict[str, Any]:
        """``record_vitals``: vitals measured by hand."""
        values = {k: getattr(cmd, k) for k in ("sys", "dia", "hr", "spo2")}
        given = {k: v for k, v in values.items() if v is not None}
        if not given:
            raise InvalidPayload("fields 'sys', 'dia', 'hr', 'spo2': give at least one")
        if (cmd.sys is None) != (cmd.dia is None):
            raise InvalidPayload("fields 'sys' and 'dia': give both or neither")
        if cmd.sys is not None and cmd.dia is not None and cmd.dia >= cmd.sys:
            raise InvalidPayload("field 'dia': must be below 'sys'")
        self._log.emit("vitals_recorded", {**given, "by": cmd.by, "source": "manual"})
        if cmd.spo2 is not None or cmd.hr is not None:
            self._alarms.clear("manual_vitals_overdue")
        if cmd.sys is not None and self.latest_nibp is not None:
            self._log.publish_nibp(self.latest_nibp)
            self._keep(self.latest_nibp.ts, "nibp", self.latest_nibp.model_dump_json())
            self._alarms.check_nibp(self.latest_nibp)
        return given

    # --- the readings as they stand now ---------------------------------------------

    def current_vitals(self) -> VitalsSample | None:
        """The oximeter's latest sample, or a recent manual SpO2/HR when it is newer.

        Its ``ts`` is re-stated as now minus its monotonic age, so a wall-clock step can
        neither freshen nor age a reading.
        """
        sample, at = self.latest_sample, self.latest_sample_mono
        manual = self.manual_spo2_hr
        if manual is not None and (at is None or self.manual_mono > at):
            sample = VitalsSample(ts=manual[0], spo2=manual[1], hr=manual[2], source="manual")
            at = self.manual_mono
        return None if sample is None or at is None else self._aged(sample, at)

    def current_nibp(self) -> NibpReading | None:
        """The latest blood pressure, its ``ts`` re-stated by monotonic age (see above)."""
        if self.latest_nibp is None or self.latest_nibp_mono is None:
            return self.latest_nibp
        return self._aged(self.latest_nibp, self.latest_nibp_mono)

    def _aged(self, reading: T, at_mono: float) -> T:
        age = self._clock.monotonic() - at_mono
        return reading.model_copy(update={"ts": self._clock.now() - timedelta(seconds=age)})


def _reading(data: dict[str, Any]) -> dict[str, Any]:
    return {k: data.get(k) for k in ("sys", "dia", "map", "hr", "source")}
