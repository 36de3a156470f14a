"""The archive end to end: two real rooms, one patient moving between them, the archive
killed with -9 mid-session and restarted, the course complete and flagged."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.clinicd.ehr import Ehr
from tests.clinicd.support import ArchiveClient, ArchiveProcess
from tests.support.broker import Broker
from tests.support.daemon import RoomProcess, wait_until
from tests.support.probe import Probe

pytestmark = pytest.mark.e2e
PATIENT = "P-COURSE-7"


def plan(number: int, room: str) -> dict[str, Any]:
    """The clinic's plan for session ``number`` of the course."""
    return {
        "session_id": f"c7-s{number}-{room}",
        "patient_ref": PATIENT,
        "session_number": number,
        "music_mode": "no_music",
        "guidance": "breathing",
        "protocol": {"infusion_minutes": 3},
    }


@pytest.fixture
def rooms(tmp_path: Path, broker: Broker) -> Iterator[dict[str, tuple[RoomProcess, Probe]]]:
    """room-a and room-b: real roomd --simulate processes, each with a probe."""
    out: dict[str, tuple[RoomProcess, Probe]] = {}
    for name in ("room-a", "room-b"):
        workdir = tmp_path / name
        workdir.mkdir()
        room = RoomProcess(workdir, broker.port, room_id=name, time_scale=60)
        probe = Probe(broker.port, room.root)
        room.start()
        out[name] = (room, probe)
    for room, probe in out.values():
        probe.wait_for(lambda p=probe, r=room: p.retained.get(f"{r.root}/status") == b"online", 30)
    yield out
    for room, probe in out.values():
        room.stop()
        probe.close()


def begin(probe: Probe, p: dict[str, Any]) -> None:
    """Plan and start a session."""
    probe.publish("plan", json.dumps(p).encode(), retain=True)
    probe.wait_for(
        lambda: any(
            e["type"] == "session_configured" and e["data"]["plan"]["session_id"] == p["session_id"]
            for e in probe.events()
        ),
        15,
        f"{p['session_id']} configured",
    )
    assert probe.ok("start_session") == {"session_id": p["session_id"]}


def into_infusion(probe: Probe) -> None:
    """check-in … pre-infusion with everything confirmed, then the infusion running."""
    for _ in range(3):
        probe.ok("advance")
    probe.ok("confirm", item="readiness")
    probe.ok("confirm", item="consent")
    n = len([e for e in probe.events() if e["type"] == "nibp_result"])
    probe.ok("nibp_now")
    wait_until(
        lambda: len([e for e in probe.events() if e["type"] == "nibp_result"]) > n, 20, "NIBP"
    )
    assert probe.ok("advance") == {"phase": "infusion"}
    probe.ok("confirm", item="iv_line")
    probe.ok("start_infusion")


def finish(probe: Probe, session_id: str) -> None:
    """Infusion complete, debrief … discharge, ended."""
    probe.wait_for(
        lambda: any(
            e["type"] == "debrief_ready" and e["session_id"] == session_id for e in probe.events()
        ),
        40,
        "debrief ready",
    )
    for phase in ("debrief", "preparation", "discharge"):
        assert probe.ok("advance") == {"phase": phase}
    n = len([e for e in probe.events() if e["type"] == "nibp_result"])
    wait_until(
        lambda: len([e for e in probe.events() if e["type"] == "nibp_result"]) > n,
        20,
        "the discharge blood pressure",
    )
    for item in ("psych_ready", "reminders_given"):
        probe.ok("confirm", item=item)
    assert probe.ok("discharge") == {"phase": "ended"}


def journal(probe: Probe) -> list[dict[str, Any]]:
    """The room's whole journal, fetched with its events verb."""
    out: list[dict[str, Any]] = []
    since = 1
    while True:
        result = probe.ok("events", since_seq=since, limit=1000)
        out += result["events"]
        if not result["events"] or out[-1]["seq"] >= result["last_seq"]:
            return out
        since = out[-1]["seq"] + 1


def archived(db: Path, room_id: str) -> list[tuple[int, str]]:
    """(seq, type) of a room's events in the archive's SQLite file."""
    import sqlite3

    with sqlite3.connect(db) as c:
        return c.execute(
            "SELECT seq, type FROM events WHERE room_id = ? ORDER BY seq", (room_id,)
        ).fetchall()


def visit(message: str) -> str:
    """PV1-19 (the visit number: the session id) of a message."""
    pv1 = next(seg for seg in message.split("\r") if seg.startswith("PV1|"))
    return pv1.split("|")[19]


def test_course_across_two_rooms_with_the_archive_killed_mid_session(
    rooms: dict[str, tuple[RoomProcess, Probe]],
    archive: Any,
    clinician: ArchiveClient,
) -> None:
    ehr = Ehr()
    arch: ArchiveProcess = archive(
        f'[hl7]\nhost = "127.0.0.1"\nport = {ehr.port}\nsending_facility = "MTL"\n'
        "retry_min_s = 1\nretry_max_s = 2\n"
    )
    clinician.wait_for(clinician.online, 20, "archive online")
    a, b = rooms["room-a"][1], rooms["room-b"][1]

    # Session 1 in room-a, whole, with the patient's intentions written down at check-in
    # (the text never travels on events: the archive fetches it with the room's notes verb).
    begin(a, plan(1, "room-a"))
    a.ok("note", kind="intentions", text="To feel less numb with my children.")
    into_infusion(a)
    finish(a, "c7-s1-room-a")
    # Session 2 in room-b: the archive is killed with -9 during the infusion.
    begin(b, plan(2, "room-b"))
    into_infusion(b)
    arch.kill9()
    clinician.wait_for(
        lambda: clinician.retained.get("clinic/archive/status") == b"offline", 20, "last will"
    )
    time.sleep(1.0)  # a session minute of room-b's events while the archive is gone
    b.ok("record_vitals", sys=128, dia=84, hr=71, spo2=96)
    arch.start()
    clinician.wait_for(clinician.online, 20, "archive back online")
    finish(b, "c7-s2-room-b")
    # Sessions 3 to 6, alternating rooms, ended early by the clinician (short on purpose).
    # The two simulated rooms' clocks run 60x from their own start, so they disagree by
    # seconds of session time: the sessions are spaced by more than that (as real ones are).
    for n in range(3, 7):
        time.sleep(1.5)
        probe = a if n % 2 else b
        p = plan(n, "room-a" if n % 2 else "room-b")
        begin(probe, p)
        assert probe.ok("end_session", reason="e2e: short session")["phase"] == "ended"

    # Every event of both rooms, exactly once.
    for name in ("room-a", "room-b"):
        expected = [(e["seq"], e["type"]) for e in journal(rooms[name][1])]
        wait_until(
            lambda n=name, x=expected: archived(arch.db, n)[: len(x)] == x,
            30,
            f"the archive holds {name}'s journal",
        )

    rooms_reply = clinician.ok("rooms")
    assert [r["room_id"] for r in rooms_reply["rooms"]] == ["room-a", "room-b"]

    course = clinician.ok("course", patient_ref=PATIENT)
    sessions = course["sessions"]
    assert [s["session_number"] for s in sessions] == [1, 2, 3, 4, 5, 6]
    assert [s["room_id"] for s in sessions] == ["room-a", "room-b"] * 3
    one, two = sessions[0], sessions[1]
    assert one["end_reason"] == "discharged" and two["end_reason"] == "discharged"
    assert one["music_mode"] == "no_music" and one["guidance"] == "breathing"
    assert one["bp_baseline"]["sys"] > 0 and one["bp_peak"]["sys"] >= one["bp_baseline"]["sys"]
    assert two["spo2_min"] is not None and two["spo2_min"] <= 96
    assert one["infusion"]["completed"] is True
    assert sessions[5]["end_reason"] == "e2e: short session"
    # The note's text came from the room's notes verb, not from any event.
    assert one["notes_status"] == "fetched"
    assert [(n["kind"], n["text"]) for n in one["notes"]] == [
        ("intentions", "To feel less numb with my children.")
    ]
    assert two["notes"] == [] and two["notes_status"] == "fetched"
    leaked = [e for e in a.events() if "my children" in json.dumps(e)]
    assert leaked == [], "never on events"
    codes = {(f["code"], f["session_id"]) for f in course["flags"]}
    assert ("course_complete", "c7-s6-room-b") in codes
    assert ("termination_discussion", "c7-s5-room-a") in codes
    assert ("termination_discussion", "c7-s6-room-b") in codes
    assert ("too_soon", "c7-s2-room-b") in codes  # minutes apart, not 48 h
    assert not [f for f in course["flags"] if f["code"].startswith("number_")]

    session = clinician.ok("session", session_id="c7-s2-room-b")
    assert session == two
    unknown = clinician.command("course", patient_ref="P-NOBODY")
    assert unknown["ok"] is False and unknown["error"]["code"] == "invalid_payload"
    assert "patient_ref" in unknown["error"]["message"]
    # One ORU^R01 per ended session reached the EHR, sent by the archive (not the rooms).
    # The EHR validates every message with hl7apy strict and accepts each (AA).
    wait_until(lambda: len({visit(m) for m in ehr.received}) == 6, 30, "six messages")
    assert {visit(m) for m in ehr.received} == {s["session_id"] for s in sessions}
    msh = re.compile(r"^MSH\|\^~\\&\|ROOMD\^[0-9A-F]{16}\^EUI-64\|MTL\|")
    assert all(msh.search(m) for m in ehr.received)
    assert set(ehr.answers) == {"AA"}, ehr.errors
    ehr.close()
    assert arch.terminate() == 0
    clinician.wait_for(
        lambda: clinician.retained.get("clinic/archive/status") == b"offline", 10, "offline"
    )
