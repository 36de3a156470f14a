"""The session record as one self-contained HTML page: an inline SVG chart and tables.

Nothing is fetched: no scripts, fonts, images or style sheets from anywhere, so the page opens
the same from a USB stick, an e-mail or an archive in ten years, and prints on one sheet.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Any

W, LEFT, RIGHT = 1100, 64, 20
SPO2_TOP, SPO2_H = 34, 150
HEMO_TOP, HEMO_H = SPO2_TOP + SPO2_H + 30, 230
LANE_TOP = HEMO_TOP + HEMO_H + 34
LANE_H = 16
LANES = ("alarms", "calls", "check-ins", "music")
HEIGHT = LANE_TOP + LANE_H * len(LANES) + 26
GAP_S = 10.0
"""A line is broken where valid samples are further apart than this (no data is no line)."""

PHASE_COLOURS = ("#eef3fb", "#f7f1e8")
SPO2_COLOUR, HR_COLOUR, BP_COLOUR = "#1565c0", "#2e7d32", "#b71c1c"
PRIORITY_COLOURS = {"high": "#c62828", "medium": "#ef6c00", "low": "#9e9d24"}

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


def _fmt_s(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    sign = "-" if seconds < 0 else ""
    s = abs(round(seconds))
    h, rest = divmod(s, 3600)
    m, sec = divmod(rest, 60)
    return f"{sign}{h}:{m:02d}:{sec:02d}" if h else f"{sign}{m}:{sec:02d}"


def _clock(iso: str | None) -> str:
    return "–" if not iso else iso[11:19]


def _v(value: Any) -> str:
    return "–" if value is None or value == "" else escape(str(value))


# === the chart ============================================================================


class _Scale:
    def __init__(self, duration_s: float) -> None:
        self.duration = max(duration_s, 60.0)
        self.width = W - LEFT - RIGHT

    def x(self, t_s: float) -> float:
        return LEFT + max(0.0, min(t_s, self.duration)) / self.duration * self.width


def _y(value: float, low: float, high: float, top: float, height: float) -> float:
    value = max(low, min(high, value))
    return top + (high - value) / (high - low) * height


def _polylines(
    points: Sequence[tuple[float, float]], scale: _Scale, low: float, high: float, top: float
) -> list[str]:
    """Paths through (t_s, value), broken at gaps; per pixel column only the min and max stay
    (a two-hour session is 7,200 samples, and a desaturation must not be averaged away)."""
    height = SPO2_H if top == SPO2_TOP else HEMO_H
    runs: list[list[tuple[float, float]]] = []
    last_t: float | None = None
    for t, v in points:
        if last_t is None or t - last_t > GAP_S:
            runs.append([])
        runs[-1].append((t, v))
        last_t = t
    paths = []
    for run in runs:
        columns: dict[int, list[tuple[float, float]]] = {}
        for t, v in run:
            columns.setdefault(int(scale.x(t)), []).append((t, v))
        kept: list[tuple[float, float]] = []
        for col in columns.values():
            lo, hi = min(col, key=lambda p: p[1]), max(col, key=lambda p: p[1])
            kept.extend(sorted({lo, hi}))
        coords = " ".join(f"{scale.x(t):.1f},{_y(v, low, high, top, height):.1f}" for t, v in kept)
        if len(kept) == 1:
            coords += f" {scale.x(kept[0][0]) + 1:.1f},{_y(kept[0][1], low, high, top, height):.1f}"
        paths.append(coords)
    return paths


def _axis(low: float, high: float, step: float, top: float, height: float, unit: str) -> list[str]:
    out = []
    v = low
    while v <= high + 1e-9:
        y = _y(v, low, high, top, height)
        out.append(f'<line x1="{LEFT}" x2="{W - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{v:g}</text>')
        v += step
    out.append(
        f'<text x="14" y="{top + height / 2:.0f}" transform="rotate(-90 14 {top + height / 2:.0f})"'
        f' text-anchor="middle" fill="#444">{escape(unit)}</text>'
    )
    return out


def chart_svg(rec: dict[str, Any], rows: Sequence[dict[str, Any]]) -> str:
    """The vitals chart: SpO2 above; heart rate and blood pressure below; phases as bands;
    alarms, calls, check-ins and track changes as markers on lanes underneath."""
    scale = _Scale(float(rec["total_monitored_s"] or 0))
    parts = [
        f'<svg viewBox="0 0 {W} {HEIGHT}" width="{W}"'
        f' height="{HEIGHT}" role="img" aria-label="Vitals over the session">',
        f'<rect x="0" y="0" width="{W}" height="{HEIGHT}" fill="#fff"/>',
    ]
    # Phase bands behind everything, labelled along the top.
    for i, ph in enumerate(rec["phases"]):
        x0 = scale.x(ph["start_s"])
        x1 = scale.x(ph["end_s"] if ph["end_s"] is not None else scale.duration)
        fill = "#fde7e7" if ph["phase"] == "infusion" else PHASE_COLOURS[i % 2]
        parts.append(
            f'<rect x="{x0:.1f}" y="{SPO2_TOP - 14}" width="{max(x1 - x0, 0.5):.1f}"'
            f' height="{LANE_TOP + LANE_H * len(LANES) - SPO2_TOP + 14}" fill="{fill}">'
            f"<title>{escape(ph['phase'])} {_fmt_s(ph['duration_s'])}</title></rect>"
        )
        label = ph["phase"].replace("_", " ")
        if x1 - x0 > 7 * len(label) + 6:  # only where it fits: neighbours must not overlap
            parts.append(
                f'<text x="{(x0 + x1) / 2:.1f}" y="{SPO2_TOP - 4}" text-anchor="middle"'
                f' fill="#555">{escape(label)}</text>'
            )
    samples = [r for r in rows if r["kind"] == "sample"]
    spo2 = [(r["t_s"], r["spo2"]) for r in samples if r["spo2"] is not None]
    hr = [(r["t_s"], r["hr"]) for r in samples if r["hr"] is not None]
    nibp = [r for r in rows if r["kind"] == "nibp"]
    spo2_low = min([80.0] + [float(v) - 2 for _, v in spo2])
    spo2_low = float(int(spo2_low // 5 * 5))
    hemo_high = max([200.0] + [float(r["sys"]) + 10 for r in nibp] + [float(v) + 10 for _, v in hr])
    hemo_high = float(int(-(-hemo_high // 20) * 20))
    parts += _axis(spo2_low, 100, 5, SPO2_TOP, SPO2_H, "SpO2 %")
    parts += _axis(20, hemo_high, 20, HEMO_TOP, HEMO_H, "bpm / mmHg")
    for coords in _polylines(spo2, scale, spo2_low, 100, SPO2_TOP):
        parts.append(
            f'<polyline points="{coords}" fill="none" stroke="{SPO2_COLOUR}" stroke-width="1.5"/>'
        )
    for coords in _polylines(hr, scale, 20, hemo_high, HEMO_TOP):
        parts.append(
            f'<polyline points="{coords}" fill="none" stroke="{HR_COLOUR}" stroke-width="1.5"/>'
        )
    for r in nibp:
        x = scale.x(r["t_s"])
        ys = _y(r["sys"], 20, hemo_high, HEMO_TOP, HEMO_H)
        yd = _y(r["dia"], 20, hemo_high, HEMO_TOP, HEMO_H)
        parts.append(
            f"<g><title>{_clock(r['time'])} NIBP {r['sys']}/{r['dia']} ({r['map']})</title>"
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{ys:.1f}" y2="{yd:.1f}" stroke="{BP_COLOUR}"/>'
            f'<path d="M{x - 5:.1f},{ys - 6:.1f} L{x + 5:.1f},{ys - 6:.1f} L{x:.1f},{ys:.1f} Z"'
            f' fill="{BP_COLOUR}"/>'
            f'<path d="M{x - 5:.1f},{yd + 6:.1f} L{x + 5:.1f},{yd + 6:.1f} L{x:.1f},{yd:.1f} Z"'
            f' fill="#fff" stroke="{BP_COLOUR}"/></g>'
        )
    parts += _lanes(rec, scale)
    parts += _time_axis(scale)
    parts.append(_legend())
    parts.append("</svg>")
    return "\n".join(parts)


def _lanes(rec: dict[str, Any], scale: _Scale) -> list[str]:
    out = []
    for i, name in enumerate(LANES):
        y = LANE_TOP + i * LANE_H
        out.append(f'<line x1="{LEFT}" x2="{W - RIGHT}" y1="{y + 8}" y2="{y + 8}" stroke="#ccc"/>')
        out.append(f'<text x="{LEFT - 6}" y="{y + 12}" text-anchor="end">{name}</text>')
    y0 = LANE_TOP + 8
    for a in rec["alarms"]:
        x, c = scale.x(a["t_s"]), PRIORITY_COLOURS.get(a["priority"], "#c62828")
        out.append(
            f'<path d="M{x - 5:.1f},{y0 + 5} L{x + 5:.1f},{y0 + 5} L{x:.1f},{y0 - 6} Z" fill="{c}">'
            f"<title>{_clock(a['at'])} {escape(a['code'])} ({a['priority']}): "
            f"{escape(a['message'])}</title></path>"
        )
    for e in rec["emergencies"]:
        x = scale.x(e["t_s"])
        out.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{SPO2_TOP - 14}" y2="{LANE_TOP + 4 * LANE_H}"'
            f' stroke="#000" stroke-width="2" stroke-dasharray="6 3">'
            f"<title>Emergency: {escape(str(e['reason']))}</title></line>"
        )
    y1 = y0 + LANE_H
    for c in rec["calls"]:
        x0 = scale.x(c["t_s"])
        end = c["time_to_clear_s"]
        x1 = scale.x(c["t_s"] + end) if end is not None else x0 + 2
        out.append(
            f'<rect x="{x0:.1f}" y="{y1 - 4}" width="{max(x1 - x0, 2):.1f}" height="8" rx="3"'
            f' fill="#6a1b9a" opacity="0.7"><title>{_clock(c["at"])} call, acknowledged after'
            f" {_fmt_s(c['time_to_ack_s'])}</title></rect>"
        )
    y2 = y1 + LANE_H
    for p in rec["checkins"]["prompts"]:
        x = scale.x(p["t_s"])
        out.append(f'<circle cx="{x:.1f}" cy="{y2}" r="3" fill="none" stroke="#00796b"/>')
    for r in rec["checkins"]["recorded"]:
        x = scale.x(r["t_s"])
        out.append(
            f'<path d="M{x:.1f},{y2 - 5} L{x + 5:.1f},{y2} L{x:.1f},{y2 + 5} L{x - 5:.1f},{y2} Z"'
            f' fill="#00796b"><title>{_clock(r["at"])} check-in by {_v(r["by"])}</title></path>'
        )
    y3 = y2 + LANE_H
    for m in rec["music"]["timeline"]:
        if m["type"] not in ("track_started", "music_stopped", "preview_started"):
            continue
        x = scale.x(m["t_s"])
        label = m.get("track") or m.get("reason") or ""
        colour = "#455a64" if m["type"] == "music_stopped" else "#5e35b1"
        out.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{y3 - 6}" y2="{y3 + 6}" stroke="{colour}"'
            f' stroke-width="2"><title>{_clock(m["at"])} {m["type"]} {escape(str(label))}'
            "</title></line>"
        )
    return out


def _time_axis(scale: _Scale) -> list[str]:
    minutes = scale.duration / 60
    step = next(s for s in (1, 2, 5, 10, 15, 20, 30, 60) if minutes / s <= 14)
    y = LANE_TOP + LANE_H * len(LANES) + 2
    out = [f'<line x1="{LEFT}" x2="{W - RIGHT}" y1="{y}" y2="{y}" stroke="#888"/>']
    m = 0
    while m <= minutes + 1e-9:
        x = scale.x(m * 60)
        out.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{y}" y2="{y + 4}" stroke="#888"/>')
        out.append(f'<text x="{x:.1f}" y="{y + 15}" text-anchor="middle">{m} min</text>')
        m += step
    return out


def _legend() -> str:
    items = [
        (SPO2_COLOUR, "SpO2"),
        (HR_COLOUR, "heart rate"),
        (BP_COLOUR, "BP ▼ systolic / ▲ diastolic"),
        (PRIORITY_COLOURS["high"], "alarm"),
        ("#6a1b9a", "call (placed → cleared)"),
        ("#00796b", "check-in"),
        ("#5e35b1", "track"),
    ]
    x, out = LEFT, []
    for colour, label in items:
        out.append(f'<rect x="{x}" y="6" width="14" height="8" fill="{colour}"/>')
        out.append(f'<text x="{x + 18}" y="14">{escape(label)}</text>')
        x += 26 + 7 * len(label)
    return "\n".join(out)


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
        (_fmt_s(rec["total_monitored_s"]), "session length"),
        (_fmt_s(inf.get("elapsed_s")), "infusion" + (" (completed)" if inf["completed"] else "")),
        (f"{_v(spo2['min'])}–{_v(spo2['max'])} %", "SpO2 min–max"),
        (f"{_v(hr['min'])}–{_v(hr['max'])}", "heart rate min–max"),
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


def render_html(rec: dict[str, Any], rows: Sequence[dict[str, Any]]) -> str:
    """The whole report page."""
    inf = rec["infusion"]
    day = rec["started_at"][:10]
    ended = (
        f"ended {_clock(rec['ended_at'])} ({_v(rec['end_reason'])})"
        if rec["complete"]
        else '<span class="warn">not ended when this report was made</span>'
    )
    s: list[str] = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>Session {escape(rec['session_id'])} — {day}</title>",
        f"<style>{CSS}</style></head><body>",
        f"<h1>Session {escape(rec['session_id'])}</h1>",
        f'<div class="meta">Patient (pseudonym) <b>{_v(rec["patient_ref"])}</b> · session'
        f" {_v(rec['session_number'])} · {_v(rec['music_mode'])} · {day}, started"
        f" {_clock(rec['started_at'])} UTC, {ended}</div>",
        _keys(rec),
        "<h2>Vitals</h2>",
        chart_svg(rec, rows),
        '<p class="note">Times are UTC; chart time is minutes since the session started. '
        "Lines break where the oximeter gave no valid value. This record comes from the "
        "room's controller, an adjunct to the certified monitor; that monitor's record is "
        "primary.</p>",
        "<h2>Phases</h2>",
        _table(
            ["phase", "start", "end", "duration", "by"],
            [
                [
                    escape(p["phase"]),
                    _clock(p["start"]),
                    _clock(p["end"]),
                    _fmt_s(p["duration_s"]),
                    _v(p["by"]),
                ]
                for p in rec["phases"]
            ],
            {3},
        ),
        "<h2>Infusion</h2>",
        _table(
            ["started", "target", "completed", "stopped", "elapsed", "by"],
            [
                [
                    _clock(inf.get("started_at")),
                    _fmt_s(inf.get("target_s")),
                    _clock(inf.get("completed_at")),
                    _clock(inf.get("stopped_at"))
                    + (f" ({escape(str(inf['stop_reason']))})" if inf.get("stop_reason") else ""),
                    _fmt_s(inf.get("elapsed_s")),
                    _v(inf.get("started_by")),
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
                    _clock(n["at"]),
                    _fmt_s(n["since_infusion_s"]),
                    f"{n['sys']}/{n['dia']} ({n['map']})",
                    _v(n["hr"]),
                    _v(n["source"]) + (f" ({_v(n['by'])})" if n["by"] else ""),
                    "".join(f'<span class="flag">{escape(f)}</span>' for f in n["flags"]),
                ]
                for n in rec["nibp"]
            ],
            {1, 3},
        ),
        "<h2>Alarms</h2>",
        _table(
            ["raised", "alarm", "priority", "message", "acknowledged", "time to ack", "cleared"],
            [
                [
                    _clock(a["at"]),
                    escape(a["code"]),
                    escape(a["priority"]),
                    escape(a["message"]),
                    _clock(a["acknowledged_at"])
                    + (f" ({_v(a['acknowledged_by'])})" if a["acknowledged_by"] else ""),
                    _fmt_s(a["time_to_ack_s"]),
                    _clock(a["cleared_at"]),
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
                    _clock(c["at"]),
                    _clock(c["acknowledged_at"])
                    + (f" ({_v(c['acknowledged_by'])})" if c["acknowledged_by"] else ""),
                    _fmt_s(c["time_to_ack_s"]),
                    _clock(c["cleared_at"]) + (f" ({_v(c['where'])})" if c["where"] else ""),
                    _fmt_s(c["time_to_clear_s"]),
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
            [[_clock(c["at"]), _v(c["by"]), _v(c["note"])] for c in rec["checkins"]["recorded"]],
        ),
        "<h2>Gates and overrides</h2>",
        _table(
            ["time", "gate", "met", "unmet", "override"],
            [
                [
                    _clock(g["at"]),
                    escape(g["gate"]),
                    "yes" if g["met"] else '<span class="warn">no</span>',
                    escape("; ".join(f"{k}: {v}" if v else k for k, v in g["unmet"].items())),
                    (
                        f"{escape(g['override']['reason'])} ({_v(g['override'].get('by'))})"
                        if g["override"]
                        else ""
                    ),
                ]
                for g in rec["gates"]
            ],
        ),
        "<h2>Emergencies</h2>",
        _table(
            ["time", "reason", "by"],
            [[_clock(e["at"]), _v(e["reason"]), _v(e["by"])] for e in rec["emergencies"]],
        ),
        "<h2>Music</h2>",
        _table(
            ["started", "track", "ended", "played"],
            [
                [
                    _clock(t["at"]),
                    escape(t["track"]),
                    _clock(t.get("ended_at")),
                    _fmt_s(t.get("played_s")),
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
                    _clock(i["at"]),
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
        f'<p class="note">Report format {rec["report_version"]}; journal up to seq '
        f"{rec['last_seq']}. Files beside this page: session.json, vitals.csv, events.jsonl, "
        "oru_r01.hl7.</p>",
        "</body></html>",
    ]
    return "\n".join(s) + "\n"
