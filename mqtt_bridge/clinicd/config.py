"""``clinicd.toml``: the archive's configuration, validated as a whole like ``roomd.toml``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, StringConstraints, ValidationError

from controller.config import MqttSection, Section, describe_errors, read_toml
from controller.errors import ConfigError

DEFAULT_DB_NAME = "archive.sqlite"


class ArchiveMqttSection(MqttSection):
    """``[mqtt]`` as in ``roomd.toml``; the archive's broker session outlives a long outage."""

    # A day: the broker keeps the archive's subscriptions and queued events while it is away
    # (the gap fetch covers anything longer or anything the broker dropped).
    session_expiry_s: int = Field(default=86400, ge=0, le=7 * 86400)
    client_id: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,64}$")] = "clinicd"


class ArchiveSection(Section):
    """``[archive]``: where the archive keeps its SQLite database, and how it fetches."""

    db: str = ""  # "" → <data-dir>/archive.sqlite
    request_timeout_s: float = Field(default=10, gt=0, le=300)
    page_limit: int = Field(default=500, ge=1, le=1000)
    resync_s: float = Field(default=60, gt=0, le=3600)


class CourseSection(Section):
    """``[course]``: the seed's schedule (six infusions, twice weekly then weekly)."""

    sessions: int = Field(default=6, ge=1, le=50)
    min_gap_hours: float = Field(default=48, ge=0, le=24 * 60)
    max_gap_days: float = Field(default=10, gt=0, le=365)


HdNamespace = Annotated[str, StringConstraints(pattern=r"^[^|^~\\&\r\n]{0,20}$")]
"""An HL7 HD namespace id (MSH-4, PID-3.4): at most 20 characters (an IS value in v2.6, which
hl7apy's strict validation enforces), none of HL7's delimiters."""


class Hl7Section(Section):
    """``[hl7]``: the EHR's MLLP endpoint; absent → no HL7 is sent."""

    host: str
    port: int = Field(ge=1, le=65535)
    sending_facility: HdNamespace = ""
    assigning_authority: HdNamespace = ""
    timeout_s: float = Field(default=10, gt=0, le=300)
    retry_min_s: float = Field(default=5, gt=0, le=3600)
    retry_max_s: float = Field(default=600, gt=0, le=86400)


class ClinicdConfig(Section):
    """The whole ``clinicd.toml``."""

    mqtt: ArchiveMqttSection = Field(default_factory=ArchiveMqttSection)
    archive: ArchiveSection = Field(default_factory=ArchiveSection)
    course: CourseSection = Field(default_factory=CourseSection)
    hl7: Hl7Section | None = None

    def db_path(self, data_dir: str | Path) -> Path:
        """The SQLite file: ``[archive] db``, else ``<data_dir>/archive.sqlite``."""
        return Path(self.archive.db) if self.archive.db else Path(data_dir) / DEFAULT_DB_NAME


def parse_config(data: dict[str, Any], path: str = "<config>") -> ClinicdConfig:
    """Validate a parsed TOML document; raise ConfigError listing every bad key."""
    try:
        return ClinicdConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(path, describe_errors(ClinicdConfig, exc)) from None


def load_config(path: str | Path) -> ClinicdConfig:
    """Read and validate ``clinicd.toml``; raise ConfigError listing every bad key."""
    return parse_config(read_toml(path), str(path))
