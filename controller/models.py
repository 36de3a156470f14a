"""The room's payloads: every JSON object the contract puts on the wire, as pydantic models.

This is the one module that defines payloads. The core builds them; the MQTT bridge only
serialises them, and the AsyncAPI document is generated from them.
"""

from __future__ import annotations

import hashlib
import json
import unicodedata
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    StringConstraints,
    ValidationError,
    WithJsonSchema,
    field_validator,
)

from controller.errors import CommandError, InvalidPayload

MAX_PAYLOAD_BYTES = 64 * 1024


def iso_utc(ts: datetime) -> str:
    """Format a timestamp the contract's way: ISO-8601 UTC with milliseconds and ``Z``."""
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)
    ts = ts.astimezone(UTC)
    return ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"


def parse_utc(text: str) -> datetime:
    """Parse a contract timestamp back into an aware UTC datetime."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


UtcTime = Annotated[
    datetime,
    PlainSerializer(iso_utc, return_type=str),
    # The schema says what the wire carries in both directions: an RFC 3339 timestamp.
    WithJsonSchema({"type": "string", "format": "date-time"}),
]


def visible_text(text: str) -> str:
    """``text`` if it holds at least one visible character, else ValueError.

    Spaces, control and format characters (a zero-width space, a BOM) and lone punctuation
    do not make a reason: a gate passed "because ' '" records nothing a reviewer can read.
    """
    if not any(unicodedata.category(ch)[0] in "LN" for ch in text):
        raise ValueError(
            "must hold words: blank, invisible or punctuation-only text is not a reason"
        )
    return text


ReasonText = Annotated[
    str, StringConstraints(min_length=1, max_length=500), AfterValidator(visible_text)
]
"""A clinician's reason: required words, at most 500 characters."""
FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]
"""A number that is neither NaN nor infinite (a NaN limit would silently disable an alarm)."""

Phase = Literal[
    "idle",
    "check_in",
    "integration",
    "intentions",
    "pre_infusion",
    "infusion",
    "debrief",
    "preparation",
    "discharge",
    "ended",
]
Quality = Literal["ok", "sensor_off", "searching", "artifact", "no_sensor"]
DeviceStatus = Literal["ok", "lost", "absent"]
Priority = Literal["high", "medium", "low"]
ConfirmItem = Literal[
    "readiness",
    "consent",
    "iv_line",
    "psych_ready",
    "reminders_given",
    "mindfulness_done",
    "blindfold_offered",
]

ShortId = Annotated[str, StringConstraints(min_length=1, max_length=64)]
Guidance = Literal["none", "breathing", "body_scan", "clinician"]
"""Guidance before the music: none, a recorded track, or led by a clinician in the room."""


class Payload(BaseModel):
    """Base of every payload: frozen, unknown fields refused."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    def to_json(self) -> bytes:
        """The payload as compact UTF-8 JSON."""
        return self.model_dump_json().encode()


class VitalsSample(Payload):
    """One oximeter reading; ``None`` means no valid value, never a stale one."""

    ts: UtcTime
    spo2: int | None = None
    hr: int | None = None
    pi: float | None = None
    source: str
    quality: Quality = "ok"


class NibpReading(Payload):
    """One blood-pressure reading, from the NIBP module or entered by a clinician."""

    ts: UtcTime
    sys: int
    dia: int
    map: int
    hr: int | None = None
    source: str
    by: str | None = None


class ProtocolOverrides(Payload):
    """The ``[protocol]`` keys a session plan may override."""

    infusion_minutes: float | None = Field(default=None, gt=0, le=240)
    nibp_interval_minutes: float | None = Field(default=None, ge=10, le=15)
    checkin_interval_minutes: float | None = Field(default=None, gt=0, le=60)
    baseline_max_age_minutes: float | None = Field(default=None, gt=0, le=120)
    call_escalate_s: float | None = Field(default=None, gt=0, le=600)
    call_reminder_s: float | None = Field(default=None, gt=0, le=3600)


class AlarmLimit(Payload):
    """One physiological alarm limit: a clinic setting."""

    limit: FiniteFloat
    priority: Priority
    delay_s: float = Field(ge=0, le=300)


class AlarmOverrides(Payload):
    """The ``[alarms]`` keys a session plan may override."""

    spo2_low: AlarmLimit | None = None
    spo2_critical: AlarmLimit | None = None
    hr_high: AlarmLimit | None = None
    hr_low: AlarmLimit | None = None
    sys_high: AlarmLimit | None = None
    dia_high: AlarmLimit | None = None
    sys_low: AlarmLimit | None = None
    stale_s: float | None = Field(default=None, gt=0, le=300)
    escalate_after_s: float | None = Field(default=None, gt=0, le=3600)


class SessionPlan(Payload):
    """The clinic's plan for the next session in this room."""

    session_id: ShortId
    patient_ref: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    session_number: int | Literal["maintenance"]
    music_mode: Literal["music", "no_music"] = "music"
    playlist: list[Annotated[str, StringConstraints(min_length=1, max_length=512)]] | str = Field(
        default_factory=list
    )
    guidance: Guidance = "none"
    protocol: ProtocolOverrides = Field(default_factory=ProtocolOverrides)
    alarms: AlarmOverrides = Field(default_factory=AlarmOverrides)

    @field_validator("session_number", mode="before")
    @classmethod
    def _no_booleans(cls, v: object) -> object:
        # JSON true is not session 1: a plan with a wrong type must be rejected, not guessed.
        if isinstance(v, bool):
            raise ValueError("session_number must be 1..6 or 'maintenance', not a boolean")
        return v

    @field_validator("session_number")
    @classmethod
    def _session_number_range(cls, v: int | str) -> int | str:
        if isinstance(v, int) and not 1 <= v <= 6:
            raise ValueError("session_number must be 1..6 or 'maintenance'")
        return v

    @field_validator("patient_ref")
    @classmethod
    def _pseudonym_only(cls, v: str) -> str:
        # The room must never carry a name: a pseudonym is one token with no spaces.
        if any(ch.isspace() for ch in v):
            raise ValueError("patient_ref must be an opaque pseudonym (no spaces), not a name")
        return v


class Alarm(Payload):
    """One alarm as the contract lists it on the ``alarms`` topic."""

    id: str
    code: str
    kind: Literal["physiological", "technical"]
    priority: Priority
    state: Literal["active", "latched", "acknowledged"]
    raised_at: UtcTime
    value: float | str | None = None
    limit: float | None = None
    message: str
    silenced_until: UtcTime | None = None
    silenced_total_s: float = 0.0
    value_at_ack: float | None = None


class AlarmList(Payload):
    """The retained ``alarms`` payload: every active, latched or acknowledged alarm."""

    alarms: list[Alarm]


class Event(Payload):
    """One journal event; ``seq`` is per room, strictly increasing, never reused."""

    seq: int
    ts: UtcTime
    session_id: str | None
    type: str
    data: dict[str, Any] = Field(default_factory=dict)


class InfusionState(Payload):
    """The infusion timer as the room sees it."""

    running: bool = False
    started_at: UtcTime | None = None
    elapsed_s: float = 0.0
    target_s: float = 0.0
    completed: bool = False


class MusicState(Payload):
    """What the room's music is doing."""

    mode: Literal["music", "no_music"] | None = None
    playing: bool = False
    track: str | None = None
    headphones_volume: float = 0.0
    speakers_volume: float = 0.0


class LightingState(Payload):
    """The room's current lighting scene and level (0..1)."""

    scene: str = "off"
    level: float = 0.0


class CallState(Payload):
    """The patient call's state."""

    state: Literal["idle", "placed", "acknowledged", "escalated"] = "idle"


class Devices(Payload):
    """Each device's health."""

    oximeter: DeviceStatus = "absent"
    nibp: DeviceStatus = "absent"
    call_button: DeviceStatus = "absent"
    lighting: DeviceStatus = "absent"
    audio: DeviceStatus = "absent"


class Gates(Payload):
    """Whether each gate item is currently met."""

    readiness: bool = False
    consent: bool = False
    baseline_vitals: bool = False
    discharge_vitals: bool = False


class LinkState(Payload):
    """The clinic link as the room sees it."""

    online: bool = False
    queued: int = 0


class LimitInForce(Payload):
    """One alarm setting in force this session, and where it came from."""

    limit: float | None = None
    priority: Priority | None = None
    delay_s: float | None = None
    value: float | None = None
    source: Literal["config", "plan"] = "config"


class ProtocolInfo(Payload):
    """What the session's protocol expects, for the clinicians' forms (``[protocol]`` with
    the plan's overrides): documentation is recorded against it, it controls nothing."""

    dose_mg_per_kg: float = 0.5
    side_effects: list[str] = Field(default_factory=list)
    """The clinic's list: ``side_effects`` accepts these items only."""
    debrief_minutes: tuple[float, float] = (20, 30)
    playlist_minutes: tuple[float, float] = (50, 60)


class RoomState(Payload):
    """The retained ``state`` payload: the whole room at a glance."""

    room_id: str
    session_id: str | None = None
    patient_ref: str | None = None
    session_number: int | Literal["maintenance"] | None = None
    phase: Phase = "idle"
    phase_started_at: UtcTime | None = None
    phase_elapsed_s: float = 0.0
    infusion: InfusionState = Field(default_factory=InfusionState)
    music: MusicState = Field(default_factory=MusicState)
    lighting: LightingState = Field(default_factory=LightingState)
    call: CallState = Field(default_factory=CallState)
    alarms: list[str] = Field(default_factory=list)
    devices: Devices = Field(default_factory=Devices)
    gates: Gates = Field(default_factory=Gates)
    next_nibp_due_at: UtcTime | None = None
    alarm_limits: dict[str, LimitInForce] = Field(default_factory=dict)
    protocol: ProtocolInfo = Field(default_factory=ProtocolInfo)
    link: LinkState = Field(default_factory=LinkState)
    updated_at: UtcTime


ErrorCode = Literal[
    "invalid_payload",
    "unknown_verb",
    "invalid_state",
    "gate_not_met",
    "device_unavailable",
    "duplicate",
    "internal",
]


class ErrorBody(Payload):
    """The error of a failed command."""

    code: ErrorCode
    message: str
    details: dict[str, Any] | None = None


class Reply(Payload):
    """The room's answer to one command."""

    request_id: str
    verb: str
    ok: bool
    result: dict[str, Any] | None = None
    error: ErrorBody | None = None
    by_verified: Literal[True] | None = None
    """True when the command came on ``cmd/<verb>/by/<user>``: its ``by`` is that broker
    user (absent: ``by`` is as the payload declared it)."""
    by_declared: str | None = None
    """The payload's ``by`` when it differed from the broker user (who was recorded)."""

    def to_json(self) -> bytes:
        """The reply without the fields that do not apply (result or error, attribution)."""
        return self.model_dump_json(exclude_none=True).encode()


class PrivateReply(Reply):
    """A reply holding clinical text: sent only to its requester's response topic under
    ``replies/``, never on the shared ``replies`` topic."""


# --- Commands: topic cmd/<verb>, payload {"request_id", "by", ...args} -----------------------


class Command(Payload):
    """Fields every command carries."""

    request_id: ShortId
    by: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    sent_at: UtcTime | None = None

    @field_validator("sent_at")
    @classmethod
    def _zoned(cls, v: datetime | None) -> datetime | None:
        # A time without a zone is a guess at the sender's clock: say so, never compare it.
        if v is not None and v.utcoffset() is None:
            raise ValueError("must carry a time zone (Z or +hh:mm)")
        return v


class Override(Payload):
    """A clinician's decision to pass a gate that is not met."""

    reason: ReasonText


class StartSession(Command):
    """Begin a session, from the retained plan or one given inline."""

    plan: SessionPlan | None = None


class Advance(Command):
    """Move to the next phase, checking its gate (``reason``: why a playing playlist is cut)."""

    override: Override | None = None
    reason: ReasonText | None = None


class Confirm(Command):
    """A clinician confirms one gate item."""

    item: ConfirmItem


class StartInfusion(Command):
    """Start the infusion timer (the room never drives the pump)."""

    override: Override | None = None


class Discharge(Command):
    """The patient leaves: the discharge gate, which an override may pass (never an
    unacknowledged high alarm)."""

    override: Override | None = None


class Reason(Command):
    """A command that needs a reason."""

    reason: ReasonText


class EndSession(Command):
    """End the session from any phase, saying why."""

    reason: ReasonText


class Music(Command):
    """Control the room's music."""

    action: Literal["preview", "play", "pause", "resume", "stop", "skip", "volume"]
    track: str | None = None
    offset_s: float | None = Field(default=None, ge=0)
    duration_s: float | None = Field(default=None, gt=0, le=300)
    output: Literal["headphones", "speakers", "both"] = "both"
    level: float | None = Field(default=None, ge=0, le=1)


class Lights(Command):
    """A clinician's lighting override: a scene or a level."""

    scene: str | None = None
    level: float | None = Field(default=None, ge=0, le=1)
    fade_s: float | None = Field(default=None, ge=0, le=600)


class AlarmAck(Command):
    """Acknowledge one alarm."""

    alarm_id: str


class AlarmSilence(Command):
    """Silence the audible alarms for at most 120 s."""

    seconds: float = Field(gt=0, le=120)


class RecordVitals(Command):
    """Vitals measured by hand or on a standalone monitor."""

    sys: int | None = Field(default=None, ge=30, le=300)
    dia: int | None = Field(default=None, ge=10, le=250)
    hr: int | None = Field(default=None, ge=10, le=300)
    spo2: int | None = Field(default=None, ge=0, le=100)


class Checkin(Command):
    """A clinician checked on the patient (no-music mode)."""

    note: Annotated[str, StringConstraints(max_length=500)] | None = None


class EventsQuery(Command):
    """Fetch journal events from ``since_seq``."""

    since_seq: int = Field(default=1, ge=0, le=2**63 - 1)  # the journal's seq is SQLite's
    limit: int = Field(default=1000, ge=1, le=1000)


NOTE_MAX_CHARS = 4000
"""The longest note the room keeps: a longer one is refused, never cut."""
NoteKind = Literal["integration", "intentions", "debrief", "preparation", "observation", "checkin"]
NoteText = Annotated[
    str, StringConstraints(min_length=1, max_length=NOTE_MAX_CHARS), AfterValidator(visible_text)
]
"""A clinician's free text: clinical content, at most 4,000 characters (never cut)."""
Label = Annotated[str, StringConstraints(min_length=1, max_length=64), AfterValidator(visible_text)]
"""A short visible label (a side effect, an adverse event's kind)."""


class LibraryQuery(Command):
    """A page of the room's music library; ``rescan`` reads ``music_dir`` again first."""

    offset: int = Field(default=0, ge=0)
    limit: int = Field(default=200, ge=1, le=500)
    rescan: bool = False


class Choose(Command):
    """The patient's choice for the session's music (before the infusion)."""

    music_mode: Literal["music", "no_music"] | None = None
    playlist: (
        list[Annotated[str, StringConstraints(min_length=1, max_length=512)]]
        | Annotated[str, StringConstraints(min_length=1, max_length=512)]
        | None
    ) = Field(default=None)
    guidance: Guidance | None = None


class Note(Command):
    """A clinician's note: clinical content, kept in the journal, never published."""

    kind: NoteKind
    text: NoteText


class NotesQuery(Command):
    """The notes of one session (default: the current or the last one)."""

    session_id: ShortId | None = None


class RecordDose(Command):
    """The dose given, as the clinic's note records it (the room never doses)."""

    weight_kg: float = Field(gt=0, le=400, allow_inf_nan=False)
    dose_mg_per_kg: float = Field(gt=0, le=10, allow_inf_nan=False)
    total_mg: float = Field(gt=0, le=2000, allow_inf_nan=False)


class SideEffects(Command):
    """Side effects seen at the debrief, from the clinic's list."""

    items: list[Label] = Field(max_length=50)
    note: NoteText | None = None


class AdverseEvent(Command):
    """An adverse event and what was done about it."""

    kind: Label
    severity: Literal["mild", "moderate", "severe"]
    action: ReasonText
    text: NoteText | None = None


COMMANDS: dict[str, type[Command]] = {
    "start_session": StartSession,
    "advance": Advance,
    "confirm": Confirm,
    "start_infusion": StartInfusion,
    "stop_infusion": Reason,
    "music": Music,
    "lights": Lights,
    "call_ack": Command,
    "call_clear": Command,
    "alarm_ack": AlarmAck,
    "alarm_silence": AlarmSilence,
    "nibp_now": Command,
    "record_vitals": RecordVitals,
    "checkin": Checkin,
    "emergency": Reason,
    "discharge": Discharge,
    "end_session": EndSession,
    "events": EventsQuery,
    "status": Command,
    "library": LibraryQuery,
    "choose": Choose,
    "note": Note,
    "notes": NotesQuery,
    "record_dose": RecordDose,
    "side_effects": SideEffects,
    "adverse_event": AdverseEvent,
}
"""Every verb of the contract and the payload it takes."""


# --- reading what arrives on the wire -----------------------------------------------------


MAX_INT_DIGITS = 32
"""An integer literal longer than this is no number any field takes."""


class HugeNumber:
    """An integer literal of more than ``MAX_INT_DIGITS`` digits, kept unconverted: no field
    accepts it, so validation names the field (Python's int() refuses 4,300+ digits with an
    error that would otherwise be the room's ``internal``)."""

    def __init__(self, text: str) -> None:
        self.digits = len(text.lstrip("-"))

    def __repr__(self) -> str:
        return f"<a number of {self.digits} digits>"


def _parse_int(text: str) -> int | HugeNumber:
    return int(text) if len(text) <= MAX_INT_DIGITS else HugeNumber(text)


def parse_json_object(payload: bytes) -> dict[str, Any]:
    """A payload as a JSON object within the size limit, or InvalidPayload saying why."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise InvalidPayload(f"payload is {len(payload)} bytes; the limit is {MAX_PAYLOAD_BYTES}")
    try:
        obj = json.loads(payload.decode("utf-8"), parse_int=_parse_int)
        # JSON may escape lone surrogates ("\ud800") that no UTF-8 file or topic can carry:
        # refused here, they would otherwise poison the journal and the outbox.
        json.dumps(obj, ensure_ascii=False, default=repr).encode("utf-8")
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidPayload(f"payload is not UTF-8 JSON ({exc})") from None
    except UnicodeEncodeError:
        raise InvalidPayload("payload has an invalid Unicode escape (a lone surrogate)") from None
    except RecursionError:
        raise InvalidPayload("payload is nested too deeply") from None
    if not isinstance(obj, dict):
        raise InvalidPayload(f"payload must be a JSON object, not {type(obj).__name__}")
    return obj


def validate_command(model: type[Command], obj: dict[str, Any]) -> Command:
    """``obj`` as the verb's command model, or InvalidPayload naming the first bad field."""
    try:
        return model.model_validate(obj)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "(payload)"
        raise InvalidPayload(
            f"field '{field}': {first['msg']}",
            {"fields": {".".join(str(p) for p in e["loc"]): e["msg"] for e in exc.errors()}},
        ) from None


def reasons_of(exc: Exception) -> list[str]:
    """Why a plan was refused, one line per problem."""
    if isinstance(exc, ValidationError):
        return [f"{'.'.join(str(p) for p in e['loc']) or 'plan'}: {e['msg']}" for e in exc.errors()]
    if isinstance(exc, CommandError):
        return [exc.message]
    return [str(exc)]


def digest(payload: bytes) -> str:
    """A payload's SHA-256 (to recognise the same retained plan again)."""
    return hashlib.sha256(payload).hexdigest()
