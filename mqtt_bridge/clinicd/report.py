"""The course report: a patient's sessions side by side, as one printable HTML page (times in
local time) and a CSV file (one row per session, times in UTC as stored)."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Sequence
from datetime import tzinfo
from html import escape
from typing import Any

from controller.models import parse_utc

Session = dict[str, Any]


def local(ts: str | None, tz: tzinfo | None) -> str:
    """A contract time shown in local time (``tz``, else the machine's)."""
    if not ts:
        return ""
    return parse_utc(ts).astimezone(tz).strftime("%a %Y-%m-%d %H:%M")


def _bp(r: dict[str, Any] | None) -> str:
    return f"{r['sys']}/{r['dia']}" if r else ""


def _playlist(s: Session) -> str:
    p = s.get("playlist")
    return ", ".join(p) if isinstance(p, list) else str(p or "")


def _dose(s: Session) -> str:
    d = s.get("dose")
    return f"{d['total_mg']} mg ({d['dose_mg_per_kg']} mg/kg × {d['weight_kg']} kg)" if d else ""


def _notes(s: Session) -> str:
    if not s["notes"]:
        return {"unsupported": "(room keeps no notes)"}.get(s.get("notes_status", ""), "")
    return "\n".join(f"{n['kind']}: {n['text']}" for n in s["notes"])


def _effects(s: Session) -> str:
    # An empty list is a record that none were seen: "none", never a blank.
    return "; ".join(", ".join(e.get("items", [])) or "none" for e in s["side_effects"])


def _adverse(s: Session) -> str:
    return "; ".join(
        f"{e.get('kind')} ({e.get('severity')}): {e.get('action')}" for e in s["adverse_events"]
    )


def _alarms(s: Session) -> str:
    return ", ".join(f"{a['code']} ({a['priority']})" for a in s["alarms"])


ROWS: list[tuple[str, Callable[[Session, tzinfo | None], str]]] = [
    ("Session", lambda s, tz: str(s["session_number"])),
    ("Room", lambda s, tz: s["room_id"]),
    ("Started", lambda s, tz: local(s["started_at"], tz)),
    ("Ended", lambda s, tz: local(s["ended_at"], tz)),
    ("End", lambda s, tz: s["end_reason"] or "in progress"),
    ("Music", lambda s, tz: s["music_mode"] or ""),
    ("Playlist", lambda s, tz: _playlist(s)),
    ("Guidance", lambda s, tz: s["guidance"] or ""),
    ("Tracks played", lambda s, tz: ", ".join(t["track"] for t in s.get("music_played", []))),
    ("Dose", lambda s, tz: _dose(s)),
    ("BP baseline", lambda s, tz: _bp(s["bp_baseline"])),
    ("BP peak", lambda s, tz: _bp(s["bp_peak"])),
    ("SpO2 min", lambda s, tz: "" if s["spo2_min"] is None else f"{s['spo2_min']} %"),
    ("Alarms", lambda s, tz: _alarms(s)),
    ("Calls", lambda s, tz: str(s["calls"])),
    # Blank would read as "none": say what the archive knows.
    ("Side effects", lambda s, tz: _effects(s) or "not recorded"),
    ("Adverse events", lambda s, tz: _adverse(s) or "none recorded"),
    ("Notes", lambda s, tz: _notes(s)),
]
"""The report's rows: a label and how to show it for one session."""

CSS = """
body { font: 13px/1.35 system-ui, sans-serif; margin: 1.5em; color: #111; }
h1 { font-size: 1.4em; margin: 0 0 .2em; } p.meta { color: #555; margin: 0 0 1em; }
table { border-collapse: collapse; width: 100%; table-layout: fixed; }
th, td { border: 1px solid #bbb; padding: .35em .5em; vertical-align: top;
         white-space: pre-wrap; overflow-wrap: anywhere; }
th[scope=row] { background: #f3f1ec; text-align: left; }
thead th:first-child { width: 9em; }  /* a fixed layout takes its widths from the first row */
thead th { background: #e6e1d6; }
ul.flags { padding-left: 1.2em; } li.flag { margin: .15em 0; }
.code { font-family: ui-monospace, monospace; background: #fff3c4; padding: 0 .3em; }
@media print { body { margin: 0; font-size: 10px; } @page { size: A4 landscape; margin: 12mm; }
               tr { page-break-inside: avoid; } }
"""


def course_html(course: dict[str, Any], tz: tzinfo | None = None, tz_name: str = "") -> str:
    """The course as one self-contained printable page."""
    sessions: Sequence[Session] = course["sessions"]
    head = "".join(f"<th scope=col>{escape(s['session_id'])}</th>" for s in sessions)
    body = "".join(
        f"<tr><th scope=row>{escape(label)}</th>"
        + "".join(f"<td>{escape(show(s, tz))}</td>" for s in sessions)
        + "</tr>\n"
        for label, show in ROWS
    )
    flags = "".join(
        f"<li class=flag><span class=code>{escape(f['code'])}</span> "
        f"{escape(f['session_id'])}: {escape(f['message'])}</li>"
        for f in course["flags"]
    )
    ref = escape(course["patient_ref"])
    return (
        f"<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"<title>Course {ref}</title><style>{CSS}</style></head><body>"
        f"<h1>Course of {ref}</h1>"
        f"<p class=meta>{len(sessions)} session(s); times in local time {escape(tz_name)}</p>"
        f"<table><thead><tr><th></th>{head}</tr></thead><tbody>\n{body}</tbody></table>"
        f"<h2>Flags</h2><ul class=flags>{flags or '<li>none</li>'}</ul></body></html>\n"
    )


CSV_COLUMNS = [
    "session_id",
    "session_number",
    "room_id",
    "started_at",
    "ended_at",
    "end_reason",
    "music_mode",
    "playlist",
    "guidance",
    "dose_total_mg",
    "bp_baseline",
    "bp_peak",
    "spo2_min",
    "alarms",
    "calls",
    "side_effects",
    "adverse_events",
    "notes",
    "flags",
]


def course_csv(course: dict[str, Any]) -> str:
    """One row per session; times as stored (UTC); flags joined by ``;``."""
    buf = io.StringIO()
    out = csv.writer(buf, lineterminator="\n")
    out.writerow(CSV_COLUMNS)
    for s in course["sessions"]:
        flags = [f["code"] for f in course["flags"] if f["session_id"] == s["session_id"]]
        out.writerow(
            [
                s["session_id"], s["session_number"], s["room_id"], s["started_at"],
                s["ended_at"] or "", s["end_reason"] or "", s["music_mode"] or "",
                _playlist(s), s["guidance"] or "", (s["dose"] or {}).get("total_mg", ""),
                _bp(s["bp_baseline"]), _bp(s["bp_peak"]),
                "" if s["spo2_min"] is None else s["spo2_min"], _alarms(s), s["calls"],
                _effects(s), _adverse(s), _notes(s), ";".join(flags),
            ]
        )  # fmt: skip
    return buf.getvalue()
