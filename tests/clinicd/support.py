"""The real ``clinicd`` process for the archive's tests, and a client of its verbs."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from controller.models import Event, iso_utc
from tests.support.daemon import RoomProcess
from tests.support.probe import Probe

ARCHIVE_ROOT = "clinic/archive"


class ArchiveProcess(RoomProcess):
    """``python -m mqtt_bridge.clinicd`` with its own config and data directory (stopped,
    killed and read like a room's process)."""

    def __init__(self, workdir: Path, port: int, extra_toml: str = "") -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.workdir = workdir
        self.config = workdir / "clinicd.toml"
        self.config.write_text(
            f'[mqtt]\nhost = "127.0.0.1"\nport = {port}\nkeepalive_s = 5\n'
            f"[archive]\nrequest_timeout_s = 3\nresync_s = 5\n{extra_toml}"
        )
        self.data_dir = workdir / "data"
        self.db = self.data_dir / "archive.sqlite"
        self.log = workdir / "clinicd.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def argv(self) -> list[str]:
        """``python -m mqtt_bridge.clinicd`` on this config and data directory."""
        return [
            sys.executable, "-m", "mqtt_bridge.clinicd", "--config", str(self.config),
            "--data-dir", str(self.data_dir), "--log-level", "DEBUG",
        ]  # fmt: skip


class ArchiveClient(Probe):
    """A clinician's view of the archive: its status and its verbs."""

    def __init__(self, port: int) -> None:
        super().__init__(port, ARCHIVE_ROOT)

    def online(self) -> bool:
        """Whether the archive's retained status says online."""
        return self.retained.get(f"{ARCHIVE_ROOT}/status") == b"online"


T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def event(
    seq: int, type_: str, session_id: str | None = "s1", minutes: float = 0, **data: Any
) -> Event:
    """An event ``minutes`` after T0."""
    return Event(
        seq=seq, ts=T0 + timedelta(minutes=minutes), session_id=session_id, type=type_, data=data
    )


def session_events(
    session_id: str,
    number: int | str,
    *,
    first_seq: int = 1,
    days: float = 0,
    patient_ref: str = "P-1",
    extra: Sequence[tuple[str, dict[str, Any]]] = (),
) -> list[Event]:
    """A whole short session as a room journals it: plan, BP, infusion, alarm, call, end."""
    m = days * 24 * 60
    plan = {
        "session_id": session_id,
        "patient_ref": patient_ref,
        "session_number": number,
        "music_mode": "music",
        "playlist": ["a.ogg", "b.ogg"],
        "guidance": "none",
    }
    raised = iso_utc(T0 + timedelta(minutes=m + 20))
    alarm = {"id": "spo2_low-1", "code": "spo2_low", "priority": "medium", "value": 90}
    alarm |= {"raised_at": raised, "kind": "physiological"}
    items: list[tuple[str, dict[str, Any]]] = [
        ("session_started", {"plan": plan, "tracks": [], "by": "dr-a"}),
        ("phase_changed", {"from": "idle", "to": "check_in", "by": "dr-a"}),
        ("nibp_result", {"sys": 120, "dia": 80, "map": 93, "hr": 70, "source": "suntech"}),
        ("phase_changed", {"from": "pre_infusion", "to": "infusion", "by": "dr-a"}),
        ("infusion_started", {"target_s": 2400, "by": "dr-a"}),
        ("track_started", {"track": "a.ogg", "outputs": ["headphones"]}),
        ("nibp_result", {"sys": 150, "dia": 95, "map": 113, "hr": 82, "source": "suntech"}),
        ("alarm_raised", {"alarm": alarm}),
        ("call_placed", {}),
        ("call_cleared", {"by": "dr-a", "where": "room"}),
        *extra,
        ("track_ended", {"track": "a.ogg", "played_s": 540}),
        ("infusion_completed", {"elapsed_s": 2400}),
        ("phase_changed", {"from": "discharge", "to": "ended", "by": "dr-a"}),
        ("session_ended", {"reason": "discharged", "by": "dr-a"}),
    ]
    return [event(first_seq + i, t, session_id, m + 5 * i, **d) for i, (t, d) in enumerate(items)]
