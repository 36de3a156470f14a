"""The session's HL7 v2.6 ORU^R01, read back field by field."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta

import pytest

from controller import hl7
from controller.report import build_report, report_dir
from tests.controller.harness import Harness

SID = "s-001"
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def segments(message: str) -> list[list[str]]:
    """The message as segments of fields; ``seg[n]`` is field n (MSH: ``seg[n-1]``)."""
    assert message.endswith("\r") and "\n" not in message
    return [s.split("|") for s in message.rstrip("\r").split("\r")]


def hl7_to_dt(text: str) -> datetime:
    assert text.endswith("+0000"), text
    return datetime.strptime(text[:-5], "%Y%m%d%H%M%S.%f").replace(tzinfo=UTC)


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A session with a minute-by-minute varying SpO2, module and hand-entered BPs."""
    tmp = tmp_path_factory.mktemp("hl7")
    h = Harness(tmp)
    h.to_infusion_running()
    for minute in range(12):
        h.run(60, step=5, spo2=90 + minute % 8, hr=60 + minute)
    h.nibp.finish(131, 84, 77)
    h.drain()
    h.ok("record_vitals", sys=140, dia=90, hr=81)
    h.run(30)
    h.ok("end_session", reason="test")
    events = h.journal.session_events(SID)
    vitals = h.journal.vitals(SID)
    out = report_dir(tmp, SID)
    build_report(events, vitals, out, room_id="room-1")
    rec = json.loads((out / "session.json").read_text())
    message = (out / "oru_r01.hl7").read_bytes().decode()
    h.close()
    return {"rec": rec, "vitals": vitals, "message": message, "events": events}


def test_header_patient_and_order(report: dict) -> None:
    segs = segments(report["message"])
    assert [s[0] for s in segs[:4]] == ["MSH", "PID", "PV1", "OBR"]
    assert {s[0] for s in segs[4:]} == {"OBX"}
    msh = segs[0]
    assert msh[1] == "^~\\&"  # MSH-2
    assert msh[2] == "ROOMD"  # MSH-3
    assert msh[3] == "room-1"  # MSH-4
    assert msh[8] == "ORU^R01^ORU_R01"  # MSH-9
    assert msh[9].startswith("ROOMD") and len(msh[9]) <= 20  # MSH-10
    assert msh[11] == "2.6"  # MSH-12
    assert msh[17] == "UNICODE UTF-8"  # MSH-18
    assert msh[20].startswith("IHE_PCD_001^")  # MSH-21
    assert hl7_to_dt(msh[6]) == datetime.fromisoformat(report["rec"]["ended_at"])  # MSH-7
    pid = segs[1]
    assert pid[3] == "P-7F3A^^^^ANON"  # PID-3: the pseudonym only
    assert len(pid) == 4, "no name, birth date or other demographic field"
    pv1 = segs[2]
    assert pv1[2] == "O" and pv1[3] == "room-1" and pv1[19] == SID
    obr = segs[3]
    assert obr[2].split("^")[0] == SID and obr[4].startswith("182777000^")
    assert hl7_to_dt(obr[7]) == datetime.fromisoformat(report["rec"]["started_at"])
    assert hl7_to_dt(obr[8]) == datetime.fromisoformat(report["rec"]["ended_at"])


def test_observations_codes_units_values_and_times(report: dict) -> None:
    obx = [s for s in segments(report["message"]) if s[0] == "OBX"]
    assert [int(s[1]) for s in obx] == list(range(1, len(obx) + 1))  # OBX-1
    units = {
        "150456^MDC_PULS_OXIM_SAT_O2^MDC": "262688^MDC_DIM_PERCENT^MDC",
        "149530^MDC_PULS_OXIM_PULS_RATE^MDC": "264864^MDC_DIM_BEAT_PER_MIN^MDC",
        "150021^MDC_PRESS_BLD_NONINV_SYS^MDC": "266016^MDC_DIM_MMHG^MDC",
        "150022^MDC_PRESS_BLD_NONINV_DIA^MDC": "266016^MDC_DIM_MMHG^MDC",
        "150023^MDC_PRESS_BLD_NONINV_MEAN^MDC": "266016^MDC_DIM_MMHG^MDC",
    }
    for s in obx:
        assert s[2] == "NM" and units[s[3]] == s[6] and s[11] == "R"
    times = [hl7_to_dt(s[14]) for s in obx]
    assert times == sorted(times)

    # SpO2: one per minute, each a sample that was fed, at its own time.
    samples = {
        datetime.fromisoformat(json.loads(p)["ts"].replace("Z", "+00:00")): json.loads(p)
        for _, kind, p in report["vitals"]
        if kind == "sample"
    }
    spo2 = [(hl7_to_dt(s[14]), int(s[5])) for s in obx if s[3].startswith("150456^")]
    start = datetime.fromisoformat(report["rec"]["started_at"])
    minutes = {int((t - start).total_seconds() // 60) for t in samples}
    assert len(spo2) == len(minutes)
    for ts, value in spo2:
        assert samples[ts]["spo2"] == value
    auto_hr = [s for s in obx if s[3].startswith("149530^") and s[17].startswith("AMEAS")]
    hr = [(hl7_to_dt(s[14]), int(s[5])) for s in auto_hr]
    assert len(hr) == len(minutes)
    assert all(samples[ts]["hr"] == value for ts, value in hr)
    gaps = [(b - a).total_seconds() for (a, _), (b, _) in itertools.pairwise(spo2)]
    assert all(55 <= g <= 65 for g in gaps[1:])

    # Every blood pressure: the module's (AMEAS, driver) and the hand-entered (MMEAS, clinician).
    sys_ = [s for s in obx if s[3].startswith("150021^")]
    dia = [s for s in obx if s[3].startswith("150022^")]
    mean = [s for s in obx if s[3].startswith("150023^")]
    nibp = report["rec"]["nibp"]
    assert [int(s[5]) for s in sys_] == [n["sys"] for n in nibp] == [124, 131, 140]
    assert [int(s[5]) for s in dia] == [n["dia"] for n in nibp]
    assert [int(s[5]) for s in mean] == [n["map"] for n in nibp]
    assert [hl7_to_dt(s[14]) for s in sys_] == [
        datetime.fromisoformat(n["at"].replace("Z", "+00:00")) for n in nibp
    ]
    assert sys_[1][17] == "AMEAS^auto-measurement^MDC" and sys_[1][18] == "fake"
    assert sys_[2][17] == "MMEAS^manual-measurement^MDC" and sys_[2][16] == "dr-lee"
    manual_hr = [s for s in obx if s[3].startswith("149530^") and s[17].startswith("MMEAS")]
    assert [int(s[5]) for s in manual_hr] == [81]


def test_text_is_escaped() -> None:
    nasty = "P|7^F&3~A\\x"
    assert hl7.unescape(hl7.escape(nasty)) == nasty
    assert hl7.escape("a|b^c&d~e\\f\rg") == "a\\F\\b\\S\\c\\T\\d\\R\\e\\E\\f\\X0D\\g"
    obs = [hl7.Observation(T0 + timedelta(seconds=5), "sys", 120, "manual", "dr|lee")]
    msg = hl7.oru_r01(
        session_id="s^1",
        patient_ref=nasty,
        start=T0,
        end=T0 + timedelta(minutes=1),
        observations=obs,
        message_control_id="C1",
        room_id="room&1",
    )
    segs = segments(msg)
    pid = segs[1]
    assert len(pid) == 4
    assert hl7.unescape(pid[3].split("^")[0]) == nasty
    assert segs[0][3] == "room\\T\\1"
    (obx,) = [s for s in segs if s[0] == "OBX"]
    assert hl7.unescape(obx[16]) == "dr|lee" and obx[5] == "120"
    assert hl7.hl7_time(T0 + timedelta(milliseconds=7)) == "20260105090000.007+0000"


def test_control_id_is_stable_per_session_record() -> None:
    assert hl7.control_id("s-1", 10) == hl7.control_id("s-1", 10)
    assert hl7.control_id("s-1", 10) != hl7.control_id("s-1", 11)
    assert len(hl7.control_id("x" * 64, 10**9)) <= 20


def test_periodic_takes_the_first_valid_value_of_each_minute() -> None:
    series = [
        (T0 + timedelta(seconds=s), v)
        for s, v in [(0, None), (10, 95), (50, 80), (61, 96), (119, 97), (185, None), (190, 94)]
    ]
    assert [series[i][1] for i in hl7.periodic(series, T0)] == [95, 96, 94]
