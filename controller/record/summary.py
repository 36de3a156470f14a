"""The session record's data: ``session.json`` and the rows of ``vitals.csv``.

``summarize`` turns a session's journal events and vitals rows into the summary (phases,
infusion, blood pressures, SpO2/HR extremes, alarms, calls, check-ins, gates and overrides,
emergencies, music, discharge), times as ISO-8601 UTC and as seconds since the session started
(``t_s``); ``vitals_rows`` lists every oximeter sample, blood pressure and hand-entered value.
Both read only what the journal holds. No patient name exists in the data: the patient is the
plan's ``patient_ref`` pseudonym.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from controller.models import Event, iso_utc, parse_utc

REPORT_VERSION = 2
OXIMETRY_GAP_S = 10.0
"""Consecutive valid samples further apart than this leave a gap in oximetry coverage (the
default ``stale_s``: the room would have raised ``vitals_stale``)."""

CSV_COLUMNS: tuple[str, ...] = ("time", "t_s", "kind", "spo2", "hr", "pi", "quality", "sys")
CSV_COLUMNS += ("dia", "map", "source", "by")
"""The columns of ``vitals.csv``, which are the keys of every ``vitals_rows`` row."""
CSV_UNITS = {"time": "utc", "t_s": "", "spo2": "pct", "hr": "bpm", "pi": "pct"}
CSV_UNITS |= {"sys": "mmHg", "dia": "mmHg", "map": "mmHg"}
CSV_HEADER = tuple(f"{c}_{CSV_UNITS[c]}" if CSV_UNITS.get(c) else c for c in CSV_COLUMNS)
"""``vitals.csv``'s header: each column with its unit (``spo2_pct``, ``sys_mmHg``, ...)."""

Record = dict[str, Any]
ALARM_LATER = "acknowledged_at acknowledged_by time_to_ack_s escalated_at cleared_at duration_s"
CALL_LATER = (
    "acknowledged_at acknowledged_by time_to_ack_s cleared_at cleared_by where time_to_clear_s"
)
INCIDENTS = ("device_lost", "device_connected", "link_restored", "session_resumed", "nibp_failed")


# === the summary ==========================================================================


def _r(seconds: float) -> float:
    return round(seconds, 3)


class _Clock:
    """Session-relative times: ``t_s`` is seconds since the session started."""

    def __init__(self, t0: datetime) -> None:
        self.t0 = t0

    def t(self, ts: datetime) -> float:
        return _r((ts - self.t0).total_seconds())

    def at(self, ts: datetime) -> dict[str, Any]:
        return {"at": iso_utc(ts), "t_s": self.t(ts)}


def parse_samples(vitals: Sequence[tuple[str, str, str]]) -> list[dict[str, Any]]:
    """The oximeter samples of a journal's vitals rows, each with a parsed ``ts``.

    Blood pressures are taken from the events instead (each reading is one event, journalled
    before anything else), so the vitals table's ``nibp`` copies are not needed here.
    """
    out: list[dict[str, Any]] = []
    for ts_text, kind, payload in vitals:
        if kind != "sample":
            continue
        try:
            sample = json.loads(payload)
            sample["ts"] = parse_utc(sample.get("ts") or ts_text)
        except (ValueError, TypeError, AttributeError):
            continue  # one damaged row must not cost the whole record
        out.append(sample)
    out.sort(key=lambda s: s["ts"])
    return out


def nibp_readings(events: Sequence[Event]) -> list[tuple[Event, dict[str, Any]]]:
    """Every blood pressure of the session: module results and hand-entered readings."""
    out = []
    for e in events:
        d = e.data
        if e.type == "nibp_result" or (e.type == "vitals_recorded" and "sys" in d):
            mean = d.get("map")
            if mean is None:  # hand-entered: the room computes MAP the way state.py does
                mean = round((d["sys"] + 2 * d["dia"]) / 3)
            by = d.get("by") if e.type == "vitals_recorded" else None
            reading = {"sys": d["sys"], "dia": d["dia"], "map": mean, "hr": d.get("hr")}
            out.append((e, reading | {"source": d.get("source", "manual"), "by": by}))
    return out


def _extremes(samples: list[dict[str, Any]], key: str, clock: _Clock) -> dict[str, Any]:
    valid = [(s["ts"], s[key]) for s in samples if s.get(key) is not None]
    if not valid:
        return {"min": None, "max": None, "mean": None, "min_at": None, "max_at": None}
    low = min(valid, key=lambda v: v[1])
    high = max(valid, key=lambda v: v[1])
    mean = round(sum(v for _, v in valid) / len(valid), 1)
    return {"min": low[1], "min_at": iso_utc(low[0]), "min_t_s": clock.t(low[0])} | {
        "max": high[1],
        "max_at": iso_utc(high[0]),
        "max_t_s": clock.t(high[0]),
        "mean": mean,
    }


def _oximetry(samples: list[dict[str, Any]], clock: _Clock) -> dict[str, Any]:
    quality: dict[str, int] = {}
    for s in samples:
        q = str(s.get("quality", "ok"))
        quality[q] = quality.get(q, 0) + 1
    valid = [s["ts"] for s in samples if s.get("spo2") is not None or s.get("hr") is not None]
    covered = sum(
        gap
        for gap in ((b - a).total_seconds() for a, b in itertools.pairwise(valid))
        if gap <= OXIMETRY_GAP_S
    )
    return {
        "samples": len(samples),
        "valid_samples": len(valid),
        "covered_s": _r(covered),
        "quality": dict(sorted(quality.items())),
        "spo2": _extremes(samples, "spo2", clock),
        "hr": _extremes(samples, "hr", clock),
    }


def summarize(
    events: Sequence[Event],
    vitals: Sequence[tuple[str, str, str]],
    notes: Sequence[dict[str, str]] = (),
) -> Record:
    """The ``session.json`` record of one session's events, vitals rows and clinicians'
    notes (the journal's ``notes``: their text is in the record, never on an event)."""
    if not events:
        raise ValueError("no events: nothing to report")
    started = next((e for e in events if e.type == "session_started"), None)
    t0 = started.ts if started is not None else events[0].ts
    clock = _Clock(t0)
    plan = started.data.get("plan", {}) if started is not None else {}
    ended = next((e for e in events if e.type == "session_ended"), None)
    discharged = next((e for e in events if e.type == "discharged"), None)
    end_ts = ended.ts if ended is not None else events[-1].ts
    samples = parse_samples(vitals)

    rec: Record = {
        "report_version": REPORT_VERSION,
        "session_id": plan.get("session_id") or events[0].session_id,
        "patient_ref": plan.get("patient_ref"),
        "session_number": plan.get("session_number"),
        "music_mode": plan.get("music_mode"),
        "guidance": plan.get("guidance"),
        "tracks": started.data.get("tracks", []) if started is not None else [],
        "started_at": iso_utc(t0),
        "ended_at": iso_utc(ended.ts) if ended else None,
        "complete": ended is not None,
        "end_reason": ended.data.get("reason") if ended else None,
        "ended_by": ended.data.get("by") if ended else None,
        "discharged_at": iso_utc(discharged.ts) if discharged else None,
        "discharged_by": discharged.data.get("by") if discharged else None,
        "total_monitored_s": clock.t(end_ts),
        "last_seq": events[-1].seq,
    }
    rec["phases"] = _phases(events, clock)
    rec["infusion"] = infusion = _infusion(events, clock)
    rec["nibp"] = _nibp(events, clock, infusion)
    rec["oximetry"] = _oximetry(samples, clock)
    manual = [e for e in events if e.type == "vitals_recorded" and {"spo2", "hr"} & set(e.data)]
    rec["manual_vitals"] = _each(manual, clock, ("vitals_recorded",), ("spo2", "hr", "by"))
    rec["alarms"] = _alarms(events, clock)
    rec["calls"] = _calls(events, clock)
    rec["checkins"] = _checkins(events, clock)
    rec["confirmations"] = _each(events, clock, ("confirmed",), ("item", "by"))
    rec["gates"] = [
        {
            **clock.at(e.ts),
            "gate": e.data["gate"],
            "met": e.data["met"],
            "unmet": e.data.get("reasons", {k: "" for k in e.data.get("unmet", [])}),
            "override": e.data.get("override"),
        }
        for e in events
        if e.type == "gate_checked"
    ]
    rec["overrides"] = [
        {"at": g["at"], "t_s": g["t_s"], "gate": g["gate"], "unmet": g["unmet"], **g["override"]}
        for g in rec["gates"]
        if g["override"]
    ]
    rec["emergencies"] = _each(events, clock, ("emergency",), ("reason", "by"))
    rec["music"] = _music(events, clock)
    rec["incidents"] = _each(events, clock, INCIDENTS)
    rec.update(_clinical(events, clock, notes))
    rec.update(_choice(events, clock, rec))
    rec.update(_end(ended))
    limits = next((e for e in events if e.type == "limits_in_force"), None)
    rec["limits_in_force"] = limits.data if limits is not None else None
    return rec


def _clinical(events: Sequence[Event], clock: _Clock, notes: Sequence[dict[str, str]]) -> Record:
    """What the clinic's note needs: notes (with their text), dose, side effects, adverse
    events, the debrief's timing — each with who and when."""
    return {
        "notes": [
            {**clock.at(parse_utc(n["ts"])), **{k: n[k] for k in ("note_id", "kind", "by", "text")}}
            for n in notes
        ],
        "doses": _each(
            events,
            clock,
            ("dose_recorded",),
            ("weight_kg", "dose_mg_per_kg", "total_mg", "by", "warnings"),
        ),
        "side_effects": _each(
            events, clock, ("side_effects_recorded",), ("items", "by", "note_id")
        ),
        "adverse_events": _each(
            events,
            clock,
            ("adverse_event_recorded",),
            ("kind", "severity", "action", "by", "note_id"),
        ),
        "debrief_due": _each(events, clock, ("debrief_due",), ("bound", "minutes")),
    }


def _choice(events: Sequence[Event], clock: _Clock, rec: Record) -> Record:
    """The patient's choice (``choose``): each amendment, and the music as finally chosen
    (``music_mode``, ``guidance``, ``tracks`` then hold the choice; ``planned`` the plan's)."""
    keys = ("changes", "tracks", "by", "playlist_duration_s", "warnings")
    amendments = _each(events, clock, ("plan_amended",), keys)
    out: Record = {
        "planned": {k: rec[k] for k in ("music_mode", "guidance", "tracks")},
        "choices": amendments,
    }
    for amendment in amendments:
        changes = amendment["changes"]
        out["music_mode"] = changes.get("music_mode", out.get("music_mode", rec["music_mode"]))
        out["guidance"] = changes.get("guidance", out.get("guidance", rec["guidance"]))
        out["tracks"] = amendment["tracks"]
    return out


def _end(ended: Event | None) -> Record:
    """How the session ended: discharged or not, from which phase, and the alarms nobody had
    acknowledged by then."""
    data = ended.data if ended is not None else {}
    return {
        "discharged": data.get("discharged"),
        "ended_from_phase": data.get("from_phase"),
        "open_alarms": list(data.get("open_alarms", [])),
    }


def _each(
    events: Sequence[Event], clock: _Clock, types: Sequence[str], keys: Sequence[str] = ()
) -> list[Record]:
    """Every event of ``types`` as its time and ``keys`` of its data (all of it, and its type,
    when no keys are given)."""
    return [
        {**clock.at(e.ts), **({k: e.data.get(k) for k in keys} if keys else {"type": e.type})}
        | ({} if keys else e.data)
        for e in events
        if e.type in types
    ]


def _phases(events: Sequence[Event], clock: _Clock) -> list[dict[str, Any]]:
    changes = [e for e in events if e.type == "phase_changed"]
    out: list[dict[str, Any]] = []
    # Each phase runs until the next change; the last one (no next) is still running.
    for here, after in zip(changes, [*changes[1:], None][: len(changes)], strict=True):
        if here.data["to"] == "ended":
            continue
        start = {"start": iso_utc(here.ts), "start_s": clock.t(here.ts)}
        phase = {"phase": here.data["to"], "by": here.data.get("by")} | start
        if after is None:  # the session has not ended: the phase is still running
            out.append(phase | dict.fromkeys(("end", "end_s", "duration_s")))
            continue
        duration = _r((after.ts - here.ts).total_seconds())
        end = {"end": iso_utc(after.ts), "end_s": clock.t(after.ts), "duration_s": duration}
        out.append(phase | end)
    return out


def _infusion(events: Sequence[Event], clock: _Clock) -> dict[str, Any]:
    start = next((e for e in events if e.type == "infusion_started"), None)
    done = next((e for e in events if e.type == "infusion_completed"), None)
    stop = next((e for e in events if e.type == "infusion_stopped"), None)
    out: dict[str, Any] = {"started": start is not None, "completed": done is not None}
    if start is None:
        return out
    end = done or stop
    elapsed = done.data.get("elapsed_s") if done else None
    if elapsed is None and end is not None:
        elapsed = _r((end.ts - start.ts).total_seconds())
    out.update(
        {
            "started_at": iso_utc(start.ts),
            "started_s": clock.t(start.ts),
            "started_by": start.data.get("by"),
            "target_s": start.data.get("target_s"),
            "completed_at": iso_utc(done.ts) if done else None,
            "stopped_at": iso_utc(stop.ts) if stop else None,
            "stop_reason": stop.data.get("reason") if stop else None,
            "stopped_by": stop.data.get("by") if stop else None,
            "elapsed_s": elapsed,
            "_seq": start.seq,
        }
    )
    return out


def _nibp(events: Sequence[Event], clock: _Clock, infusion: dict[str, Any]) -> list[Record]:
    readings = nibp_readings(events)
    start_seq = infusion.pop("_seq", None)
    start_ts = parse_utc(infusion["started_at"]) if infusion.get("started_at") else None
    out: list[Record] = []
    for e, r in readings:
        since = _r((e.ts - start_ts).total_seconds()) if start_ts else None
        out.append({**clock.at(e.ts), "since_infusion_s": since, **r, "flags": [], "_seq": e.seq})
    if start_seq is not None:
        before = [r for r in out if r["_seq"] < start_seq]
        if before:
            before[-1]["flags"].append("baseline")
        # The reading nearest the end of the infusion's target time (40 min by default).
        target = float(infusion.get("target_s") or 0)
        during = [r for r in out if r["_seq"] > start_seq]
        if during:
            min(during, key=lambda r: abs(r["since_infusion_s"] - target))["flags"].append(
                "infusion_target"
            )
    discharge = next((e.seq for e in events if e.type == "discharged"), None)
    if discharge is not None:
        last = [r for r in out if r["_seq"] < discharge]
        if last:
            last[-1]["flags"].append("discharge")
    for r in out:
        del r["_seq"]
    return out


def _alarms(events: Sequence[Event], clock: _Clock) -> list[Record]:
    alarms: dict[str, Record] = {}
    for e in events:
        if not e.type.startswith("alarm_"):
            continue
        a = e.data["alarm"]
        rec = alarms.get(a["id"])
        if rec is None:
            raised = parse_utc(a["raised_at"])
            rec = alarms[a["id"]] = {
                **{k: a.get(k) for k in ("id", "code", "kind", "priority", "message", "value")},
                "limit": a.get("limit"),
                **clock.at(raised),
                **dict.fromkeys(ALARM_LATER.split()),
                "silenced": 0,
            }
        raised = parse_utc(rec["at"])
        match e.type:
            case "alarm_acknowledged" if rec["acknowledged_at"] is None:
                rec["acknowledged_at"] = iso_utc(e.ts)
                rec["acknowledged_by"] = e.data.get("by")
                rec["time_to_ack_s"] = _r((e.ts - raised).total_seconds())
            case "alarm_escalated" if rec["escalated_at"] is None:
                rec["escalated_at"] = iso_utc(e.ts)
            case "alarm_silenced":
                rec["silenced"] += 1
            case "alarm_cleared":
                rec["cleared_at"] = iso_utc(e.ts)
                rec["duration_s"] = _r((e.ts - raised).total_seconds())
            case _:
                pass
    return list(alarms.values())


def _calls(events: Sequence[Event], clock: _Clock) -> list[Record]:
    calls: list[Record] = []
    open_call: Record | None = None
    placed = None
    for e in events:
        if e.type == "call_placed":
            if open_call is not None:  # a reminder: the acknowledged call came back
                open_call["reminders"] += 1
                continue
            placed = e.ts
            open_call = {**clock.at(e.ts), **dict.fromkeys(CALL_LATER.split()), "escalations": 0}
            open_call["reminders"] = 0
            calls.append(open_call)
        elif open_call is None or placed is None:
            continue
        elif e.type == "call_escalated":
            open_call["escalations"] += 1
        elif e.type == "call_acknowledged" and open_call["acknowledged_at"] is None:
            open_call["acknowledged_at"] = iso_utc(e.ts)
            open_call["acknowledged_by"] = e.data.get("by")
            open_call["time_to_ack_s"] = _r((e.ts - placed).total_seconds())
        elif e.type == "call_cleared":
            open_call["cleared_at"] = iso_utc(e.ts)
            open_call["cleared_by"] = e.data.get("by")
            open_call["where"] = e.data.get("where")
            open_call["time_to_clear_s"] = _r((e.ts - placed).total_seconds())
            open_call = None
    return calls


def _checkins(events: Sequence[Event], clock: _Clock) -> dict[str, Any]:
    prompts = [
        {**clock.at(e.ts), "missed_previous": bool(e.data.get("escalated"))}
        for e in events
        if e.type == "checkin_due"
    ]
    recorded = _each(events, clock, ("checkin_recorded",), ("by", "note"))
    missed = sum(p["missed_previous"] for p in prompts)
    return {"prompts": prompts, "recorded": recorded, "missed": missed}


MUSIC_EVENTS = ("music_", "track_", "preview_", "volume_")
"""Prefixes of the event types that make the music timeline."""


def _music(events: Sequence[Event], clock: _Clock) -> dict[str, Any]:
    timeline = [
        {**clock.at(e.ts), "type": e.type, **e.data}
        for e in events
        if e.type.startswith(MUSIC_EVENTS)
    ]
    tracks: list[Record] = []
    for e in events:
        if e.type == "track_started":
            tracks.append(
                {"track": e.data["track"], "outputs": e.data.get("outputs"), **clock.at(e.ts)}
            )
        elif e.type == "track_ended":
            playing = [t for t in tracks if t["track"] == e.data["track"] and "ended_at" not in t]
            if playing:
                playing[-1] |= {"ended_at": iso_utc(e.ts), "played_s": e.data.get("played_s")}
    stopped = [e.data.get("reason") for e in events if e.type == "music_stopped"]
    return {"timeline": timeline, "tracks": tracks, "stopped": stopped}


def summary_of(rec: Record) -> dict[str, Any]:
    """The few key numbers of a record, for the ``report_ready`` event."""
    ox, inf = rec["oximetry"], rec["infusion"]
    counts = {k: len(rec[k]) for k in ("alarms", "calls", "overrides")}
    return (
        {"session_id": rec["session_id"], "duration_s": rec["total_monitored_s"]}
        | {
            "infusion_s": inf.get("elapsed_s"),
            "infusion_completed": inf["completed"],
            "nibp_readings": len(rec["nibp"]),
            "spo2_min": ox["spo2"]["min"],
            "hr_min": ox["hr"]["min"],
            "hr_max": ox["hr"]["max"],
        }
        | counts
        | {"emergency": bool(rec["emergencies"])}
    )


# === the vitals rows ======================================================================


def vitals_rows(
    events: Sequence[Event], vitals: Sequence[tuple[str, str, str]]
) -> list[dict[str, Any]]:
    """The rows of ``vitals.csv`` (as values, not text), in time order."""
    started = next((e for e in events if e.type == "session_started"), None)
    t0 = started.ts if started is not None else events[0].ts
    clock = _Clock(t0)
    samples = parse_samples(vitals)
    rows: list[tuple[datetime, dict[str, Any]]] = []
    keys = ("spo2", "hr", "pi", "quality", "source")
    rows += [(s["ts"], {"kind": "sample"} | {k: s.get(k) for k in keys}) for s in samples]
    for e, r in nibp_readings(events):
        rows.append((e.ts, {"kind": "nibp", **r}))
    for e in events:
        if e.type == "vitals_recorded" and ("spo2" in e.data or "hr" in e.data):
            row = {"kind": "manual", "spo2": e.data.get("spo2"), "hr": e.data.get("hr")}
            rows.append((e.ts, {**row, "source": "manual", "by": e.data.get("by")}))
    rows.sort(key=lambda r: r[0])
    return [
        {c: None for c in CSV_COLUMNS} | {"time": iso_utc(ts), "t_s": clock.t(ts)} | row
        for ts, row in rows
    ]
