"""The session record's directory: ``reports/<session_id>/`` and the files in it.

- ``session.json``: the summary (``controller.record.summary``);
- ``vitals.csv``: every oximeter sample, blood pressure and hand-entered value, one row each;
- ``events.jsonl``: the session's journal events, one JSON object a line;
- ``report.html``: one self-contained page (``controller.record.html``);
- ``oru_r01.hl7``: the vitals as an HL7 v2.6 ORU^R01 message (``controller.record.hl7``).

Built from the journal alone, so ``rebuild_from_journal`` gives the same files later (all but
the HL7 message's own time, MSH-7, which is when the message was made).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from controller.models import Event
from controller.record import hl7
from controller.record.html import render_html
from controller.record.summary import (
    CSV_COLUMNS,
    CSV_HEADER,
    summarize,
    summary_of,
    vitals_rows,
)

FILES = ("session.json", "vitals.csv", "events.jsonl", "report.html", "oru_r01.hl7")


class JournalSource(Protocol):
    """What a record is read from: the core's ``Journal`` or a ``JournalReader``."""

    def session_events(self, session_id: str) -> list[Event]:
        """Every event of one session, in order."""
        ...

    def vitals(self, session_id: str) -> list[tuple[str, str, str]]:
        """Every (ts, kind, payload JSON) kept for a session, in order."""
        ...

    def notes(self, session_id: str) -> list[dict[str, str]]:
        """Every clinician's note of a session (``note_id, kind, by, ts, text``), in order."""
        ...


def csv_text(rows: Sequence[dict[str, Any]]) -> str:
    """``vitals.csv``: a header with units and one row per reading; an empty cell is no
    value."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_HEADER)  # the columns with their units
    for row in rows:
        writer.writerow(["" if row.get(k) is None else row[k] for k in CSV_COLUMNS])
    return buf.getvalue()


def _write(path: Path, text: str) -> None:
    # Write beside and rename, so a reader never sees half a file (a crash mid-report).
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8", newline="")
    os.replace(tmp, path)


def build_report(
    events: Sequence[Event],
    vitals: Sequence[tuple[str, str, str]],
    out_dir: Path,
    *,
    room_id: str = "",
    sender: hl7.Sender | None = None,
    created_at: datetime | None = None,
    notes: Sequence[dict[str, str]] = (),
    timezone: str = "UTC",
) -> dict[str, Any]:
    """Write the session's record into ``out_dir``; return ``{path, summary}`` for
    ``report_ready`` (``path`` is the HTML report).

    ``sender`` (default: the room ``room_id``) and ``created_at`` (default: now) go into the
    HL7 message's header; ``notes`` are the clinicians' notes (clinical text, in the record
    only); ``timezone`` is the clinic's, for the times people read in the HTML report.
    """
    rec = summarize(events, vitals, notes)
    rows = vitals_rows(events, vitals)
    message = hl7.session_message(rec, rows, sender or hl7.Sender(room_id), created_at)
    out_dir.mkdir(parents=True, exist_ok=True)
    _write(out_dir / "session.json", json.dumps(rec, indent=2, ensure_ascii=False) + "\n")
    _write(out_dir / "vitals.csv", csv_text(rows))
    _write(out_dir / "events.jsonl", "".join(e.model_dump_json() + "\n" for e in events))
    _write(out_dir / "report.html", render_html(rec, rows, timezone))
    _write(out_dir / "oru_r01.hl7", message)
    return {"path": str(out_dir / "report.html"), "summary": summary_of(rec)}


PLAIN_ID = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9._-]*$")
"""A session id that is its own folder name (the usual ``2026-01-05-r3-am``)."""


def report_dir(data_dir: Path, session_id: str) -> Path:
    """Where a session's record lives: ``<data_dir>/reports/<session_id>/``, one folder per
    session id.

    A plain id is the folder's name. Any other (``rt/1``, ``../x``, ``rt:1``) gets a readable
    slug, ``~`` and a hash of the exact id: two ids never share a folder (``rt/1`` and
    ``rt:1`` once did, and the second patient's record overwrote the first's), ``~`` is in no
    plain id, and no id leaves ``reports/``.
    """
    if PLAIN_ID.fullmatch(session_id):
        return data_dir / "reports" / session_id
    slug = "".join(c if c.isalnum() or c in "-_." else "_" for c in session_id).lstrip(".")
    tag = hashlib.sha256(session_id.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    return data_dir / "reports" / f"{slug[:64]}~{tag}"


def rebuild_from_journal(
    journal: JournalSource,
    session_id: str,
    data_dir: Path,
    *,
    room_id: str = "",
    sender: hl7.Sender | None = None,
    created_at: datetime | None = None,
    timezone: str = "UTC",
) -> dict[str, Any]:
    """Build (again) a session's record from the journal (``roomd report <session_id>``).

    Raises LookupError when the journal has no such session.
    """
    events = journal.session_events(session_id)
    if not any(e.type == "session_started" for e in events):
        raise LookupError(f"no session '{session_id}' in the journal")
    return build_report(
        events,
        journal.vitals(session_id),
        report_dir(data_dir, session_id),
        room_id=room_id,
        sender=sender,
        created_at=created_at,
        notes=journal.notes(session_id),
        timezone=timezone,
    )
