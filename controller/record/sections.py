"""The report's tables of what clinicians documented: the patient's choice, notes, dose, side
effects, adverse events, confirmations, the alarm limits in force and how the session ended.

Each function takes the ``session.json`` record and a clock that shows a UTC timestamp in the
clinic's time zone, and returns HTML (headings and tables: everything prints on paper).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from html import escape
from typing import Any
from zoneinfo import ZoneInfo

from controller.models import parse_utc

ShowTime = Callable[[str | None], str]


def local_clock(timezone: str) -> ShowTime:
    """A UTC timestamp as the clinic's wall-clock time (``HH:MM:SS``; "–" for none)."""
    zone = ZoneInfo(timezone)

    def show(iso: str | None) -> str:
        return "–" if not iso else parse_utc(iso).astimezone(zone).strftime("%H:%M:%S")

    return show


def zone_label(timezone: str, at: datetime) -> str:
    """The zone's name and its offset from UTC on the session's day (``America/Montreal,
    UTC−05:00``)."""
    offset = at.astimezone(ZoneInfo(timezone)).strftime("%z")
    return f"{timezone}, UTC{offset[:3]}:{offset[3:]}".replace("-", "−")


def v(value: Any) -> str:
    """A value for a table cell, escaped ("–" for none)."""
    return "–" if value is None or value == "" else escape(str(value))


def table(head: Sequence[str], body: Sequence[Sequence[str]]) -> str:
    """A plain table (cells already escaped), or "None." when there are no rows."""
    if not body:
        return '<p class="note">None.</p>'
    th = "".join(f"<th>{escape(h)}</th>" for h in head)
    trs = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in body)
    return f"<table><tr>{th}</tr>{trs}</table>"


def _warnings(items: Sequence[str]) -> str:
    return "".join(f'<div class="warn">{escape(w)}</div>' for w in items)


def choice_html(rec: dict[str, Any], show: ShowTime) -> str:
    """The music as planned, each amendment (``choose``) and the music as chosen."""
    planned = rec["planned"]
    rows = [
        [
            show(c["at"]),
            v(c["by"]),
            escape(", ".join(f"{k}: {val}" for k, val in c["changes"].items())),
            escape(", ".join(c["tracks"])) or "–",
            v(
                None
                if c["playlist_duration_s"] is None
                else round(c["playlist_duration_s"] / 60, 1)
            ),
            _warnings(c["warnings"]),
        ]
        for c in rec["choices"]
    ]
    return (
        "<h2>The patient's choice</h2>"
        f'<p class="note">Planned: {v(planned["music_mode"])}, guidance '
        f"{v(planned['guidance'])}. As chosen: {v(rec['music_mode'])}, guidance "
        f"{v(rec['guidance'])}, {len(rec['tracks'])} track(s).</p>"
        + table(["time", "by", "changes", "tracks", "playlist (min)", "warnings"], rows)
    )


def clinical_html(rec: dict[str, Any], show: ShowTime) -> str:
    """Confirmations, the dose, side effects, adverse events and the clinicians' notes."""
    notes = {n["note_id"]: n["text"] for n in rec["notes"]}
    return "".join(
        [
            "<h2>Confirmations</h2>",
            table(
                ["time", "item", "by"],
                [[show(c["at"]), v(c["item"]), v(c["by"])] for c in rec["confirmations"]],
            ),
            "<h2>Dose (as documented; the room never doses)</h2>",
            table(
                ["time", "weight (kg)", "dose (mg/kg)", "total (mg)", "by", "warnings"],
                [
                    [
                        show(d["at"]),
                        v(d["weight_kg"]),
                        v(d["dose_mg_per_kg"]),
                        v(d["total_mg"]),
                        v(d["by"]),
                        _warnings(d["warnings"]),
                    ]
                    for d in rec["doses"]
                ],
            ),
            "<h2>Side effects</h2>",
            table(
                ["time", "seen", "by", "note"],
                [
                    [
                        show(s["at"]),
                        escape(", ".join(s["items"])) or "none",
                        v(s["by"]),
                        v(notes.get(s["note_id"] or "")),
                    ]
                    for s in rec["side_effects"]
                ],
            ),
            "<h2>Adverse events</h2>",
            table(
                ["time", "kind", "severity", "action", "by", "note"],
                [
                    [
                        show(a["at"]),
                        v(a["kind"]),
                        v(a["severity"]),
                        v(a["action"]),
                        v(a["by"]),
                        v(notes.get(a["note_id"] or "")),
                    ]
                    for a in rec["adverse_events"]
                ],
            ),
            "<h2>Notes</h2>",
            table(
                ["time", "kind", "by", "text"],
                [
                    [show(n["at"]), v(n["kind"]), v(n["by"]), v(n["text"]).replace("\n", "<br>")]
                    for n in rec["notes"]
                ],
            ),
        ]
    )


def limits_html(rec: dict[str, Any]) -> str:
    """The alarm limits in force this session, with where each came from."""
    limits = rec.get("limits_in_force") or {}
    rows = [
        [
            escape(name),
            v(setting.get("limit", setting.get("value"))),
            v(setting.get("priority")),
            v(setting.get("delay_s")),
            v(setting.get("source")),
        ]
        for name, setting in (limits.get("alarms") or {}).items()
    ]
    mode = f'<p class="note">Monitoring: {v(limits.get("monitoring"))}.</p>' if limits else ""
    return (
        "<h2>Alarm limits in force</h2>"
        + mode
        + table(["setting", "limit / value", "priority", "delay (s)", "source"], rows)
    )


def end_html(rec: dict[str, Any], show: ShowTime) -> str:
    """How the session ended, and the alarms still unacknowledged at its end."""
    if not rec["complete"]:
        return '<h2>End</h2><p class="warn">The session had not ended.</p>'
    how = "with discharge" if rec["discharged"] else "without discharge"
    head = (
        f"<h2>End</h2><p>Ended {show(rec['ended_at'])} {how}, from "
        f"{v(rec['ended_from_phase'])}, by {v(rec['ended_by'])}: {v(rec['end_reason'])}.</p>"
    )
    rows = [[v(a.get("code")), v(a.get("priority")), v(a.get("state"))] for a in rec["open_alarms"]]
    if not rows:
        return head + '<p class="note">No alarm was left unacknowledged.</p>'
    return (
        head
        + '<p class="warn">Alarms unacknowledged at the end:</p>'
        + table(["alarm", "priority", "state"], rows)
    )
