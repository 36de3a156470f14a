"""The session's vitals as one HL7 v2.6 ORU^R01 message, in the style of IHE PCD-01.

What the message holds:

- ``MSH``: sending application ``ROOMD``, the room id as sending facility, message type
  ``ORU^R01^ORU_R01``, a control id derived from the session (the same session always gives the
  same id, so a receiver can discard a re-sent copy), version ``2.6``, UTF-8, and the IHE PCD-01
  profile in MSH-21.
- ``PID``: the clinic's pseudonym only. PID-3 is ``patient_ref`` with identifier type ``ANON``;
  PID-5 (name) and every other demographic field stay empty, because the room never knows a
  name. A receiver that needs a name maps the pseudonym on its own side.
- ``PV1``: an outpatient visit in the room (PV1-3), the session id as the visit number (PV1-19).
- ``OBR``: the session (``182777000^monitoring of patient^SCT``), start and end in OBR-7/8.
- ``OBX``: one per observation, value type ``NM``, MDC codes and units, each with its own time
  in OBX-14; device readings carry ``AMEAS`` in OBX-17 and the driver in OBX-18, hand-entered
  ones ``MMEAS`` and the clinician's id in OBX-16.

SpO2 and pulse rate are reported periodically (by default the first valid sample of each
minute, a real reading at its real time); every blood pressure is reported. Segments are
separated by carriage returns; text is escaped with HL7's escape sequences.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from controller.models import parse_utc

FIELD, COMPONENT, REPETITION, ESCAPE, SUBCOMPONENT = "|", "^", "~", "\\", "&"
ENCODING_CHARACTERS = COMPONENT + REPETITION + ESCAPE + SUBCOMPONENT
SEGMENT_END = "\r"
VERSION = "2.6"
MESSAGE_TYPE = "ORU^R01^ORU_R01"
SENDING_APPLICATION = "ROOMD"
PCD01_PROFILE = "IHE_PCD_001^IHE PCD^1.3.6.1.4.1.19376.1.6.1.1.1^ISO"
SESSION_SERVICE = "182777000^monitoring of patient^SCT"

PERCENT = "262688^MDC_DIM_PERCENT^MDC"
BPM = "264864^MDC_DIM_BEAT_PER_MIN^MDC"
MMHG = "266016^MDC_DIM_MMHG^MDC"


@dataclass(frozen=True)
class Metric:
    """One MDC metric: its OBX-3 code, OBX-4 containment and OBX-6 unit."""

    code: str
    sub_id: str
    unit: str


METRICS: dict[str, Metric] = {
    # The oximeter is MDS 1, the NIBP module MDS 2 (OBX-4 ordinals are unique per containment).
    "spo2": Metric("150456^MDC_PULS_OXIM_SAT_O2^MDC", "1.1.1.1", PERCENT),
    "hr": Metric("149530^MDC_PULS_OXIM_PULS_RATE^MDC", "1.1.1.2", BPM),
    "sys": Metric("150021^MDC_PRESS_BLD_NONINV_SYS^MDC", "2.1.1.1", MMHG),
    "dia": Metric("150022^MDC_PRESS_BLD_NONINV_DIA^MDC", "2.1.1.2", MMHG),
    "map": Metric("150023^MDC_PRESS_BLD_NONINV_MEAN^MDC", "2.1.1.3", MMHG),
}
"""The metrics the room reports, by the name the room's payloads use."""

AUTO = "AMEAS^auto-measurement^MDC"
MANUAL = "MMEAS^manual-measurement^MDC"


@dataclass(frozen=True)
class Observation:
    """One value to report: ``metric`` is a key of ``METRICS``."""

    ts: datetime
    metric: str
    value: float
    source: str = ""
    by: str | None = None

    @property
    def manual(self) -> bool:
        """Whether a clinician entered the value by hand."""
        return self.source == "manual"


def escape(text: str) -> str:
    """``text`` with HL7's delimiters escaped (and line breaks, which would end a segment)."""
    out = text.replace(ESCAPE, "\\E\\")
    for char, seq in (
        (FIELD, "\\F\\"),
        (COMPONENT, "\\S\\"),
        (SUBCOMPONENT, "\\T\\"),
        (REPETITION, "\\R\\"),
        ("\r", "\\X0D\\"),
        ("\n", "\\X0A\\"),
    ):
        out = out.replace(char, seq)
    return out


def unescape(text: str) -> str:
    """Undo ``escape`` (for readers and tests)."""
    out = text
    for char, seq in (
        ("\n", "\\X0A\\"),
        ("\r", "\\X0D\\"),
        (REPETITION, "\\R\\"),
        (SUBCOMPONENT, "\\T\\"),
        (COMPONENT, "\\S\\"),
        (FIELD, "\\F\\"),
    ):
        out = out.replace(seq, char)
    return out.replace("\\E\\", ESCAPE)


def hl7_time(ts: datetime) -> str:
    """An HL7 DTM in UTC with milliseconds: ``YYYYMMDDHHMMSS.sss+0000``."""
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)
    ts = ts.astimezone(UTC)
    return ts.strftime("%Y%m%d%H%M%S") + f".{ts.microsecond // 1000:03d}+0000"


def control_id(session_id: str, last_seq: int) -> str:
    """A message control id (≤ 20 characters) that is the same for the same session record."""
    digest = hashlib.sha256(f"{session_id}\0{last_seq}".encode()).hexdigest()
    return "ROOMD" + digest[:15].upper()


def periodic(
    samples: Sequence[tuple[datetime, int | None]], start: datetime, period_s: float = 60.0
) -> list[int]:
    """Indices of the first valid value of each ``period_s`` window from ``start``.

    A periodic report, as a monitor's gateway sends one: real readings at their real times
    (``samples`` in time order). The session's extremes are in the report's summary, not here.
    """
    out: list[int] = []
    last_slot: int | None = None
    for i, (ts, value) in enumerate(samples):
        if value is None:
            continue
        slot = int((ts - start).total_seconds() // period_s)
        if slot != last_slot:
            out.append(i)
            last_slot = slot
    return out


def _segment(name: str, fields: Sequence[str]) -> str:
    return FIELD.join([name, *fields]).rstrip(FIELD)


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def oru_r01(
    *,
    session_id: str,
    patient_ref: str,
    start: datetime,
    end: datetime,
    observations: Sequence[Observation],
    message_control_id: str,
    room_id: str = "",
    created_at: datetime | None = None,
) -> str:
    """The ORU^R01 message (segments joined by ``\\r``, ending with one)."""
    msh = [
        ENCODING_CHARACTERS,  # MSH-2 (MSH-1 is the field separator itself)
        SENDING_APPLICATION,  # MSH-3
        escape(room_id),  # MSH-4 sending facility: the room
        "",  # MSH-5
        "",  # MSH-6
        hl7_time(created_at or end),  # MSH-7
        "",  # MSH-8
        MESSAGE_TYPE,  # MSH-9
        escape(message_control_id),  # MSH-10
        "P",  # MSH-11
        VERSION,  # MSH-12
        "",  # MSH-13
        "",  # MSH-14
        "AL",  # MSH-15
        "NE",  # MSH-16
        "",  # MSH-17
        "UNICODE UTF-8",  # MSH-18
        "",  # MSH-19
        "",  # MSH-20
        PCD01_PROFILE,  # MSH-21
    ]
    segments = ["MSH" + FIELD + FIELD.join(msh)]
    # PID-3: the pseudonym, type ANON (anonymous identifier); PID-5 (name) deliberately empty.
    segments.append(_segment("PID", ["", "", f"{escape(patient_ref)}^^^^ANON"]))
    pv1 = [""] * 19
    pv1[1] = "O"  # PV1-2 patient class: outpatient
    pv1[2] = escape(room_id)  # PV1-3 assigned location
    pv1[18] = escape(session_id)  # PV1-19 visit number
    segments.append(_segment("PV1", pv1))
    order = f"{escape(session_id)}^{SENDING_APPLICATION}"
    obr = ["1", order, order, SESSION_SERVICE, "", "", hl7_time(start), hl7_time(end)]
    segments.append(_segment("OBR", obr))
    for n, obs in enumerate(observations, start=1):
        metric = METRICS[obs.metric]
        obx = [""] * 18
        obx[0] = str(n)  # OBX-1 set id
        obx[1] = "NM"
        obx[2] = metric.code
        obx[3] = metric.sub_id
        obx[4] = _number(obs.value)
        obx[5] = metric.unit
        obx[10] = "R"  # OBX-11: results entered, not verified (a device's raw data)
        obx[13] = hl7_time(obs.ts)  # OBX-14
        if obs.manual:
            obx[15] = escape(obs.by or "")  # OBX-16 responsible observer
            obx[16] = MANUAL
        else:
            obx[16] = AUTO
            obx[17] = escape(obs.source)  # OBX-18 equipment: the driver that read it
        segments.append(_segment("OBX", obx))
    return SEGMENT_END.join(segments) + SEGMENT_END


def session_message(rec: dict[str, Any], rows: Sequence[dict[str, Any]], room_id: str = "") -> str:
    """The ORU^R01 of a session record (``controller.report``'s ``session.json`` and
    ``vitals.csv`` rows): SpO2 and pulse once a minute, every blood pressure."""
    start = parse_utc(rec["started_at"])
    end = parse_utc(rec["ended_at"]) if rec["ended_at"] else start
    oxi = [r for r in rows if r["kind"] == "sample"]
    obs: list[Observation] = []
    for metric in ("spo2", "hr"):
        series = [(parse_utc(r["time"]), r[metric]) for r in oxi]
        for i in periodic(series, start):
            ts, value = series[i]
            obs.append(Observation(ts, metric, value, oxi[i]["source"] or ""))
    for r in rows:
        if r["kind"] == "manual":
            for metric in ("spo2", "hr"):
                if r[metric] is not None:
                    obs.append(
                        Observation(parse_utc(r["time"]), metric, r[metric], "manual", r["by"])
                    )
        elif r["kind"] == "nibp":
            for metric in ("sys", "dia", "map"):
                obs.append(
                    Observation(parse_utc(r["time"]), metric, r[metric], r["source"], r["by"])
                )
    obs.sort(key=lambda o: (o.ts, list(METRICS).index(o.metric)))
    return oru_r01(
        session_id=rec["session_id"],
        patient_ref=rec["patient_ref"] or "",
        start=start,
        end=end,
        observations=obs,
        message_control_id=control_id(rec["session_id"], rec["last_seq"]),
        room_id=room_id,
    )
