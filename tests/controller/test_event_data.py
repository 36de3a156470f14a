"""Every event's data has a model, and everything the room emits fits it.

Whole sessions run on the harness and every journal event is checked against its model; a
scan of controller/ finds every type the code can emit and compares it with ``EVENT_DATA``.
"""

from __future__ import annotations

import ast
import re
import typing
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

import controller
from controller.clock import FakeClock
from controller.event_data import EVENT_DATA, DeviceName, EventData, check_event_data
from controller.eventlog import StorageStatus
from controller.events import (
    AudioFailed,
    CallHeld,
    CallPressed,
    ClockSync,
    CommandReceived,
    DeviceChanged,
    LinkDown,
    LinkUp,
    PlanReceived,
)
from controller.models import Devices
from controller.record.files import rebuild_from_journal
from controller.storage import StorageFull
from tests.controller.harness import ALL_OK, Harness, make_config

RESERVED: dict[str, str] = {}
"""Types with a model that the code does not emit yet, each with the contract that reserves
it (the v2 contract's events get their models with the code that emits them)."""

# === the table ============================================================================


@pytest.mark.parametrize(("type_", "model"), EVENT_DATA.items())
def test_every_type_has_a_documented_model_and_a_fitting_example(
    type_: str, model: type[EventData]
) -> None:
    assert issubclass(model, EventData)
    assert model.__doc__ and model.__doc__ != EventData.__doc__, f"{type_}: say when it is emitted"
    assert model.model_config.get("extra") == "forbid" and model.model_config.get("frozen")
    if model.model_fields:
        assert model.example, f"{type_} has fields but no example"
    check_event_data(type_, model.example)
    with pytest.raises(ValueError, match=f"event '{type_}': field 'surprise'"):
        check_event_data(type_, model.example | {"surprise": 1})


def test_data_models_are_frozen() -> None:
    data = EVENT_DATA["link_restored"].model_validate({"offline_s": 1.0, "queued": 0})
    with pytest.raises(ValidationError):
        data.queued = 3  # type: ignore[misc]


def test_device_names_are_the_room_states_devices() -> None:
    assert set(typing.get_args(DeviceName)) == set(Devices.model_fields)


@pytest.mark.parametrize(
    ("type_", "data", "message"),
    [
        ("no_such_event", {}, "event type 'no_such_event' has no data model"),
        ("phase_changed", {"from": "lunch", "to": "infusion", "by": "a"}, "field 'from'"),
        ("phase_changed", {"to": "infusion", "by": "a"}, "field 'from': Field required"),
        ("nibp_due", {"next_due_at": 1767600000}, "field 'next_due_at'"),
        ("nibp_due", {"next_due_at": "soon"}, "field 'next_due_at'"),
        ("link_restored", {"offline_s": 3.0, "queued": "4"}, "field 'queued'"),
        ("vitals_recorded", {"by": "a", "source": "oximeter"}, "field 'source'"),
        ("alarm_raised", {"alarm": {"id": "x"}}, "field 'alarm.code'"),
        ("debrief_ready", {"extra": 1}, "field 'extra'"),
        ("call_placed", {"reminder": object()}, "data is not JSON"),
    ],
)
def test_data_that_does_not_fit_is_refused_naming_type_and_field(
    type_: str, data: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message) as info:
        check_event_data(type_, data)
    assert type_ in str(info.value)


def test_the_api_page_lists_every_type_with_its_fields() -> None:
    page = (Path(__file__).parents[2] / "docs" / "mqtt-api.md").read_text(encoding="utf-8")
    section = page.split("#### Event types and their `data`")[1].split("\n### ")[0]
    rows = [r.split(" | ") for r in section.splitlines() if r.startswith("| `")]
    assert [r[0].strip("| `") for r in rows] == list(EVENT_DATA), "the table's types, in order"
    for cell, _, data in rows:
        type_ = cell.strip("| `")
        model = EVENT_DATA[type_]
        documented = set(re.findall(r"`(\w+\??)`:", data))
        fields = {
            (f.alias or n) + ("" if f.is_required() else "?") for n, f in model.model_fields.items()
        }
        assert documented == fields, type_


# === whole sessions: every event the room journals fits its model ========================


def finish_nibp(h: Harness, sys: int = 128, dia: int = 82) -> None:
    if h.nibp.measuring:
        h.nibp.finish(sys, dia, 78)
        h.drain()


def music_session(h: Harness) -> None:
    """A music session with nearly everything on the way: gates, calls, alarms, devices."""
    h.plan()
    h.ok("start_session")
    h.ok("music", action="preview", track="b.ogg", offset_s=30, duration_s=10)
    h.ok("lights", level=0.3)
    for _ in range(3):
        h.ok("advance")
    assert not h.cmd("advance").ok  # the safety gate, not met
    h.deliver(CommandReceived("launch", b'{"request_id": "x1", "by": "a"}'))  # unknown verb
    h.deliver(CommandReceived("advance", b"not json"))  # no request_id to name
    h.ok("confirm", item="readiness")
    h.ok("confirm", item="consent")
    h.vitals()
    h.ok("nibp_now")
    h.nibp.fail("weak_signal")
    h.drain()
    h.ok("nibp_now")
    finish_nibp(h, 124, 79)
    h.ok("record_vitals", hr=71, spo2=98)
    h.ok("advance")
    h.ok("start_infusion", override={"reason": "line checked by the anaesthetist"})
    h.ok("music", action="volume", output="headphones", level=0.6)
    for action in ("pause", "resume", "skip", "stop", "play"):
        h.ok("music", action=action)
    # the patient call: placed, escalated, acknowledged, reminded, cleared twice
    h.deliver(CallPressed())
    h.run(30)
    h.ok("call_ack")
    h.run(180)
    h.deliver(CallHeld())
    h.deliver(CallPressed())
    h.ok("call_clear")
    # a high alarm escalates, is silenced, latches, is acknowledged; a medium one is acked
    h.run(70, spo2=85)
    h.ok("alarm_silence", seconds=60)
    h.run(5)
    h.ok("alarm_ack", alarm_id=h.events("alarm_latched")[-1]["alarm"]["id"])
    h.run(15, spo2=90)
    h.ok("alarm_ack", alarm_id=h.events("alarm_raised")[-1]["alarm"]["id"])
    h.run(5, spo2=88)  # worse than at the acknowledgement: it sounds again
    h.ok("alarm_ack", alarm_id=h.events("alarm_reactivated")[-1]["alarm"]["id"])
    h.run(5)
    # devices, the link, the clock, an audio output, the oximeter's own complaints
    h.deliver(DeviceChanged("oximeter", "lost", "no data for 5 s"))
    h.deliver(DeviceChanged("oximeter", "ok", "/dev/ttyUSB0"))
    h.deliver(LinkDown())
    h.clock.advance(40)
    h.deliver(LinkUp())
    h.deliver(ClockSync(False))
    h.deliver(ClockSync(True))
    h.deliver(AudioFailed("headphones", "unplugged"))
    h.run(20, spo2=None)  # nothing from the oximeter: vitals_stale
    for _ in range(3):
        h.vitals(None, None, quality="sensor_off")
        h.run(5, spo2=None)
    h.ok("record_vitals", sys=132, dia=84)
    # the infusion completes; the playlist ends; on to discharge
    for _ in range(4):
        h.run(10 * 60)
        finish_nibp(h)
    h.audio.finish()
    h.drain()
    for _ in range(3):
        h.ok("advance")
    finish_nibp(h)
    h.run(5)
    h.ready_to_leave()
    h.ok("discharge")


def no_music_session(h: Harness) -> None:
    """No music: check-ins (one missed), a stopped infusion, an emergency, end_session."""
    h.deliver(PlanReceived(b'{"session_id": "s-9", "patient_ref": "Jane Doe"}'))
    h.to_infusion_running(music_mode="no_music", playlist=[])
    h.plan(session_id="s-002")  # refused: a session is running
    h.run(5 * 60)
    h.run(5 * 60)  # nobody checked in: escalated
    h.ok("checkin", note="calm, eyes closed")
    h.ok("checkin")
    h.ok("stop_infusion", reason="patient asked to stop")
    h.ok("emergency", reason="laryngospasm")
    h.ok("end_session", reason="transferred to ED")


def emergency_mid_music(h: Harness) -> None:
    """An emergency while the music plays and the infusion runs."""
    h.to_infusion_running()
    h.run(60)
    h.ok("emergency", reason="airway")
    h.ok("end_session", reason="transferred to ED")


def manual_monitoring(h: Harness) -> None:
    """No oximeter: SpO2 and heart rate by hand, one prompt missed."""
    h.to_infusion_running()
    h.run(5 * 60)
    h.ok("record_vitals", spo2=97, hr=70)
    h.run(10 * 60)  # the next prompt goes unanswered
    h.ok("end_session", reason="test: manual monitoring")


def clinical_session(h: Harness) -> None:
    """The patient's choice, notes, the dose, an adverse event, the debrief's timer and the
    side effects seen."""
    h.library.tracks = {"a.ogg": 1500.0, "b.ogg": 1500.0, "c.ogg": 600.0}
    h.to_pre_infusion()
    h.ok("choose", playlist=["a.ogg", "b.ogg"], guidance="clinician")
    h.ok("note", kind="intentions", text="to be kinder to myself")
    h.ok("record_dose", weight_kg=70, dose_mg_per_kg=0.5, total_mg=35)
    h.ok("advance")
    h.ok("confirm", item="iv_line")
    h.ok("start_infusion")
    h.ok("adverse_event", kind="nausea", severity="mild", action="paused", text="brief")
    for _ in range(4):
        h.run(10 * 60)
        finish_nibp(h)
    h.audio.finish()
    h.drain()
    h.ok("advance")
    h.run(30 * 60)
    h.ok("side_effects", items=["nausea"], note="settled by the end")
    h.ok("end_session", reason="test: clinical documentation")


SESSIONS: dict[str, Callable[[Harness], None]] = {
    "clinical": clinical_session,
    "music": music_session,
    "manual": manual_monitoring,
    "no_music": no_music_session,
    "emergency": emergency_mid_music,
}


@pytest.fixture(scope="module")
def journals(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[tuple[str, Any]]]:
    """Each session's journal as (type, data), plus the resumed room and the record."""
    out: dict[str, list[tuple[str, Any]]] = {}
    for name, drive in SESSIONS.items():
        data_dir = tmp_path_factory.mktemp(name)
        if name == "manual":
            config = make_config(room={"id": "room-1", "monitoring": "manual"})
            h = Harness(data_dir, config, devices={**ALL_OK, "oximeter": "absent"})
        else:
            h = Harness(data_dir)
        drive(h)
        out[name] = [(e.type, e.data) for e in h.journal.events_since(1, 10**6)]
        if name == "music":
            # What the daemon's report callback returns is report_ready's data.
            ready = rebuild_from_journal(h.journal, "s-001", data_dir)
            out[name].append(("report_ready", ready))
        h.close()
    # A restart mid-infusion on the same journal, then a journal found damaged at start-up.
    data_dir, clock = tmp_path_factory.mktemp("resumed"), FakeClock()
    h = Harness(data_dir, clock=clock)
    h.to_infusion_running()
    h.run(60)
    h.close()
    clock.advance(45)
    h = Harness(data_dir, clock=clock)
    # Room.journal_recovered here; the core's redesign moves it to Room.health.
    announcer = h.room.health
    announcer.journal_recovered(str(data_dir / "journal.sqlite.damaged-x"), 812, "failed check")
    h.run(30)
    # The disk fills and frees again: what Health says of the journal's storage.
    full = StorageFull(data_dir / "journal.sqlite", "database or disk is full")
    status = StorageStatus(full, "critical", 0.0, 3, 0, 0, 0, 0)
    h.room.health.on_storage(status)
    h.room.health.on_storage(replace(status, fault=None, space="ok", free_mb=900.0, waiting=0))
    h.run(5)
    # What the core loop records when the process did not run for a while (SIGSTOP).
    h.room.log.emit("loop_stalled", {"gap_s": 31.2})
    out["resumed"] = [(e.type, e.data) for e in h.journal.events_since(1, 10**6)]
    h.close()
    return out


@pytest.mark.parametrize("session", [*SESSIONS, "resumed"])
def test_every_journal_event_fits_its_model(
    journals: dict[str, list[tuple[str, Any]]], session: str
) -> None:
    problems = []
    for type_, data in journals[session]:
        try:
            check_event_data(type_, data)
        except ValueError as exc:
            problems.append(str(exc))
    assert problems == []


def test_the_sessions_emit_every_type(journals: dict[str, list[tuple[str, Any]]]) -> None:
    seen = {type_ for events in journals.values() for type_, _ in events}
    assert set(EVENT_DATA) - seen - set(RESERVED) == set(), "drive these types above too"


def test_optional_fields_are_seen_both_ways(journals: dict[str, list[tuple[str, Any]]]) -> None:
    """The models' optional fields are optional because the code omits them sometimes."""
    data = [(t, d) for events in journals.values() for t, d in events]
    for type_, field in [
        ("call_placed", "reminder"),
        ("music_stopped", "by"),
        ("gate_checked", "reasons"),
        ("gate_checked", "override"),
        ("vitals_recorded", "sys"),
        ("vitals_recorded", "spo2"),
    ]:
        has = {field in d for t, d in data if t == type_}
        assert has == {True, False}, (type_, field)
    notes = {d["note"] is None for t, d in data if t == "checkin_recorded"}
    assert notes == {True, False}


# === the code's emit sites against the table ==============================================

CONTROLLER = Path(controller.__file__).parent
EMIT = {"_emit", "emit"}
"""What the core calls to journal an event (``EventLog.emit``; ``_emit`` in older code)."""
DYNAMIC: dict[tuple[str, str], set[str]] = {
    # the transport actions name their event in Music._actions' table
    ("outputs.py", "_transport"): {"music_paused", "music_resumed", "music_skipped"},
    # a prompt names its event in its Prompt (session.CHECKIN, monitoring.MANUAL_VITALS)
    ("prompts.py", "give_prompt"): {"checkin_due", "vitals_due"},
}
"""Emit sites whose type the scan cannot read, with the types they produce."""


def _functions(tree: ast.Module) -> Iterator[ast.FunctionDef]:
    return (n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef))


def _calls(node: ast.AST, names: set[str]) -> Iterator[ast.Call]:
    for call in ast.walk(node):
        if isinstance(call, ast.Call):
            func = call.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            if called in names:
                yield call


def _type_arg(call: ast.Call, index: int, keyword: str) -> ast.expr | None:
    if len(call.args) > index:
        return call.args[index]
    return next((k.value for k in call.keywords if k.arg == keyword), None)


def scan_emitted_types() -> tuple[set[str], set[tuple[str, str]], int]:
    """Every event type controller/ can emit, the unreadable sites, and the sites read.

    A type is a literal at an ``_emit`` call, a literal either side of a conditional, a local
    assigned one of those, or a parameter of the calling function whose callers pass it.
    """
    modules = {p.name: ast.parse(p.read_text()) for p in sorted(CONTROLLER.rglob("*.py"))}
    unreadable: set[tuple[str, str]] = set()

    def literals(node: ast.expr | None, fn: ast.FunctionDef, where: str) -> set[str]:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return {node.value}
        if isinstance(node, ast.IfExp):
            return literals(node.body, fn, where) | literals(node.orelse, fn, where)
        if isinstance(node, ast.Name):
            assigned = [
                n.value
                for n in ast.walk(fn)
                if isinstance(n, ast.Assign)
                and any(isinstance(t, ast.Name) and t.id == node.id for t in n.targets)
            ]
            if assigned:
                return set().union(*(literals(v, fn, where) for v in assigned))
            params = [a.arg for a in fn.args.args if a.arg != "self"]
            if node.id in params:
                return forwarded(fn.name, params.index(node.id), node.id)
        unreadable.add((where, fn.name))
        return DYNAMIC.get((where, fn.name), set())

    def forwarded(name: str, index: int, keyword: str) -> set[str]:
        return {
            type_
            for where, tree in modules.items()
            for fn in _functions(tree)
            for call in _calls(fn, {name})
            for type_ in literals(_type_arg(call, index, keyword), fn, where)
        }

    types: set[str] = set()
    sites = 0
    for where, tree in modules.items():
        for fn in _functions(tree):
            for call in _calls(fn, EMIT):
                type_arg = _type_arg(call, 0, "type_")
                if type_arg is None or isinstance(type_arg, ast.Call):
                    continue  # an adapter's emit of an inbox message, not a journal event
                sites += 1
                types |= literals(type_arg, fn, where)
    return types, unreadable, sites


def test_the_code_emits_exactly_the_types_with_models() -> None:
    types, unreadable, sites = scan_emitted_types()
    assert sites > 40, "the scan found too few emit sites: has _emit been renamed?"
    assert unreadable <= set(DYNAMIC), "an emit site's type cannot be read: add it to DYNAMIC"
    assert types - set(EVENT_DATA) == set(), "emitted types without a model in event_data.py"
    assert set(EVENT_DATA) - types == set(RESERVED), "models for types the code never emits"


def test_the_scan_reads_conditional_local_and_forwarded_types() -> None:
    types, _, _ = scan_emitted_types()
    # device_* via a local from a conditional; alarm_latched via _transition's callers
    assert {"device_connected", "device_lost", "alarm_latched", "music_skipped"} <= types
