"""The session record as one self-contained HTML page: an inline SVG chart and tables.

Nothing is fetched: no scripts, fonts, images or style sheets from anywhere, so the page opens
the same from a USB stick, an e-mail or an archive in ten years, and prints on one sheet.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Any
from zoneinfo import ZoneInfo

from controller.models import parse_utc
from controller.record.chart import chart_svg, fmt_s
from controller.record.sections import (
    choice_html,
    clinical_html,
    end_html,
    limits_html,
    local_clock,
    v,
    zone_label,
)

CSS = """
body{font-family:"DejaVu Sans",Arial,Helvetica,sans-serif;color:#222;margin:24px;
 max-width:1100px}
h1{font-size:20px;margin:0 0 4px}h2{font-size:15px;margin:22px 0 6px;
 border-bottom:1px solid #ccc}
.meta{color:#555;font-size:13px}.keys{display:flex;flex-wrap:wrap;gap:8px;margin:12px 0}
.key{border:1px solid #ccd;border-radius:6px;padding:6px 10px;min-width:110px}
.key b{display:block;font-size:18px}.key span{font-size:11px;color:#555}
table{border-collapse:collapse;font-size:12px;width:100%}
th,td{border:1px solid #ddd;padding:3px 6px;text-align:left;vertical-align:top}
th{background:#f3f3f3}td.n{text-align:right;font-variant-numeric:tabular-nums}
.flag{background:#e8eefc;border-radius:3px;padding:0 4px;margin-right:3px;font-size:11px}
.warn{color:#b71c1c;font-weight:bold}.note{font-size:11px;color:#666}
svg{font-family:"DejaVu Sans",Arial,sans-serif;font-size:11px}
@media print{body{margin:8mm}h2{break-after:avoid}table{break-inside:auto}}
"""


# === the page =============================================================================


def _table(
    head: Sequence[str], body: Sequence[Sequence[str]], numeric: set[int] | None = None
) -> str:
    if not body:
        return '<p class="note">None.</p>'
    numeric = numeric or set()
    th = "".join(f"<th>{escape(h)}</th>" for h in head)
    trs = "".join(
        "<tr>"
        + "".join(
            f'<td class="n">{c}</td>' if i in numeric else f"<td>{c}</td>"
            for i, c in enumerate(row)
        )
        + "</tr>"
        for row in body
    )
    return f"<table><tr>{th}</tr>{trs}</table>"


def _keys(rec: dict[str, Any]) -> str:
    ox, inf = rec["oximetry"], rec["infusion"]
    spo2, hr = ox["spo2"], ox["hr"]
    items = [
        (fmt_s(rec["total_monitored_s"]), "session length"),
        (fmt_s(inf.get("elapsed_s")), "infusion" + (" (completed)" if inf["completed"] else "")),
        (f"{v(spo2['min'])}–{v(spo2['max'])} %", "SpO2 min–max"),
        (f"{v(hr['min'])}–{v(hr['max'])}", "heart rate min–max"),
        (str(len(rec["nibp"])), "blood pressures"),
        (str(len(rec["alarms"])), "alarms"),
        (str(len(rec["calls"])), "calls"),
        (str(len(rec["overrides"])), "gate overrides"),
    ]
    if rec["emergencies"]:
        items.append((str(len(rec["emergencies"])), "EMERGENCY"))
    return (
        '<div class="keys">'
        + "".join(f'<div class="key"><b>{b}</b><span>{escape(s)}</span></div>' for b, s in items)
        + "</div>"
    )


def render_html(rec: dict[str, Any], rows: Sequence[dict[str, Any]], timezone: str = "UTC") -> str:
    """The whole report page, its times in the clinic's ``timezone`` (an IANA name)."""
    inf = rec["infusion"]
    show = local_clock(timezone)
    started = parse_utc(rec["started_at"])
    zone = zone_label(timezone, started)
    day = started.astimezone(ZoneInfo(timezone)).date().isoformat()
    ended = (
        f"ended {show(rec['ended_at'])} ({v(rec['end_reason'])})"
        if rec["complete"]
        else '<span class="warn">not ended when this report was made</span>'
    )
    s: list[str] = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>Session {escape(rec['session_id'])} — {day}</title>",
        f"<style>{CSS}</style></head><body>",
        f"<h1>Session {escape(rec['session_id'])}</h1>",
        f'<div class="meta">Patient (pseudonym) <b>{v(rec["patient_ref"])}</b> · session'
        f" {v(rec['session_number'])} · {v(rec['music_mode'])} · {day}, started"
        f" {show(rec['started_at'])} ({escape(zone)}), {ended}</div>",
        _keys(rec),
        "<h2>Vitals</h2>",
        chart_svg(rec, rows, show),
        f'<p class="note">Times are local ({escape(zone)}); the data files keep UTC. Chart '
        "time is minutes since the session started. "
        "Lines break where the oximeter gave no valid value. This record comes from the "
        "room's controller, an adjunct to the certified monitor; that monitor's record is "
        "primary.</p>",
        "<h2>Phases</h2>",
        _table(
            ["phase", "start", "end", "duration", "by"],
            [
                [
                    escape(p["phase"]),
                    show(p["start"]),
                    show(p["end"]),
                    fmt_s(p["duration_s"]),
                    v(p["by"]),
                ]
                for p in rec["phases"]
            ],
            {3},
        ),
        "<h2>Drug infusion</h2>",
        '<p class="note">The infusion timer (the drug running), apart from the infusion '
        "phase around it (see Phases).</p>",
        _table(
            ["started", "target", "completed", "stopped", "elapsed", "by"],
            [
                [
                    show(inf.get("started_at")),
                    fmt_s(inf.get("target_s")),
                    show(inf.get("completed_at")),
                    show(inf.get("stopped_at"))
                    + (f" ({escape(str(inf['stop_reason']))})" if inf.get("stop_reason") else ""),
                    fmt_s(inf.get("elapsed_s")),
                    v(inf.get("started_by")),
                ]
            ]
            if inf["started"]
            else [],
        ),
        "<h2>Blood pressure</h2>",
        _table(
            ["time", "since infusion start", "sys/dia (MAP)", "HR", "source", ""],
            [
                [
                    show(n["at"]),
                    fmt_s(n["since_infusion_s"]),
                    f"{n['sys']}/{n['dia']} ({n['map']})",
                    v(n["hr"]),
                    (
                        '<span class="flag">hand-entered</span>'
                        if n["source"] == "manual"
                        else v(n["source"])
                    )
                    + (f" ({v(n['by'])})" if n["by"] else ""),
                    "".join(f'<span class="flag">{escape(f)}</span>' for f in n["flags"]),
                ]
                for n in rec["nibp"]
            ],
            {1, 3},
        ),
        "<h2>Hand-entered SpO2 and heart rate</h2>",
        _table(
            ["time", "SpO2 %", "HR", "by"],
            [[show(m["at"]), v(m["spo2"]), v(m["hr"]), v(m["by"])] for m in rec["manual_vitals"]],
            {1, 2},
        ),
        "<h2>Alarms</h2>",
        _table(
            ["raised", "alarm", "priority", "message", "acknowledged", "time to ack", "cleared"],
            [
                [
                    show(a["at"]),
                    escape(a["code"]),
                    escape(a["priority"]),
                    escape(a["message"]),
                    show(a["acknowledged_at"])
                    + (f" ({v(a['acknowledged_by'])})" if a["acknowledged_by"] else ""),
                    fmt_s(a["time_to_ack_s"]),
                    show(a["cleared_at"]),
                ]
                for a in rec["alarms"]
            ],
            {5},
        ),
        "<h2>Calls</h2>",
        _table(
            ["placed", "acknowledged", "time to ack", "cleared", "time to clear", "escalations"],
            [
                [
                    show(c["at"]),
                    show(c["acknowledged_at"])
                    + (f" ({v(c['acknowledged_by'])})" if c["acknowledged_by"] else ""),
                    fmt_s(c["time_to_ack_s"]),
                    show(c["cleared_at"]) + (f" ({v(c['where'])})" if c["where"] else ""),
                    fmt_s(c["time_to_clear_s"]),
                    str(c["escalations"]),
                ]
                for c in rec["calls"]
            ],
            {2, 4, 5},
        ),
        "<h2>Check-ins</h2>",
        f'<p class="note">{len(rec["checkins"]["prompts"])} prompts, '
        f"{rec['checkins']['missed']} missed.</p>",
        _table(
            ["time", "by", "note"],
            [[show(c["at"]), v(c["by"]), v(c["note"])] for c in rec["checkins"]["recorded"]],
        ),
        "<h2>Gates and overrides</h2>",
        _table(
            ["time", "gate", "met", "unmet", "override"],
            [
                [
                    show(g["at"]),
                    escape(g["gate"]),
                    "yes" if g["met"] else '<span class="warn">no</span>',
                    escape("; ".join(f"{k}: {v}" if v else k for k, v in g["unmet"].items())),
                    (
                        f"{escape(g['override']['reason'])} ({v(g['override'].get('by'))})"
                        if g["override"]
                        else ""
                    ),
                ]
                for g in rec["gates"]
            ],
        ),
        limits_html(rec),
        choice_html(rec, show),
        clinical_html(rec, show),
        "<h2>Emergencies</h2>",
        _table(
            ["time", "reason", "by"],
            [[show(e["at"]), v(e["reason"]), v(e["by"])] for e in rec["emergencies"]],
        ),
        "<h2>Music</h2>",
        _table(
            ["started", "track", "ended", "played"],
            [
                [
                    show(t["at"]),
                    escape(t["track"]),
                    show(t.get("ended_at")),
                    fmt_s(t.get("played_s")),
                ]
                for t in rec["music"]["tracks"]
            ],
            {3},
        ),
        "<h2>Devices and link</h2>",
        _table(
            ["time", "what", "detail"],
            [
                [
                    show(i["at"]),
                    escape(i["type"]),
                    escape(
                        ", ".join(
                            f"{k}={v}" for k, v in i.items() if k not in ("at", "t_s", "type")
                        )
                    ),
                ]
                for i in rec["incidents"]
            ],
        ),
        end_html(rec, show),
        f'<p class="note">Report format {rec["report_version"]}; journal up to seq '
        f"{rec['last_seq']}. Files beside this page: session.json, vitals.csv, events.jsonl, "
        "oru_r01.hl7.</p>",
        "</body></html>",
    ]
    return "\n".join(s) + "\n"
