"""The session record's vitals chart: one inline SVG (no script, nothing fetched).

SpO2 above; heart rate and blood pressure below, with the alarm limits in force as dashed
lines; the phases as bands and the drug infusion as its own bar; alarms, calls, check-ins and
track changes on lanes underneath. Hand-entered values are drawn as open squares.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Any

from controller.record.sections import ShowTime
from controller.record.sections import v as cell

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
DRUG_COLOUR, LIMIT_COLOUR = "#ad1457", "#e65100"
SPO2_LIMITS = ("spo2_low", "spo2_critical")
HEMO_LIMITS = ("hr_high", "hr_low", "sys_high", "dia_high", "sys_low")


def fmt_s(seconds: float | None) -> str:
    """Seconds as ``m:ss`` or ``h:mm:ss`` ("–" for none)."""
    if seconds is None:
        return "–"
    sign = "-" if seconds < 0 else ""
    s = abs(round(seconds))
    h, rest = divmod(s, 3600)
    m, sec = divmod(rest, 60)
    return f"{sign}{h}:{m:02d}:{sec:02d}" if h else f"{sign}{m}:{sec:02d}"


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


def chart_svg(rec: dict[str, Any], rows: Sequence[dict[str, Any]], show: ShowTime) -> str:
    """The vitals chart: SpO2 above; heart rate and blood pressure below, with the alarm
    limits in force; phases as bands and the drug infusion as a bar; alarms, calls, check-ins
    and track changes as markers on lanes underneath; ``show`` gives the clinic's times."""
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
            f"<title>{escape(ph['phase'])} {fmt_s(ph['duration_s'])}</title></rect>"
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
    nibp = [r for r in rows if r["kind"] == "nibp" and r["source"] != "manual"]
    manual = [r for r in rows if r["source"] == "manual"]
    spo2_low = min(
        [80.0] + [float(v) - 2 for _, v in spo2] + [r["spo2"] - 2 for r in manual if r["spo2"]]
    )
    spo2_low = float(int(spo2_low // 5 * 5))
    hemo_high = max(
        [200.0]
        + [float(r["sys"] or 0) + 10 for r in nibp + manual]
        + [float(v) + 10 for _, v in hr]
    )
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
            f"<g><title>{show(r['time'])} NIBP {r['sys']}/{r['dia']} ({r['map']})</title>"
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{ys:.1f}" y2="{yd:.1f}" stroke="{BP_COLOUR}"/>'
            f'<path d="M{x - 5:.1f},{ys - 6:.1f} L{x + 5:.1f},{ys - 6:.1f} L{x:.1f},{ys:.1f} Z"'
            f' fill="{BP_COLOUR}"/>'
            f'<path d="M{x - 5:.1f},{yd + 6:.1f} L{x + 5:.1f},{yd + 6:.1f} L{x:.1f},{yd:.1f} Z"'
            f' fill="#fff" stroke="{BP_COLOUR}"/></g>'
        )
    parts += _manual(rows, scale, spo2_low, hemo_high, show)
    parts += _limits(rec, spo2_low, hemo_high)
    parts += _drug_infusion(rec, scale)
    parts += _lanes(rec, scale, show)
    parts += _time_axis(scale)
    parts.append(_legend())
    parts.append("</svg>")
    return "\n".join(parts)


def _lanes(rec: dict[str, Any], scale: _Scale, show: ShowTime) -> list[str]:
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
            f"<title>{show(a['at'])} {escape(a['code'])} ({a['priority']}): "
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
            f' fill="#6a1b9a" opacity="0.7"><title>{show(c["at"])} call, acknowledged after'
            f" {fmt_s(c['time_to_ack_s'])}</title></rect>"
        )
    y2 = y1 + LANE_H
    for p in rec["checkins"]["prompts"]:
        x = scale.x(p["t_s"])
        out.append(f'<circle cx="{x:.1f}" cy="{y2}" r="3" fill="none" stroke="#00796b"/>')
    for r in rec["checkins"]["recorded"]:
        x = scale.x(r["t_s"])
        out.append(
            f'<path d="M{x:.1f},{y2 - 5} L{x + 5:.1f},{y2} L{x:.1f},{y2 + 5} L{x - 5:.1f},{y2} Z"'
            f' fill="#00796b"><title>{show(r["at"])} check-in by {cell(r["by"])}</title></path>'
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
            f' stroke-width="2"><title>{show(m["at"])} {m["type"]} {escape(str(label))}'
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
        (BP_COLOUR, "BP ▼ sys / ▲ dia"),
        ("#000", "□ hand-entered"),
        (DRUG_COLOUR, "drug infusion"),
        (LIMIT_COLOUR, "alarm limit"),
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


def _manual(
    rows: Sequence[dict[str, Any]], scale: _Scale, spo2_low: float, hemo_high: float, show: ShowTime
) -> list[str]:
    """Hand-entered values as open squares, each labelled (they are not the monitor's)."""
    out = []
    for r in rows:
        if r["source"] != "manual":
            continue
        x = scale.x(r["t_s"])
        marks = [(r["spo2"], SPO2_COLOUR, spo2_low, 100.0, SPO2_TOP, SPO2_H)]
        marks += [(r[k], c, 20.0, hemo_high, HEMO_TOP, HEMO_H) for k, c in _HEMO_KEYS]
        for value, colour, low, high, top, height in marks:
            if value is None:
                continue
            y = _y(float(value), low, high, top, height)
            out.append(
                f'<rect x="{x - 4:.1f}" y="{y - 4:.1f}" width="8" height="8" fill="#fff"'
                f' stroke="{colour}" stroke-width="1.5"><title>{show(r["time"])} hand-entered'
                f" by {cell(r['by'])}: {value}</title></rect>"
            )
    return out


_HEMO_KEYS = (("hr", HR_COLOUR), ("sys", BP_COLOUR), ("dia", BP_COLOUR))


def _limits(rec: dict[str, Any], spo2_low: float, hemo_high: float) -> list[str]:
    """The physiological alarm limits in force this session, as labelled dashed lines."""
    limits = ((rec.get("limits_in_force") or {}).get("alarms")) or {}
    out = []
    for names, low, high, top, height in (
        (SPO2_LIMITS, spo2_low, 100.0, SPO2_TOP, SPO2_H),
        (HEMO_LIMITS, 20.0, hemo_high, HEMO_TOP, HEMO_H),
    ):
        for name in names:
            limit = (limits.get(name) or {}).get("limit")
            if limit is None or not low <= limit <= high:
                continue
            y = _y(float(limit), low, high, top, height)
            out.append(
                f'<line x1="{LEFT}" x2="{W - RIGHT}" y1="{y:.1f}" y2="{y:.1f}"'
                f' stroke="{LIMIT_COLOUR}" stroke-dasharray="5 4" stroke-width="1"/>'
                f'<text x="{W - RIGHT - 2}" y="{y - 2:.1f}" text-anchor="end"'
                f' fill="{LIMIT_COLOUR}">{escape(name)} {limit:g}</text>'
            )
    return out


def _drug_infusion(rec: dict[str, Any], scale: _Scale) -> list[str]:
    """The drug infusion (the timer's run), apart from the infusion phase around it."""
    inf = rec["infusion"]
    if not inf.get("started"):
        return []
    start = inf["started_s"]
    end = start + (inf.get("elapsed_s") or (scale.duration - start))
    x0, x1 = scale.x(start), scale.x(end)
    y = HEMO_TOP - 24
    how = "completed" if inf["completed"] else "stopped" if inf.get("stopped_at") else "running"
    label = f"drug infusion {fmt_s(inf.get('elapsed_s'))} ({how})"
    return [
        f'<rect x="{x0:.1f}" y="{y}" width="{max(x1 - x0, 1):.1f}" height="8"'
        f' fill="{DRUG_COLOUR}"/>',
        f'<text x="{x0 + 2:.1f}" y="{y + 18}" fill="{DRUG_COLOUR}">{escape(label)}</text>',
    ]
