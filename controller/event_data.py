"""Every journal event's ``data``, as pydantic models: what each event type carries.

``EVENT_DATA`` maps each event type the room emits to the model of its ``data``; the envelope
(``seq``, ``ts``, ``session_id``, ``type``) is ``models.Event``. The AsyncAPI document types
each event from this table, and ``check_event_data`` holds an emitted event to it. An event
type the room starts emitting needs its model here (a test scans the code for them).
"""

from __future__ import annotations

import json
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, NonNegativeFloat, NonNegativeInt, ValidationError

from controller.models import (
    Alarm,
    ConfirmItem,
    ErrorCode,
    LimitInForce,
    Payload,
    Phase,
    Priority,
    SessionPlan,
    UtcTime,
)

DeviceName = Literal["oximeter", "nibp", "call_button", "lighting", "audio"]
"""A device the room watches (a key of ``RoomState.devices``)."""
Level = Annotated[float, Field(ge=0, le=1)]

ALARM = {
    "id": "spo2_critical-1767605200000",
    "code": "spo2_critical",
    "kind": "physiological",
    "priority": "high",
    "state": "active",
    "raised_at": "2026-01-05T09:26:40.000Z",
    "value": 86,
    "limit": 88,
    "message": "SpO2 86 below 88",
    "silenced_until": None,
}
PLAN = {
    "session_id": "2026-01-05-r3-am",
    "patient_ref": "P-7F3A",
    "session_number": 2,
    "music_mode": "music",
    "playlist": ["infusion/01-arrival.ogg", "infusion/02-drift.ogg"],
    "guidance": "none",
}


class EventData(Payload):
    """Base of every event's data: frozen, unknown fields refused; ``example`` is for the docs."""

    example: ClassVar[dict[str, Any]] = {}


# === the session ==========================================================================


class SessionConfigured(EventData):
    """A valid plan arrived on ``plan``; it waits for ``start_session``. ``tracks`` are its
    files as resolved: the guidance track, if any, then the playlist (music mode)."""

    plan: SessionPlan
    tracks: list[str]
    example: ClassVar = {"plan": PLAN, "tracks": PLAN["playlist"]}


class PlanRejected(EventData):
    """A plan arrived that the room cannot run (invalid, a missing file, a session running,
    too large to record); the room keeps what it had. One reason per problem, the first 20
    and then how many more."""

    reasons: list[str]
    example: ClassVar = {"reasons": ["session_number: session_number must be 1..6"]}


class SessionStarted(EventData):
    """``start_session`` began a session from the plan (``session_id`` is the plan's)."""

    plan: SessionPlan
    tracks: list[str]
    by: str
    example: ClassVar = SessionConfigured.example | {"by": "dr-lee"}


class PhaseChanged(EventData):
    """The session moved to another phase (``advance``, ``discharge``, ``end_session``)."""

    from_: Phase = Field(alias="from")
    to: Phase
    by: str
    example: ClassVar = {"from": "pre_infusion", "to": "infusion", "by": "dr-lee"}


class SessionResumed(EventData):
    """The room restarted during a session and rebuilt it from its journal."""

    downtime_s: NonNegativeFloat
    phase: Phase
    clock_behind_s: NonNegativeFloat | None = None  # the wall clock was behind the journal
    example: ClassVar = {"downtime_s": 42.5, "phase": "infusion"}


class OpenAlarm(Payload):
    """An alarm still unacknowledged when the session ended."""

    id: str
    code: str
    priority: Priority
    state: Literal["active", "latched"]


class SessionEnded(EventData):
    """The session ended: ``reason`` is ``discharged`` or the clinician's ``end_session``
    reason; ``discharged`` false when it ended without discharge (``from_phase`` says where);
    ``open_alarms`` lists the alarms nobody had acknowledged."""

    reason: str
    by: str
    discharged: bool
    from_phase: Phase
    open_alarms: list[OpenAlarm]
    example: ClassVar = {
        "reason": "discharged",
        "by": "dr-lee",
        "discharged": True,
        "from_phase": "discharge",
        "open_alarms": [],
    }


class LimitsInForce(EventData):
    """At a session's start: each alarm setting in force and its source (``config`` or the
    session ``plan``), the ``[discharge]`` limits, and the monitoring mode."""

    alarms: dict[str, LimitInForce]
    discharge: dict[str, float | None]
    monitoring: Literal["continuous", "manual"]
    example: ClassVar = {
        "alarms": {
            "spo2_low": {
                "limit": 94,
                "priority": "medium",
                "delay_s": 10,
                "source": "plan",
            },
            "stale_s": {"value": 10, "source": "config"},
        },
        "discharge": {"spo2_low": None, "manual_max_age_s": 300},
        "monitoring": "continuous",
    }


class Discharged(EventData):
    """The discharge gate passed (``discharge``, or ``advance`` in discharge); the session
    ends next."""

    by: str
    example: ClassVar = {"by": "dr-lee"}


class ReportSummary(Payload):
    """The few key numbers of a session's record."""

    session_id: str
    duration_s: NonNegativeFloat
    infusion_s: NonNegativeFloat | None
    infusion_completed: bool
    nibp_readings: NonNegativeInt
    spo2_min: int | None
    hr_min: int | None
    hr_max: int | None
    alarms: NonNegativeInt
    calls: NonNegativeInt
    overrides: NonNegativeInt
    emergency: bool


class ReportReady(EventData):
    """The ended session's record was written; ``path`` is its HTML report."""

    path: str
    summary: ReportSummary
    example: ClassVar = {
        "path": "/var/lib/roomd/reports/2026-01-05-r3-am/report.html",
        "summary": {
            "session_id": "2026-01-05-r3-am",
            "duration_s": 7260.0,
            "infusion_s": 2400.0,
            "infusion_completed": True,
            "nibp_readings": 6,
            "spo2_min": 94,
            "hr_min": 61,
            "hr_max": 88,
            "alarms": 1,
            "calls": 0,
            "overrides": 0,
            "emergency": False,
        },
    }


# === gates, confirmations, infusion =======================================================


class GateOverride(Payload):
    """A clinician passed a gate that was not met."""

    reason: str
    by: str


class GateChecked(EventData):
    """A gate was checked (entering infusion, leaving discharge, starting the infusion).
    When not met, ``reasons`` says why for each unmet item and ``override`` records a
    clinician's decision to pass it anyway."""

    gate: Literal["safety", "discharge", "infusion_start"]
    met: bool
    unmet: list[str]
    reasons: dict[str, str] | None = None
    override: GateOverride | None = None
    override_refused: list[str] | None = None  # unmet items no override may pass
    example: ClassVar = {
        "gate": "safety",
        "met": False,
        "unmet": ["nibp"],
        "reasons": {"nibp": "last blood pressure is 16 min old (max 15)"},
        "override": {"reason": "monitor BP taken by hand, 118/76", "by": "dr-lee"},
    }


class Confirmed(EventData):
    """A clinician confirmed one gate item (``confirm``)."""

    item: ConfirmItem
    by: str
    example: ClassVar = {"item": "consent", "by": "dr-lee"}


class InfusionStarted(EventData):
    """The infusion timer started (``start_infusion``); the room never drives the pump."""

    target_s: NonNegativeFloat
    by: str
    example: ClassVar = {"target_s": 2400.0, "by": "dr-lee"}


class InfusionCompleted(EventData):
    """The infusion timer reached its target."""

    elapsed_s: NonNegativeFloat
    example: ClassVar = {"elapsed_s": 2400.0}


class InfusionStopped(EventData):
    """The infusion was stopped before its target: ``stop_infusion`` (its reason),
    ``emergency`` or the session's end (``session_ended``)."""

    reason: str
    by: str
    example: ClassVar = {"reason": "patient asked to stop", "by": "dr-lee"}


class DebriefReady(EventData):
    """The infusion is complete and, in music mode, the playlist has ended."""


class Emergency(EventData):
    """A clinician declared an emergency: lights full, music and infusion stopped, a
    high-priority ``emergency`` alarm."""

    reason: str
    by: str
    example: ClassVar = {"reason": "airway", "by": "dr-lee"}


# === blood pressure and vitals ============================================================


class NibpDue(EventData):
    """A blood pressure is due: on the schedule from the infusion's start (paused in
    preparation), and on entering discharge; ``next_due_at`` is when the next one will be."""

    next_due_at: UtcTime
    example: ClassVar = {"next_due_at": "2026-01-05T09:31:30.000Z"}


class NibpRequested(EventData):
    """The NIBP module was asked to measure: by the schedule (``by`` is ``schedule``) or by
    a clinician's ``nibp_now``."""

    by: str
    example: ClassVar = {"by": "schedule"}


class NibpResult(EventData):
    """The NIBP module measured a blood pressure."""

    sys: int
    dia: int
    map: int
    hr: int | None
    source: str
    example: ClassVar = {"sys": 130, "dia": 85, "map": 100, "hr": 80, "source": "suntech"}


class NibpFailed(EventData):
    """The NIBP module reported an error instead of a reading (a ``nibp_failed`` alarm)."""

    code: str
    example: ClassVar = {"code": "weak_signal"}


class VitalsRecorded(EventData):
    """A clinician entered vitals measured by hand (``record_vitals``): blood pressure
    (``sys`` and ``dia`` together) and/or SpO2 and heart rate; absent ones were not given."""

    sys: int | None = None
    dia: int | None = None
    hr: int | None = None
    spo2: int | None = None
    by: str
    source: Literal["manual"]
    example: ClassVar = {"sys": 118, "dia": 76, "hr": 70, "by": "dr-lee", "source": "manual"}


# === alarms ===============================================================================


class AlarmChange(EventData):
    """An alarm as it is after the change."""

    alarm: Alarm
    example: ClassVar = {"alarm": ALARM}


class AlarmRaised(AlarmChange):
    """An alarm became active: its condition lasted its delay, an alarm raised at once
    (emergency, a device lost, NIBP failed or overdue, ...), or a latched alarm's condition
    came back."""


class AlarmReactivated(AlarmChange):
    """An acknowledged physiological alarm got worse than at its acknowledgement by the
    clinic's ``[alarms.reactivate_step]``: it is active again, sounds, and escalates again."""


class AlarmLatched(AlarmChange):
    """A high-priority alarm's condition cleared before anyone acknowledged it: it stays,
    latched, until acknowledged."""


class AlarmEscalated(AlarmChange):
    """An active or latched alarm was not acknowledged within ``[alarms] escalate_after_s``
    (a silence does not stop escalation)."""


class AlarmCleared(AlarmChange):
    """An alarm is gone: its condition cleared, a latched one was acknowledged, its device
    came back, or the session ended."""


class AlarmActed(AlarmChange):
    """An alarm as a clinician's command left it."""

    by: str
    example: ClassVar = {"alarm": ALARM, "by": "dr-lee"}


class AlarmAcknowledged(AlarmActed):
    """A clinician acknowledged an alarm (``alarm_ack``); a latched one clears next."""


class AlarmSilenced(AlarmActed):
    """A clinician silenced the sounding alarms (``alarm_silence``): one event per alarm,
    with its ``silenced_until``."""

    example: ClassVar = {
        "alarm": ALARM | {"silenced_until": "2026-01-05T09:28:40.000Z"},
        "by": "dr-lee",
    }


# === the patient call and check-ins =======================================================


class CallPlaced(EventData):
    """The patient pressed the call button with no call open, or an acknowledged call was
    not cleared within ``call_reminder_s`` and comes back (``reminder`` true)."""

    reminder: bool = False
    example: ClassVar = {"reminder": True}


class CallAcknowledged(EventData):
    """A clinician acknowledged the call (``call_ack``)."""

    by: str
    example: ClassVar = {"by": "dr-lee"}


class CallEscalated(EventData):
    """The call was not acknowledged within ``call_escalate_s`` (again every period)."""


class CallCleared(EventData):
    """The call was closed: from the tablet (``call_clear``), by holding the call button at
    the bedside (``by`` is ``bedside``), or by the session's end."""

    by: str
    where: Literal["tablet", "bedside", "session_end"]
    example: ClassVar = {"by": "dr-lee", "where": "tablet"}


class CheckinDue(EventData):
    """A check-in on the patient is due (no-music infusion); ``escalated`` when the last
    one was missed."""

    escalated: bool
    next_due_at: UtcTime
    example: ClassVar = {"escalated": False, "next_due_at": "2026-01-05T09:10:00.000Z"}


class VitalsDue(EventData):
    """Manual monitoring: SpO2 and heart rate are due by hand (``record_vitals``);
    ``escalated`` when the last prompt went unanswered (then ``manual_vitals_overdue``)."""

    escalated: bool
    next_due_at: UtcTime
    example: ClassVar = {"escalated": False, "next_due_at": "2026-01-05T09:10:00.000Z"}


class CheckinRecorded(EventData):
    """A clinician checked on the patient (``checkin``)."""

    by: str
    note: str | None
    example: ClassVar = {"by": "dr-lee", "note": "calm, eyes closed"}


# === music and lights =====================================================================


class MusicStarted(EventData):
    """The session's tracks started playing (``start_infusion``, or ``music`` play)."""

    playlist: list[str]
    by: str
    example: ClassVar = {"playlist": PLAN["playlist"], "by": "dr-lee"}


class TrackStarted(EventData):
    """A track began playing on these outputs."""

    track: str
    outputs: list[Literal["headphones", "speakers"]]
    example: ClassVar = {"track": "infusion/01-arrival.ogg", "outputs": ["headphones", "speakers"]}


class TrackEnded(EventData):
    """A track stopped after ``played_s`` seconds."""

    track: str
    played_s: NonNegativeFloat
    example: ClassVar = {"track": "infusion/01-arrival.ogg", "played_s": 312.4}


class MusicStopped(EventData):
    """The music stopped: the playlist ended, the infusion phase was left, an emergency,
    the session's end, or a clinician's ``music`` stop (then ``by``)."""

    reason: Literal["playlist_ended", "phase_changed", "emergency", "session_ended", "stopped"]
    by: str | None = None
    note: str | None = None  # why a playing playlist was cut short by leaving the infusion
    example: ClassVar = {"reason": "stopped", "by": "dr-lee"}


class MusicPaused(EventData):
    """A clinician paused the music (``music`` pause)."""

    by: str
    example: ClassVar = {"by": "dr-lee"}


class MusicResumed(MusicPaused):
    """A clinician resumed the paused music (``music`` resume)."""


class MusicSkipped(MusicPaused):
    """A clinician skipped to the next track (``music`` skip)."""


class VolumeChanged(EventData):
    """A clinician set an output's volume (``music`` volume)."""

    output: Literal["headphones", "speakers", "both"]
    level: Level
    by: str
    example: ClassVar = {"output": "headphones", "level": 0.6, "by": "dr-lee"}


class PreviewStarted(EventData):
    """A clinician previewed a track before the infusion (``music`` preview)."""

    track: str
    offset_s: NonNegativeFloat | None
    duration_s: NonNegativeFloat
    example: ClassVar = {"track": "infusion/02-drift.ogg", "offset_s": 60.0, "duration_s": 20.0}


class LightingChanged(EventData):
    """The lights changed: a phase's scene, an emergency, or a clinician's ``lights``
    (scene ``manual`` for a level alone)."""

    scene: str
    level: Level
    fade_s: NonNegativeFloat
    by: str
    example: ClassVar = {"scene": "infusion", "level": 0.05, "fade_s": 30.0, "by": "dr-lee"}


# === devices, the link, the journal, commands =============================================


class DeviceConnected(EventData):
    """A device was found or came back."""

    device: DeviceName
    status: Literal["ok"]
    detail: str
    example: ClassVar = {"device": "oximeter", "status": "ok", "detail": "/dev/ttyUSB0"}


class DeviceLost(EventData):
    """A device was lost (a technical ``<device>_lost`` alarm) or is absent."""

    device: DeviceName
    status: Literal["lost", "absent"]
    detail: str
    example: ClassVar = {"device": "oximeter", "status": "lost", "detail": "no data for 5 s"}


class LinkRestored(EventData):
    """The clinic link came back after ``offline_s``; the ``queued`` events it had not
    delivered go out first, in ``seq`` order."""

    offline_s: NonNegativeFloat
    queued: NonNegativeInt
    example: ClassVar = {"offline_s": 95.2, "queued": 14}


StorageKind = Literal["full", "io", "read_only", "permission", "damaged"]


class StorageFault(EventData):
    """The journal refuses writes (``kind``): events wait in memory and are journaled, in
    order, once it takes them again; a high technical alarm ``storage_fault`` stands."""

    kind: StorageKind
    file: str
    detail: Annotated[str, Field(max_length=500)]
    example: ClassVar = {
        "kind": "full",
        "file": "/var/lib/roomd/journal.sqlite",
        "detail": "database or disk is full",
    }


class StorageRestored(EventData):
    """The journal takes writes again: ``committed_late`` events that waited were journaled;
    ``dropped`` events (beyond the queue), vitals and other writes could not be kept."""

    kind: StorageKind
    committed_late: NonNegativeInt
    dropped: NonNegativeInt
    vitals_dropped: NonNegativeInt
    writes_dropped: NonNegativeInt
    example: ClassVar = {
        "kind": "full",
        "committed_late": 14,
        "dropped": 0,
        "vitals_dropped": 30,
        "writes_dropped": 0,
    }


class JournalRecovered(EventData):
    """At start-up the journal was found damaged and set aside (``damaged_file``), or events
    were lost with its write-ahead log (``lost_seqs``, first and last; ``damaged_file`` null):
    numbering continues above the last seq ever used (null when it could not be read)."""

    damaged_file: str | None
    last_seq: NonNegativeInt | None
    reason: Annotated[str, Field(max_length=500)]
    lost_seqs: list[NonNegativeInt] | None = None
    example: ClassVar = {
        "damaged_file": "/var/lib/roomd/journal.sqlite.damaged-20260105T092640",
        "last_seq": 812,
        "reason": "database disk image is malformed",
    }


class CommandRejected(EventData):
    """A command was refused or failed (every error reply but ``duplicate``); ``request_id``
    is empty when the command had none readable. Refusals are coalesced: the first of an
    interval at once, then one event per code for the rest of it, ``count`` refusals (the
    last one's ``verb``, ``request_id`` and ``by``), ``unanswered`` of them not understood and
    past the sender's reply budget (20 a second). ``by`` (with ``by_verified``) is the broker
    user that sent it on ``cmd/<verb>/by/<user>``."""

    verb: Annotated[str, Field(max_length=64)]
    code: ErrorCode
    request_id: Annotated[str, Field(max_length=64)]
    by: Annotated[str, Field(max_length=64)] | None = None
    by_verified: Literal[True] | None = None
    count: Annotated[int, Field(ge=2)] | None = None
    unanswered: Annotated[int, Field(ge=1)] | None = None
    example: ClassVar = {"verb": "advance", "code": "gate_not_met", "request_id": "tab7-000184"}


# === the patient's choice and the clinical record ===================================


class PlanAmended(EventData):
    """``choose`` changed the session's music (before the infusion): ``changes`` holds the
    fields given, ``tracks`` the files the session will now play (guidance first), and
    ``warnings`` what the clinician should know (a playlist outside ``playlist_minutes``)."""

    changes: dict[str, Any]
    tracks: list[str]
    by: str
    playlist_duration_s: float | None
    warnings: list[str]
    example: ClassVar = {
        "changes": {"playlist": "calm-55", "guidance": "breathing"},
        "tracks": ["guidance/breathing.ogg", "calm/01.ogg", "calm/02.ogg"],
        "by": "dr-lee",
        "playlist_duration_s": 3310.5,
        "warnings": [],
    }


class NoteRecorded(EventData):
    """A clinician wrote a note (``note``). The text is clinical content: it stays in the
    room's journal and never appears on an event; ``notes`` returns it to clinicians."""

    note_id: str
    kind: str
    by: str
    chars: NonNegativeInt
    example: ClassVar = {"note_id": "n-42", "kind": "intentions", "by": "dr-lee", "chars": 312}


class DoseRecorded(EventData):
    """The dose given, as documented (``record_dose``); the room never doses. ``warnings``:
    arithmetic that does not add up, or a dose other than the protocol's."""

    weight_kg: float
    dose_mg_per_kg: float
    total_mg: float
    by: str
    warnings: list[str]
    example: ClassVar = {
        "weight_kg": 72.0,
        "dose_mg_per_kg": 0.5,
        "total_mg": 36.0,
        "by": "dr-lee",
        "warnings": [],
    }


class SideEffectsRecorded(EventData):
    """Side effects seen at the debrief (``side_effects``), from the clinic's list; the
    free-text note, if any, is kept like a note (``note_id``), not on the event."""

    items: list[str]
    by: str
    note_id: str | None
    example: ClassVar = {"items": ["nausea", "dizziness"], "by": "dr-lee", "note_id": None}


class AdverseEventRecorded(EventData):
    """An adverse event and what was done (``adverse_event``); its text, if any, is kept
    like a note (``note_id``)."""

    kind: str
    severity: Literal["mild", "moderate", "severe"]
    action: str
    by: str
    note_id: str | None
    example: ClassVar = {
        "kind": "vomiting",
        "severity": "mild",
        "action": "ondansetron 4 mg given",
        "by": "dr-lee",
        "note_id": "n-43",
    }


class DebriefDue(EventData):
    """The debrief has lasted the protocol's least (``bound`` ``least``: it may end) or most
    (``most``: it is due to end) minutes, ``[protocol] debrief_minutes``. Information only."""

    bound: Literal["least", "most"]
    minutes: float
    example: ClassVar = {"bound": "least", "minutes": 20.0}


class LoopStalled(EventData):
    """The room's core loop did not turn for ``gap_s`` seconds (the process was stopped,
    starved or swapped out): nothing was heard, decided or published meanwhile."""

    gap_s: NonNegativeFloat
    example: ClassVar = {"gap_s": 30.2}


EVENT_DATA: dict[str, type[EventData]] = {
    "session_configured": SessionConfigured,
    "plan_rejected": PlanRejected,
    "session_started": SessionStarted,
    "limits_in_force": LimitsInForce,
    "phase_changed": PhaseChanged,
    "session_resumed": SessionResumed,
    "session_ended": SessionEnded,
    "discharged": Discharged,
    "report_ready": ReportReady,
    "gate_checked": GateChecked,
    "confirmed": Confirmed,
    "infusion_started": InfusionStarted,
    "infusion_completed": InfusionCompleted,
    "infusion_stopped": InfusionStopped,
    "debrief_ready": DebriefReady,
    "emergency": Emergency,
    "nibp_due": NibpDue,
    "nibp_requested": NibpRequested,
    "nibp_result": NibpResult,
    "nibp_failed": NibpFailed,
    "vitals_recorded": VitalsRecorded,
    "alarm_raised": AlarmRaised,
    "alarm_latched": AlarmLatched,
    "alarm_reactivated": AlarmReactivated,
    "alarm_escalated": AlarmEscalated,
    "alarm_acknowledged": AlarmAcknowledged,
    "alarm_silenced": AlarmSilenced,
    "alarm_cleared": AlarmCleared,
    "call_placed": CallPlaced,
    "call_acknowledged": CallAcknowledged,
    "call_escalated": CallEscalated,
    "call_cleared": CallCleared,
    "checkin_due": CheckinDue,
    "vitals_due": VitalsDue,
    "checkin_recorded": CheckinRecorded,
    "music_started": MusicStarted,
    "track_started": TrackStarted,
    "track_ended": TrackEnded,
    "music_stopped": MusicStopped,
    "music_paused": MusicPaused,
    "music_resumed": MusicResumed,
    "music_skipped": MusicSkipped,
    "volume_changed": VolumeChanged,
    "preview_started": PreviewStarted,
    "lighting_changed": LightingChanged,
    "device_connected": DeviceConnected,
    "device_lost": DeviceLost,
    "link_restored": LinkRestored,
    "journal_recovered": JournalRecovered,
    "storage_fault": StorageFault,
    "storage_restored": StorageRestored,
    "command_rejected": CommandRejected,
    "plan_amended": PlanAmended,
    "note_recorded": NoteRecorded,
    "dose_recorded": DoseRecorded,
    "side_effects_recorded": SideEffectsRecorded,
    "adverse_event_recorded": AdverseEventRecorded,
    "debrief_due": DebriefDue,
    "loop_stalled": LoopStalled,
}
"""Every event type the room emits and the model of its ``data``."""


def check_event_data(type_: str, data: dict[str, Any]) -> None:
    """Raise ValueError naming the type and the field when ``data`` is not what ``type_``
    carries (or ``type_`` is not an event type)."""
    model = EVENT_DATA.get(type_)
    if model is None:
        raise ValueError(f"event type '{type_}' has no data model in controller.event_data")
    try:
        text = json.dumps(data, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"event '{type_}': data is not JSON ({exc})") from None
    try:
        # Strict, from the JSON text: as a subscriber reads it (timestamps are strings there),
        # and no quiet coercion ("5" is not 5).
        model.model_validate_json(text, strict=True)
    except ValidationError as exc:
        problems = "; ".join(
            f"field '{'.'.join(str(p) for p in e['loc']) or '(data)'}': {e['msg']}"
            for e in exc.errors()
        )
        raise ValueError(f"event '{type_}': {problems}") from None
