"""One session as the course sees it, built from the archived events and notes.

The contract's session summary (``course`` / ``session`` verbs) plus what the tablet's rolling
context shows of the previous session: the tracks that played and how the music ended, the
blood-pressure course, the infusion's outcome.

Decoding a session's ~150 events costs milliseconds, a course six times that: the summary of
the events is kept in the store (``session_summary``), computed by the idle worker once an
ended session's events came, or on the first query; the notes (which change apart from the
events) are put on it at each query.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from controller.models import Event, iso_utc
from mqtt_bridge.clinicd.record import session_record
from mqtt_bridge.clinicd.store import Store

PLAN_KEYS = ("music_mode", "playlist", "guidance")
"""What ``choose`` (event ``plan_amended``) may change after the plan."""
SPO2_ALARMS = ("spo2_low", "spo2_critical")


def chosen(events: Sequence[Event]) -> dict[str, Any]:
    """Music mode, playlist and guidance: the plan's, as amended in the session."""
    started = next((e for e in events if e.type == "session_started"), None)
    plan = (started.data.get("plan") or {}) if started is not None else {}
    out = {k: plan.get(k) for k in PLAN_KEYS}
    for e in events:
        if e.type == "plan_amended":
            changes = e.data.get("changes") or {}
            out |= {k: changes[k] for k in PLAN_KEYS if k in changes}
    return out


def _stamped(e: Event) -> dict[str, Any]:
    return {"at": iso_utc(e.ts), **e.data}


def spo2_min(events: Sequence[Event]) -> int | None:
    """The lowest SpO2 the archive knows of: the room's report summary (from every sample),
    hand-entered values, and the values of SpO2 alarms."""
    values: list[int] = []
    for e in events:
        d = e.data
        if e.type == "report_ready":
            low = (d.get("summary") or {}).get("spo2_min")
            values += [low] if low is not None else []
        elif e.type == "vitals_recorded" and d.get("spo2") is not None:
            values.append(d["spo2"])
        elif e.type == "alarm_raised" and (d.get("alarm") or {}).get("code") in SPO2_ALARMS:
            value = d["alarm"].get("value")
            values += [int(value)] if value is not None else []
    return min(values) if values else None


def _bp(reading: dict[str, Any] | None) -> dict[str, Any] | None:
    if reading is None:
        return None
    return {k: reading.get(k) for k in ("at", "sys", "dia", "map", "hr", "source")}


def summarize_session(
    room_id: str,
    events: Sequence[Event],
    notes: Sequence[dict[str, Any]],
    notes_state: str | None = None,
) -> dict[str, Any]:
    """The contract's session summary (and the rolling context's extras) of one session."""
    return with_notes(events_summary(room_id, events), notes, notes_state)


def with_notes(
    summary: dict[str, Any], notes: Sequence[dict[str, Any]], notes_state: str | None
) -> dict[str, Any]:
    """A session's summary with these notes (in the place the summary keeps for them)."""
    return summary | {
        "notes": [{k: n.get(k) for k in ("kind", "by", "ts", "text")} for n in notes],
        "notes_status": notes_state or "pending",
    }


def session_summary(store: Store, session_id: str) -> dict[str, Any] | None:
    """A session's summary with its notes, None if the archive has no event of it: the kept
    summary of its events if it is current, else one computed now (and kept)."""
    summary = _kept_or_computed(store, session_id)
    if summary is None:
        return None
    return with_notes(summary, store.notes_of(session_id), store.notes_state(session_id))


def keep_summaries(store: Store, among: Sequence[str] | None = None) -> int:
    """Compute and keep the summaries of the ended sessions that have none (all, or those
    ``among`` these: the worker's idle work); how many it did."""
    ids = store.unsummarized(among)
    for session_id in ids:
        _kept_or_computed(store, session_id)
    return len(ids)


def _kept_or_computed(store: Store, session_id: str) -> dict[str, Any] | None:
    summary = store.kept_summary(session_id)
    if summary is not None:
        return summary
    room = store.session_room(session_id)
    events = store.session_events(session_id) if room else []
    if room is None or not events:
        return None
    summary = events_summary(room, events)
    store.keep_summary(session_id, len(events), summary)
    return summary


def events_summary(room_id: str, events: Sequence[Event]) -> dict[str, Any]:
    """A session's summary from its events alone (its notes left empty, ``pending``)."""
    rec = session_record(events)
    last = {e.type: e for e in events}
    nibp = rec["nibp"]
    baseline = next((r for r in nibp if "baseline" in r["flags"]), nibp[0] if nibp else None)
    peak = max(nibp, key=lambda r: (r["sys"], r["dia"])) if nibp else None
    dose = last.get("dose_recorded")
    return {
        "session_id": rec["session_id"],
        "session_number": rec["session_number"],
        "patient_ref": rec["patient_ref"],
        "room_id": room_id,
        "started_at": rec["started_at"],
        "ended_at": rec["ended_at"],
        "end_reason": rec["end_reason"],
        **chosen(events),
        "dose": _stamped(dose) if dose is not None else None,
        "notes": [],
        "notes_status": "pending",
        "side_effects": [_stamped(e) for e in events if e.type == "side_effects_recorded"],
        "adverse_events": [_stamped(e) for e in events if e.type == "adverse_event_recorded"],
        "bp_baseline": _bp(baseline),
        "bp_peak": _bp(peak),
        "bp": [_bp(r) for r in nibp],
        "spo2_min": spo2_min(events),
        "alarms": [{"code": a["code"], "priority": a["priority"]} for a in rec["alarms"]],
        "calls": len(rec["calls"]),
        "infusion": {
            k: rec["infusion"].get(k) for k in ("started", "completed", "elapsed_s", "stop_reason")
        },
        "music_played": [
            {"track": t["track"], "played_s": t.get("played_s")} for t in rec["music"]["tracks"]
        ],
        "music_stopped": rec["music"]["stopped"],
        "emergencies": [e["reason"] for e in rec["emergencies"]],
        "events": len(events),
    }
