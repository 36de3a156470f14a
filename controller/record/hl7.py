"""The session's vitals as one HL7 v2.6 ORU^R01 message, in the style of IHE PCD-01.

What the message holds:

- ``MSH``: sending application ``ROOMD`` with the room's device identity, an EUI-64 (MSH-3),
  the room id as sending facility, the time the message was made (MSH-7), message type
  ``ORU^R01^ORU_R01``, a control id derived from the session record (the same record always
  gives the same id, so a receiver can discard a re-sent copy), version ``2.6``, UTF-8, and
  the IHE PCD-01 profile in MSH-21.
- ``PID``: the clinic's pseudonym only. PID-3 is ``patient_ref`` with identifier type ``ANON``
  and an assigning authority (by default the room id); PID-5 carries no name, only the name
  type ``S`` (pseudonym), because the room never knows a name. A receiver that needs a name
  maps the pseudonym on its own side.
- ``PV1``: an outpatient visit in the room (PV1-3), the session id as the visit number
  (PV1-19), the session's start and end as the visit's (PV1-44/45).
- One ``OBR`` per reading (one oximeter sample, one blood pressure, one hand-entered value),
  observed at OBR-7, ordered as ``182777000^monitoring of patient^SCT`` for the session (OBR-2)
  and numbered within it (OBR-3), both assigned by the room's EUI-64.
- Under it one ``OBX`` per value, value type ``NM``, MDC codes and units, its time in OBX-14;
  device readings carry ``AMEAS`` in OBX-17 and the room's EUI-64 and the driver in OBX-18,
  hand-entered ones ``MMEAS`` and the clinician's id in OBX-16.

Oximetry is reported per minute by its extremes: in each minute from the session's start, the
samples with the lowest and highest SpO2 and pulse rate (a steady minute: its first sample),
each with both values at its real time. So every desaturation, however short, is in the
message at its lowest. Every blood pressure and hand-entered value is reported. Segments are
separated by carriage returns; text is escaped with HL7's escape sequences.
"""

from __future__ import annotations

import hashlib
import itertools
import re
from collections.abc import Mapping, Sequence
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
PSEUDONYM_NAME = "^^^^^^S"
"""PID-5: no name at all, only the name type: S, a pseudonym (HL7 table 0200)."""
EUI64 = "EUI-64"

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
METRIC_ORDER = {name: n for n, name in enumerate(METRICS)}

AUTO = "AMEAS^auto-measurement^MDC"
MANUAL = "MMEAS^manual-measurement^MDC"


def room_eui64(room_id: str) -> str:
    """A stable EUI-64 for a room's controller, derived from the room id.

    The room owns no IEEE company id, so the identifier is a locally administered one (the
    U/L bit set, the group bit clear), the same for the same room id on every run.
    """
    octets = bytearray(hashlib.sha256(f"roomd-eui64\0{room_id}".encode()).digest()[:8])
    octets[0] = (octets[0] & 0xFC) | 0x02
    return octets.hex().upper()


@dataclass(frozen=True)
class Sender:
    """Who sends the message: the room, the authority that issued the patient pseudonyms
    (PID-3; default the room id) and the room's device identity (an EUI-64; default derived
    from the room id)."""

    room_id: str = ""
    assigning_authority: str | None = None
    device_eui64: str | None = None

    def __post_init__(self) -> None:
        if self.device_eui64 is not None and not re.fullmatch(
            r"[0-9A-Fa-f]{16}", self.device_eui64
        ):
            raise ValueError(
                f"device_eui64: {self.device_eui64!r} is not 16 hexadecimal digits (an EUI-64)"
            )
        if self.assigning_authority == "":
            raise ValueError("assigning_authority: empty; leave it unset for the room id")

    @property
    def authority(self) -> str:
        """PID-3's assigning authority."""
        return self.assigning_authority or self.room_id or SENDING_APPLICATION

    @property
    def eui64(self) -> str:
        """The room's EUI-64, 16 upper-case hexadecimal digits."""
        return (self.device_eui64 or room_eui64(self.room_id)).upper()


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


_ESCAPES = (
    (FIELD, "\\F\\"),
    (COMPONENT, "\\S\\"),
    (SUBCOMPONENT, "\\T\\"),
    (REPETITION, "\\R\\"),
    ("\r", "\\X0D\\"),
    ("\n", "\\X0A\\"),
)


def escape(text: str) -> str:
    """``text`` with HL7's delimiters escaped (and line breaks, which would end a segment)."""
    out = text.replace(ESCAPE, "\\E\\")
    for char, seq in _ESCAPES:
        out = out.replace(char, seq)
    return out


def unescape(text: str) -> str:
    """Undo ``escape`` (for readers and tests)."""
    out = text
    for char, seq in reversed(_ESCAPES):
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


def minute_extremes(
    samples: Sequence[tuple[datetime, Mapping[str, float | None]]],
    start: datetime,
    keys: Sequence[str] = ("spo2", "hr"),
    period_s: float = 60.0,
) -> list[int]:
    """Indices of the samples to report: in each ``period_s`` window from ``start``, the
    first sample holding the lowest and the first holding the highest value of each of
    ``keys`` (``samples`` in time order; None is no value)."""
    keep: set[int] = set()
    slots = itertools.groupby(
        range(len(samples)), key=lambda i: (samples[i][0] - start).total_seconds() // period_s
    )
    for _, window in slots:
        indices = list(window)
        for key in keys:
            valued = [(v, i) for i in indices if (v := samples[i][1].get(key)) is not None]
            if valued:
                keep.add(min(valued)[1])  # ties: the earlier sample
                keep.add(min(valued, key=lambda vi: (-vi[0], vi[1]))[1])
    return sorted(keep)


def _segment(name: str, fields: Sequence[str]) -> str:
    return FIELD.join([name, *fields]).rstrip(FIELD)


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def readings(observations: Sequence[Observation]) -> list[list[Observation]]:
    """The observations grouped into readings (one OBR each): the values made at one time by
    one device or clinician, in time order, no metric twice in one reading."""
    ordered = sorted(
        observations, key=lambda o: (o.ts, o.source, o.by or "", METRIC_ORDER[o.metric])
    )
    groups: list[list[Observation]] = []
    for obs in ordered:
        last = groups[-1] if groups else []
        same = last and (last[0].ts, last[0].source, last[0].by) == (obs.ts, obs.source, obs.by)
        if same and all(o.metric != obs.metric for o in last):
            last.append(obs)
        else:
            groups.append([obs])
    return groups


def _msh(sender: Sender, message_control_id: str, created_at: datetime) -> str:
    msh = [
        ENCODING_CHARACTERS,  # MSH-2 (MSH-1 is the field separator itself)
        f"{SENDING_APPLICATION}^{sender.eui64}^{EUI64}",  # MSH-3: the room's device identity
        escape(sender.room_id),  # MSH-4 sending facility: the room
        "",  # MSH-5
        "",  # MSH-6
        hl7_time(created_at),  # MSH-7: when the message was made
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
    return "MSH" + FIELD + FIELD.join(msh)


def _obx(n: int, obs: Observation, eui: str) -> str:
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
        # OBX-18 equipment: the room's EUI-64, then the driver that read the value.
        driver = f"{escape(obs.source)}^{SENDING_APPLICATION}" if obs.source else ""
        obx[17] = REPETITION.join(filter(None, [f"{eui}^^{eui}^{EUI64}", driver]))
    return _segment("OBX", obx)


def oru_r01(
    *,
    session_id: str,
    patient_ref: str,
    start: datetime,
    end: datetime | None,
    observations: Sequence[Observation],
    message_control_id: str,
    sender: Sender | None = None,
    created_at: datetime | None = None,
) -> str:
    """The ORU^R01 message (segments joined by ``\\r``, ending with one); ``end`` None: the
    session is still running; ``created_at`` None: now."""
    sender = sender or Sender()
    eui = sender.eui64
    segments = [_msh(sender, message_control_id, created_at or datetime.now(UTC))]
    pid = ["", "", f"{escape(patient_ref)}^^^{escape(sender.authority)}^ANON", "", PSEUDONYM_NAME]
    segments.append(_segment("PID", pid))
    pv1 = [""] * 45
    pv1[1] = "O"  # PV1-2 patient class: outpatient
    pv1[2] = escape(sender.room_id)  # PV1-3 assigned location
    pv1[18] = escape(session_id)  # PV1-19 visit number
    pv1[43] = hl7_time(start)  # PV1-44 admit: the session started
    pv1[44] = hl7_time(end) if end is not None else ""  # PV1-45 discharge: it ended
    segments.append(_segment("PV1", pv1))
    assigner = f"{SENDING_APPLICATION}^{eui}^{EUI64}"
    n_obx = itertools.count(1)
    placer = f"{escape(session_id)}^{assigner}"  # the order: the session
    grouped = readings(observations)
    for n, reading in enumerate(grouped, start=1):
        filler = f"{escape(session_id)}-{n}^{assigner}"  # this reading of it
        obr = [str(n), placer, filler, SESSION_SERVICE, "", "", hl7_time(reading[0].ts)]
        segments.append(_segment("OBR", obr))
        segments += [_obx(next(n_obx), obs, eui) for obs in reading]
    if not grouped:
        # ORU^R01 needs one order: a session that recorded no reading still has the session.
        filler = f"{escape(session_id)}-0^{assigner}"
        segments.append(
            _segment("OBR", ["1", placer, filler, SESSION_SERVICE, "", "", hl7_time(start)])
        )
    return SEGMENT_END.join(segments) + SEGMENT_END


def session_message(
    rec: dict[str, Any],
    rows: Sequence[dict[str, Any]],
    sender: Sender | None = None,
    created_at: datetime | None = None,
) -> str:
    """The ORU^R01 of a session record (``controller.record.summary``'s ``session.json`` and
    ``vitals.csv`` rows): oximetry by its per-minute extremes, every blood pressure and every
    hand-entered value."""
    start = parse_utc(rec["started_at"])
    oxi = [(parse_utc(r["time"]), r) for r in rows if r["kind"] == "sample"]
    obs: list[Observation] = []
    for i in minute_extremes(oxi, start):
        ts, r = oxi[i]
        obs += [
            Observation(ts, metric, r[metric], r["source"] or "")
            for metric in ("spo2", "hr")
            if r[metric] is not None
        ]
    for r in rows:
        ts = parse_utc(r["time"])
        if r["kind"] == "manual":
            obs += [
                Observation(ts, metric, r[metric], "manual", r["by"])
                for metric in ("spo2", "hr")
                if r[metric] is not None
            ]
        elif r["kind"] == "nibp":
            obs += [
                Observation(ts, metric, r[metric], r["source"], r["by"])
                for metric in ("sys", "dia", "map")
            ]
    return oru_r01(
        session_id=rec["session_id"],
        patient_ref=rec["patient_ref"] or "",
        start=start,
        end=parse_utc(rec["ended_at"]) if rec["ended_at"] else None,
        observations=obs,
        message_control_id=control_id(rec["session_id"], rec["last_seq"]),
        sender=sender,
        created_at=created_at,
    )
