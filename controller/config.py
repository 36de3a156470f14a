"""``roomd.toml``: the room's configuration, validated as a whole.

Every key has a default except ``room.id``. A bad file is reported key by key, all at once,
with "did you mean" for typos (Mopidy's habit), so a technician fixes it in one pass.

A device section's ``driver`` and the driver's own keys are checked against what the
adapters registered (``controller.drivers``): the daemon loads them before reading a config.
"""

from __future__ import annotations

import difflib
import ssl
import tomllib
import typing
import zoneinfo
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    StrictFloat,
    StrictInt,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from controller import drivers
from controller.drivers import DriverSettings, UnknownDriver
from controller.errors import ConfigError
from controller.models import AlarmLimit

RoomId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9-]{1,32}$")]


class Section(BaseModel):
    """A config section: frozen, unknown keys refused, types strict (TOML has real types:
    ``port = "18883"`` or ``session_expiry_s = true`` is a mistake to report, not guess)."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


class RoomSection(Section):
    """``[room]``: who this room is."""

    id: RoomId
    site: str = ""
    # The Pi has no battery clock: sessions wait for NTP unless a technician overrides this.
    allow_unsynced_clock: bool = False
    # Continuous SpO2 from an oximeter, or hand entries prompted every few minutes: a room
    # without an oximeter must say so, never run an infusion with no SpO2 and no alarm.
    monitoring: Literal["continuous", "manual"] = "continuous"
    # The clinic's IANA time zone: the report people read shows local times (the data files
    # keep UTC).
    timezone: str = "UTC"

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, v: str) -> str:
        try:
            zoneinfo.ZoneInfo(v)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError("not an IANA time zone name such as 'America/Montreal'") from None
        return v


class MqttSection(Section):
    """``[mqtt]``: the clinic broker."""

    host: Annotated[str, StringConstraints(pattern=r"^\S+$")] = "127.0.0.1"
    port: int = Field(default=1883, ge=1, le=65535)
    username: str = ""
    password_file: str = ""
    tls_ca: str = ""
    topic_prefix: Annotated[
        str, StringConstraints(pattern=r"^[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*$")
    ] = "clinic"
    keepalive_s: int = Field(default=15, ge=5, le=300)
    session_expiry_s: int = Field(default=300, ge=0, le=86400)
    command_max_age_s: float = Field(default=30, gt=0, le=3600)

    @field_validator("tls_ca")
    @classmethod
    def _ca_readable(cls, v: str) -> str:
        # Found here, a missing or broken CA file is one line naming the key, not a
        # traceback from the TLS library when the link starts.
        if v:
            try:
                ssl.create_default_context(cafile=v)
            except FileNotFoundError:
                raise ValueError(f"no such file: {v}") from None
            except ssl.SSLError:  # an OSError too: first
                raise ValueError(f"not a PEM CA certificate: {v}") from None
            except OSError as exc:
                raise ValueError(f"cannot be read: {v} ({exc.strerror})") from None
        return v


class CallButtonSection(Section):
    """``[hardware.call_button]``: BCM pin numbers and timings."""

    pin: int = Field(default=17, ge=0, le=27)
    lamp_pin: int = Field(default=27, ge=0, le=27)
    bounce_ms: float = Field(default=30, ge=0, le=500)
    clear_hold_s: float = Field(default=2.0, ge=0.5, le=10)


class BuzzerSection(Section):
    """``[hardware.buzzer]``: the local annunciator."""

    pin: int = Field(default=22, ge=0, le=27)


class Scene(Section):
    """A lighting scene: a level 0..1, a colour, and how long to fade into it."""

    level: float = Field(ge=0, le=1)
    # A TOML array is a list: the tuple itself is taken from one, its numbers stay strict.
    colour: Annotated[tuple[StrictInt, StrictInt, StrictInt], Field(strict=False)] = (
        255,
        180,
        110,
    )
    fade_s: float = Field(default=5.0, ge=0, le=1800)


def _default_scenes() -> dict[str, Scene]:
    warm = (255, 170, 100)
    return {
        "idle": Scene(level=0.3, colour=warm, fade_s=5),
        "check_in": Scene(level=0.5, colour=warm, fade_s=5),
        "integration": Scene(level=0.45, colour=warm, fade_s=10),
        "intentions": Scene(level=0.4, colour=warm, fade_s=10),
        "pre_infusion": Scene(level=0.3, colour=warm, fade_s=20),
        "infusion": Scene(level=0.05, colour=(255, 140, 60), fade_s=60),
        "debrief": Scene(level=0.4, colour=warm, fade_s=300),
        "preparation": Scene(level=0.5, colour=warm, fade_s=30),
        "discharge": Scene(level=0.8, colour=(255, 220, 180), fade_s=30),
        "ended": Scene(level=0.5, colour=warm, fade_s=10),
        "emergency": Scene(level=1.0, colour=(255, 255, 255), fade_s=0),
    }


class DriverSection(Section):
    """A device section: its ``driver``, the keys all drivers of its kind share, and the
    driver's own keys, checked by the settings model the driver registered.

    ``settings`` holds the own keys as given, or ``None`` when the section names neither a
    driver nor an own key: then nothing is looked up, so a config that leaves the section
    alone reads without the adapters; ``driver_settings()`` gives the driver's defaults.
    """

    kind: ClassVar[str]
    """The section's name under ``[hardware]``, and the registry's kind."""

    driver: str
    settings: DriverSettings | None = None

    @model_validator(mode="wrap")
    @classmethod
    def _driver_and_own_keys(cls, data: Any, handler: ModelWrapValidatorHandler[Self]) -> Self:
        if not isinstance(data, dict):
            return handler(data)
        shared_keys = set(cls.model_fields) - {"settings"}
        shared = {k: v for k, v in data.items() if k in shared_keys}
        own = {k: v for k, v in data.items() if k not in shared_keys}
        driver = data.get("driver", cls.model_fields["driver"].default)
        settings: DriverSettings | None = None
        errors: list[Any] = []
        if (own or "driver" in data) and isinstance(driver, str):
            settings, errors = cls._own_settings(driver, own)
        try:
            section = handler({**shared, "settings": settings})
        except ValidationError as exc:
            errors = [*exc.errors(), *errors]
        if errors:
            # Every bad key at once: the section's and the driver's together.
            raise ValidationError.from_exception_data(cls.__name__, [_rewrap(e) for e in errors])
        return section

    @classmethod
    def _own_settings(
        cls, driver: str, own: dict[str, Any]
    ) -> tuple[DriverSettings | None, list[Any]]:
        try:
            model = drivers.settings_model(cls.kind, driver)
        except UnknownDriver as exc:
            return None, [_error("unknown_driver", str(exc), ("driver",), driver)]
        try:
            return model.model_validate(own), []
        except ValidationError as exc:
            errors: list[Any] = exc.errors()
        keys = [k for k in cls.model_fields if k != "settings"] + list(model.model_fields)
        for i, e in enumerate(errors):
            if e["type"] == "extra_forbidden":
                why = _unknown_key(str(e["loc"][-1]), keys, driver, model)
                errors[i] = _error("unknown_key", why, e["loc"], e["input"])
        return None, errors

    def driver_settings(self) -> DriverSettings:
        """The driver's own settings: as the file gave them, else the driver's defaults."""
        if self.settings is not None:
            return self.settings
        return drivers.settings_model(self.kind, self.driver)()


def _error(kind: str, message: str, loc: tuple[int | str, ...], value: Any) -> dict[str, Any]:
    return {"type": PydanticCustomError(kind, message), "loc": loc, "input": value}


def _rewrap(error: Any) -> Any:
    # Errors gathered from two validations are raised as one; the message is kept as it was.
    if isinstance(error["type"], PydanticCustomError):
        return error
    return _error(error["type"], error["msg"], error["loc"], error.get("input"))


def _unknown_key(key: str, keys: list[str], driver: str, model: type[BaseModel]) -> str:
    close = difflib.get_close_matches(key, keys, n=1)
    if close:
        return f"unknown key (did you mean '{close[0]}'?)"
    own = ", ".join(model.model_fields)
    keys_of = f"its own keys: {own}" if own else "it has no keys of its own"
    return f"unknown key for the {driver} driver ({keys_of})"


class LightingSection(DriverSection):
    """``[hardware.lighting]``: the light driver and the scenes per phase."""

    kind: ClassVar[str] = "lighting"

    driver: str = "pwm"
    scenes: dict[str, Scene] = Field(default_factory=_default_scenes)

    @field_validator("scenes")
    @classmethod
    def _known_scenes_over_defaults(cls, v: dict[str, Scene]) -> dict[str, Scene]:
        # A clinic that retunes one scene keeps the defaults for the others.
        unknown = sorted(set(v) - set(_default_scenes()))
        if unknown:
            raise ValueError(f"unknown scene(s) {unknown}; scenes are {sorted(_default_scenes())}")
        return {**_default_scenes(), **v}


class SerialDeviceSection(DriverSection):
    """A serial device: its driver, port (empty → absent, or simulated) and speed."""

    port: str = ""
    baud: int = Field(default=9600, ge=1200, le=115200)


class OximeterSection(SerialDeviceSection):
    """``[hardware.oximeter]``."""

    kind: ClassVar[str] = "oximeter"

    driver: str = "masimo_ascii"


class NibpSection(SerialDeviceSection):
    """``[hardware.nibp]``."""

    kind: ClassVar[str] = "nibp"

    driver: str = "suntech"


class HardwareSection(Section):
    """``[hardware]``."""

    call_button: CallButtonSection = Field(default_factory=CallButtonSection)
    buzzer: BuzzerSection = Field(default_factory=BuzzerSection)
    lighting: LightingSection = Field(default_factory=LightingSection)
    oximeter: OximeterSection = Field(default_factory=OximeterSection)
    nibp: NibpSection = Field(default_factory=NibpSection)


Guidance = Literal["breathing", "body_scan"]


def _default_guidance() -> dict[Guidance, str]:
    return {"breathing": "guidance/breathing.ogg", "body_scan": "guidance/body_scan.ogg"}


class AudioSection(Section):
    """``[audio]``: music library, outputs, fades."""

    music_dir: str = "/var/lib/roomd/music"
    headphones_device: str = ""
    speakers_device: str = ""
    vlc_args: list[str] = Field(default_factory=list)
    fade_in_s: float = Field(default=10, ge=0, le=120)
    fade_out_s: float = Field(default=30, ge=0, le=300)
    preview_s: float = Field(default=30, gt=0, le=300)
    duck_db: float = Field(default=12, ge=0, le=60)
    cue_file: str = ""
    guidance: dict[Guidance, str] = Field(default_factory=_default_guidance)
    headphones_volume: float = Field(default=0.6, ge=0, le=1)
    speakers_volume: float = Field(default=0.4, ge=0, le=1)


def _ordered(pair: tuple[float, float]) -> tuple[float, float]:
    if pair[0] > pair[1]:
        raise ValueError("the first number (the least) must not exceed the second (the most)")
    return pair


Minutes = Annotated[StrictFloat, Field(gt=0, le=240)]
# A TOML array is a list: the tuple itself is taken from one, its numbers stay strict.
MinutesRange = Annotated[tuple[Minutes, Minutes], Field(strict=False), AfterValidator(_ordered)]
"""``[least, most]`` minutes."""
SideEffect = Annotated[str, StringConstraints(min_length=1, max_length=64)]
DEFAULT_SIDE_EFFECTS = (
    "nausea",
    "vomiting",
    "dizziness",
    "dissociation",
    "headache",
    "blurred vision",
    "anxiety",
    "elevated blood pressure",
    "drowsiness",
    "confusion",
    "numbness",
    "tachycardia",
)
"""Side effects commonly recorded after a ketamine infusion (a clinic replaces the list)."""


class ProtocolSection(Section):
    """``[protocol]``: the session's timings (a plan may override them)."""

    infusion_minutes: float = Field(default=40, gt=0, le=240)
    nibp_interval_minutes: float = Field(default=10, ge=10, le=15)
    checkin_interval_minutes: float = Field(default=5, gt=0, le=60)
    baseline_max_age_minutes: float = Field(default=15, gt=0, le=120)
    call_escalate_s: float = Field(default=30, gt=0, le=600)
    call_reminder_s: float = Field(default=180, gt=0, le=3600)
    manual_interval_minutes: float = Field(default=5, gt=0, le=15)
    # What the clinic's protocol expects; recorded against, never controlling anything.
    playlist_minutes: MinutesRange = (50, 60)
    debrief_minutes: MinutesRange = (20, 30)
    dose_mg_per_kg: float = Field(default=0.5, gt=0, le=5)
    # At most 50: the list rides on every retained state, which must fit the broker's limit.
    side_effects: list[SideEffect] = Field(
        default_factory=lambda: list(DEFAULT_SIDE_EFFECTS), min_length=1, max_length=50
    )


class ReactivateStep(Section):
    """``[alarms.reactivate_step]``: how much worse than at acknowledgement sounds again."""

    spo2_critical: float = Field(default=2, gt=0, le=20)
    spo2_low: float = Field(default=2, gt=0, le=20)
    hr_high: float = Field(default=10, gt=0, le=60)
    hr_low: float = Field(default=5, gt=0, le=60)
    sys_high: float = Field(default=10, gt=0, le=60)
    dia_high: float = Field(default=10, gt=0, le=60)
    sys_low: float = Field(default=10, gt=0, le=60)


class AlarmsSection(Section):
    """``[alarms]``: alarm limits. Clinic settings; the defaults are conservative."""

    spo2_low: AlarmLimit = AlarmLimit(limit=92, priority="medium", delay_s=10)
    spo2_critical: AlarmLimit = AlarmLimit(limit=88, priority="high", delay_s=5)
    hr_high: AlarmLimit = AlarmLimit(limit=120, priority="medium", delay_s=10)
    hr_low: AlarmLimit = AlarmLimit(limit=45, priority="medium", delay_s=10)
    sys_high: AlarmLimit = AlarmLimit(limit=180, priority="high", delay_s=0)
    dia_high: AlarmLimit = AlarmLimit(limit=110, priority="high", delay_s=0)
    sys_low: AlarmLimit = AlarmLimit(limit=90, priority="medium", delay_s=0)
    stale_s: float = Field(default=10, gt=0, le=300)
    escalate_after_s: float = Field(default=60, gt=0, le=3600)
    reactivate_step: ReactivateStep = Field(default_factory=ReactivateStep)
    silence_max_total_s: float = Field(default=240, ge=0, le=1800)


class DischargeSection(Section):
    """``[discharge]``: the vitals a patient leaves with. Unset: the alarm limits in force."""

    spo2_low: float | None = Field(default=None, ge=50, le=100)
    hr_low: float | None = Field(default=None, ge=20, le=200)
    hr_high: float | None = Field(default=None, ge=20, le=250)
    sys_high: float | None = Field(default=None, ge=60, le=260)
    dia_high: float | None = Field(default=None, ge=30, le=200)
    sys_low: float | None = Field(default=None, ge=50, le=200)
    manual_max_age_s: float = Field(default=300, gt=0, le=1800)


class JournalSection(Section):
    """``[journal]``: how long vitals are kept and when free space is too low."""

    # Vitals of ended sessions older than this are pruned (events, the record, never are).
    retention_days: int = Field(default=30, ge=1, le=3650)
    # Below this much free space: a low-priority technical alarm (a warning).
    warn_free_mb: float = Field(default=200, gt=0)
    # Below this much: a medium technical alarm, before the disk is full.
    alarm_free_mb: float = Field(default=50, gt=0)

    @field_validator("alarm_free_mb")
    @classmethod
    def _below_warning(cls, value: float, info: Any) -> float:
        warn = info.data.get("warn_free_mb")
        if warn is not None and value >= warn:
            raise ValueError("must be below warn_free_mb")
        return value


class Config(Section):
    """The whole ``roomd.toml``."""

    room: RoomSection
    mqtt: MqttSection = Field(default_factory=MqttSection)
    hardware: HardwareSection = Field(default_factory=HardwareSection)
    audio: AudioSection = Field(default_factory=AudioSection)
    protocol: ProtocolSection = Field(default_factory=ProtocolSection)
    alarms: AlarmsSection = Field(default_factory=AlarmsSection)
    discharge: DischargeSection = Field(default_factory=DischargeSection)
    journal: JournalSection = Field(default_factory=JournalSection)


def _model_at(model: type[BaseModel], loc: tuple[int | str, ...]) -> type[BaseModel] | None:
    """The section model that holds the key at ``loc`` (for "did you mean")."""
    current: type[BaseModel] | None = model
    parts = list(loc)
    while parts:
        part = parts.pop(0)
        if current is None or not isinstance(part, str) or part not in current.model_fields:
            return current
        annotation = current.model_fields[part].annotation
        if typing.get_origin(annotation) is dict:  # e.g. scenes: the next part is a name
            annotation = typing.get_args(annotation)[1]
            if parts:
                parts.pop(0)
        current = (
            annotation
            if isinstance(annotation, type) and issubclass(annotation, BaseModel)
            else None
        )
    return current


def _describe(model: type[BaseModel], error: Any) -> str:
    loc: tuple[int | str, ...] = tuple(error["loc"])
    key = ".".join(str(p) for p in loc) or "(top level)"
    if error["type"] == "extra_forbidden":
        section = _model_at(model, loc[:-1])
        hint = ""
        if section is not None:
            close = difflib.get_close_matches(str(loc[-1]), list(section.model_fields), n=1)
            if close:
                hint = f" (did you mean '{close[0]}'?)"
        return f"{key}: unknown key{hint}"
    if error["type"] == "unknown_key":
        return f"{key}: {error['msg']}"
    if error["type"] == "missing":
        return f"{key}: required key is missing"
    return f"{key}: {error['msg']} (got {error.get('input')!r})"


def describe_errors(model: type[BaseModel], exc: ValidationError) -> list[str]:
    """One line per bad key of a ``model`` document: the dotted key and what is wrong with it
    (an unknown key names the closest known one)."""
    return [_describe(model, e) for e in exc.errors()]


def parse_config(data: dict[str, Any], path: str = "<config>") -> Config:
    """Validate an already-parsed TOML document; raise ConfigError listing every bad key."""
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(path, describe_errors(Config, exc)) from None


UNREADABLE: dict[type[OSError], str] = {
    FileNotFoundError: "file not found",
    PermissionError: "permission denied",
    IsADirectoryError: "is a directory, not a file",
}


def read_toml(path: str | Path) -> dict[str, Any]:
    """A TOML file's document; ConfigError naming the file and why it cannot be read."""
    name = str(path)
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except OSError as exc:
        problem = UNREADABLE.get(type(exc), f"cannot be read: {exc.strerror}")
        raise ConfigError(name, [problem]) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(name, [f"not UTF-8 text (byte {exc.start})"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(name, [f"not valid TOML: {exc}"]) from None


def load_config(path: str | Path) -> Config:
    """Read and validate ``roomd.toml``; raise ConfigError listing every bad key."""
    return parse_config(read_toml(path), str(path))
