"""The archive's window on the room's record code: the summary and the ORU^R01 of a session
built from archived events alone (no 1 Hz vitals)."""

from __future__ import annotations

from mqtt_bridge.clinicd.record import oru_message, session_record
from tests.clinicd.support import session_events


def test_the_record_of_archived_events() -> None:
    rec = session_record(session_events("s1", 1))
    assert rec["session_id"] == "s1" and rec["patient_ref"] == "P-1"
    assert [r["sys"] for r in rec["nibp"]] == [120, 150]
    assert "baseline" in rec["nibp"][0]["flags"]
    assert rec["oximetry"]["samples"] == 0  # the archive keeps events, not the vitals stream


def test_the_message_carries_the_session_and_its_blood_pressures() -> None:
    text = oru_message(session_events("s1", 1), "room-3")
    segments = text.rstrip("\r").split("\r")
    assert segments[0].startswith("MSH|") and "ORU^R01" in segments[0]
    pv1 = next(s for s in segments if s.startswith("PV1|")).split("|")
    assert (pv1[3], pv1[19]) == ("room-3", "s1")
    obx = [s.split("|") for s in segments if s.startswith("OBX|")]
    assert sorted(int(o[5]) for o in obx if "NONINV_SYS" in o[3]) == [120, 150]
