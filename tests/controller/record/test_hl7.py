"""The session's HL7 v2.6 ORU^R01, read back field by field."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.parser import parse_message

from controller.record import hl7
from controller.record.files import build_report, report_dir
from tests.controller.harness import Harness

SID = "s-001"
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
MADE = datetime(2026, 1, 5, 11, 30, 0, 250000, tzinfo=UTC)
DESAT_MINUTE = 6


def segments(message: str) -> list[list[str]]:
    """The message as segments of fields; ``seg[n]`` is field n (MSH: ``seg[n-1]``)."""
    assert message.endswith("\r") and "\n" not in message
    return [s.split("|") for s in message.rstrip("\r").split("\r")]


def hl7_to_dt(text: str) -> datetime:
    assert text.endswith("+0000"), text
    return datetime.strptime(text[:-5], "%Y%m%d%H%M%S.%f").replace(tzinfo=UTC)


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A session with a minute-by-minute varying SpO2, a 10-second desaturation in the middle
    of one minute, module and hand-entered BPs."""
    tmp = tmp_path_factory.mktemp("hl7")
    h = Harness(tmp)
    h.to_infusion_running()
    for minute in range(12):
        spo2, hr = 90 + minute % 8, 60 + minute
        if minute == DESAT_MINUTE:
            h.run(25, step=5, spo2=spo2, hr=hr)
            h.run(10, step=5, spo2=84, hr=hr + 30)
            h.run(25, step=5, spo2=spo2, hr=hr)
        else:
            h.run(60, step=5, spo2=spo2, hr=hr)
    h.nibp.finish(131, 84, 77)
    h.drain()
    h.ok("record_vitals", sys=140, dia=90, hr=81)
    h.run(30)
    h.ok("end_session", reason="test")
    events = h.journal.session_events(SID)
    vitals = h.journal.vitals(SID)
    out = report_dir(tmp, SID)
    build_report(events, vitals, out, room_id="room-1", created_at=MADE)
    rec = json.loads((out / "session.json").read_text())
    message = (out / "oru_r01.hl7").read_bytes().decode()
    h.close()
    return {"rec": rec, "vitals": vitals, "message": message, "events": events}


EUI = hl7.room_eui64("room-1")
ASSIGNER = f"ROOMD^{EUI}^EUI-64"


def minute_of(report: dict, ts: datetime) -> int:
    """The session minute ``ts`` falls in."""
    return int((ts - datetime.fromisoformat(report["rec"]["started_at"])).total_seconds() // 60)


def fed_samples(report: dict) -> dict[datetime, dict]:
    """The oximeter samples fed to the room, by their time."""
    return {
        datetime.fromisoformat(json.loads(p)["ts"].replace("Z", "+00:00")): json.loads(p)
        for _, kind, p in report["vitals"]
        if kind == "sample"
    }


def test_validates_with_hl7apy_strict(report: dict) -> None:
    message = parse_message(report["message"], validation_level=VALIDATION_LEVEL.STRICT)
    assert message.validate() is True
    (result,) = message.children.get("ORU_R01_PATIENT_RESULT")
    orders = result.children.get("ORU_R01_ORDER_OBSERVATION")
    obr_count = sum(s[0] == "OBR" for s in segments(report["message"]))
    assert len(orders) == obr_count > 1
    for order in orders:
        names = [c.name for c in order.children]
        assert names[0] == "OBR" and set(names[1:]) == {"ORU_R01_OBSERVATION"}


def test_header_patient_and_visit(report: dict) -> None:
    segs = segments(report["message"])
    assert [s[0] for s in segs[:3]] == ["MSH", "PID", "PV1"]
    assert {s[0] for s in segs[3:]} == {"OBR", "OBX"} and segs[3][0] == "OBR"
    msh = segs[0]
    assert msh[1] == "^~\\&"  # MSH-2
    assert msh[2] == ASSIGNER  # MSH-3: the application and the room's device identity
    assert msh[3] == "room-1"  # MSH-4
    assert msh[8] == "ORU^R01^ORU_R01"  # MSH-9
    assert msh[9].startswith("ROOMD") and len(msh[9]) <= 20  # MSH-10
    assert msh[11] == "2.6"  # MSH-12
    assert msh[17] == "UNICODE UTF-8"  # MSH-18
    assert msh[20].startswith("IHE_PCD_001^")  # MSH-21
    assert hl7_to_dt(msh[6]) == MADE  # MSH-7: when the message was made, not the session end
    pid = segs[1]
    assert pid[3] == "P-7F3A^^^room-1^ANON"  # PID-3: the pseudonym, assigned by the room
    assert pid[4] == "" and pid[5] == "^^^^^^S"  # PID-5: no name, only the pseudonym type
    assert len(pid) == 6, "no birth date or other demographic field"
    pv1 = segs[2]
    assert pv1[2] == "O" and pv1[3] == "room-1" and pv1[19] == SID
    assert hl7_to_dt(pv1[44]) == datetime.fromisoformat(report["rec"]["started_at"])
    assert hl7_to_dt(pv1[45]) == datetime.fromisoformat(report["rec"]["ended_at"])


def test_one_order_per_reading_no_observation_twice_in_one(report: dict) -> None:
    orders: list[tuple[list[str], list[list[str]]]] = []
    for seg in segments(report["message"])[3:]:
        if seg[0] == "OBR":
            orders.append((seg, []))
        else:
            orders[-1][1].append(seg)
    for n, (obr, obxs) in enumerate(orders, start=1):
        assert obr[1] == str(n)  # OBR-1
        assert obr[2] == f"{SID}^{ASSIGNER}"  # OBR-2: the session
        assert obr[3] == f"{SID}-{n}^{ASSIGNER}"  # OBR-3: this reading of it
        assert obr[4].startswith("182777000^")
        assert obxs, "an order without observations"
        keys = [(s[3], s[4]) for s in obxs]  # OBX-3 and OBX-4
        assert len(keys) == len(set(keys)), f"OBR {n} repeats an observation: {keys}"
        assert {hl7_to_dt(s[14]) for s in obxs} == {hl7_to_dt(obr[7])}  # observed together
    times = [hl7_to_dt(obr[7]) for obr, _ in orders]
    assert times == sorted(times)


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

    # Oximetry: each minute's lowest and highest SpO2 and pulse, as fed, at their own times.
    samples = fed_samples(report)
    auto = [s for s in obx if s[17].startswith("AMEAS")]
    spo2 = [(hl7_to_dt(s[14]), int(s[5])) for s in auto if s[3].startswith("150456^")]
    hr = [(hl7_to_dt(s[14]), int(s[5])) for s in auto if s[3].startswith("149530^")]
    assert all(samples[ts]["spo2"] == value for ts, value in spo2)
    assert all(samples[ts]["hr"] == value for ts, value in hr)
    assert [ts for ts, _ in hr] == [ts for ts, _ in spo2], "each kept sample: both values"
    minutes = {minute_of(report, ts) for ts in samples}
    for minute in minutes:
        fed = [p for ts, p in samples.items() if minute_of(report, ts) == minute]
        kept = [(ts, v) for ts, v in spo2 if minute_of(report, ts) == minute]
        spo2_ends = {min(p["spo2"] for p in fed), max(p["spo2"] for p in fed)}
        hr_ends = {min(p["hr"] for p in fed), max(p["hr"] for p in fed)}
        assert 1 <= len(kept) <= 4
        assert spo2_ends <= {v for _, v in kept}
        assert hr_ends <= {v for ts, v in hr if minute_of(report, ts) == minute}
        for ts, _ in kept:  # and nothing but extremes
            assert samples[ts]["spo2"] in spo2_ends or samples[ts]["hr"] in hr_ends
    assert len(minutes) >= 12 and len(spo2) <= 4 * len(minutes) < len(samples)

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
    assert sys_[1][17] == "AMEAS^auto-measurement^MDC"
    assert sys_[1][18] == f"{EUI}^^{EUI}^EUI-64~fake^ROOMD"  # OBX-18: the room, the driver
    assert sys_[2][17] == "MMEAS^manual-measurement^MDC" and sys_[2][16] == "dr-lee"
    assert len(sys_[2]) == 18, "a hand-entered value names no equipment"
    manual_hr = [s for s in obx if s[3].startswith("149530^") and s[17].startswith("MMEAS")]
    assert [int(s[5]) for s in manual_hr] == [81]


def test_a_desaturation_that_raised_an_alarm_is_in_the_message(report: dict) -> None:
    raised = [e for e in report["events"] if e.type == "alarm_raised"]
    assert "spo2_critical" in [e.data["alarm"]["code"] for e in raised]
    samples = fed_samples(report)
    desat = sorted(ts for ts, p in samples.items() if p["spo2"] == 84)
    assert {minute_of(report, ts) for ts in desat} == {DESAT_MINUTE}
    first_of_minute = min(ts for ts in samples if minute_of(report, ts) == DESAT_MINUTE)
    assert desat[0] > first_of_minute, "not the sample a once-a-minute thinning would keep"
    obx = [s for s in segments(report["message"]) if s[0] == "OBX"]
    reported = [(hl7_to_dt(s[14]), int(s[5])) for s in obx if s[3].startswith("150456^")]
    assert (desat[0], 84) in reported
    assert (desat[0], samples[desat[0]]["hr"]) in [
        (hl7_to_dt(s[14]), int(s[5])) for s in obx if s[3].startswith("149530^")
    ]


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
        sender=hl7.Sender("room&1"),
        created_at=T0 + timedelta(minutes=2),
    )
    segs = segments(msg)
    pid = segs[1]
    assert len(pid) == 6
    assert hl7.unescape(pid[3].split("^")[0]) == nasty
    assert hl7.unescape(pid[3].split("^")[3]) == "room&1"
    assert segs[0][3] == "room\\T\\1"
    (obx,) = [s for s in segs if s[0] == "OBX"]
    assert hl7.unescape(obx[16]) == "dr|lee" and obx[5] == "120"
    assert hl7.hl7_time(T0 + timedelta(milliseconds=7)) == "20260105090000.007+0000"
    parsed = parse_message(msg, validation_level=VALIDATION_LEVEL.STRICT)
    assert parsed.validate() is True


def test_control_id_is_stable_per_session_record() -> None:
    assert hl7.control_id("s-1", 10) == hl7.control_id("s-1", 10)
    assert hl7.control_id("s-1", 10) != hl7.control_id("s-1", 11)
    assert len(hl7.control_id("x" * 64, 10**9)) <= 20


def test_minute_extremes_keep_each_minutes_lowest_and_highest() -> None:
    rows = [
        (0, None, None),
        (10, 95, 70),
        (20, 80, 70),  # the minute's lowest SpO2, though not its first sample
        (50, 95, 90),  # its highest pulse
        (61, 96, 71),
        (119, 96, 71),  # a steady minute: only its first sample
        (185, None, None),
        (190, 94, None),
    ]
    series = [(T0 + timedelta(seconds=t), {"spo2": s, "hr": h}) for t, s, h in rows]
    assert hl7.minute_extremes(series, T0) == [1, 2, 3, 4, 7]
    assert hl7.minute_extremes(series, T0, keys=("spo2",)) == [1, 2, 4, 7]
    assert hl7.minute_extremes([], T0) == []


def test_the_sender_identity() -> None:
    eui = hl7.room_eui64("room-1")
    assert eui == hl7.room_eui64("room-1") != hl7.room_eui64("room-2")
    assert len(eui) == 16 and int(eui, 16) >= 0 and eui == eui.upper()
    assert int(eui[:2], 16) & 0x03 == 0x02, "locally administered, not a group address"
    assert hl7.Sender("room-1").eui64 == eui
    assert hl7.Sender("room-1").authority == "room-1"
    assert hl7.Sender("").authority == "ROOMD"
    given = hl7.Sender("room-1", assigning_authority="clinic-7", device_eui64="0123456789abcdef")
    assert (given.authority, given.eui64) == ("clinic-7", "0123456789ABCDEF")
    with pytest.raises(ValueError, match="device_eui64"):
        hl7.Sender("room-1", device_eui64="01:23:45")
    with pytest.raises(ValueError, match="assigning_authority"):
        hl7.Sender("room-1", assigning_authority="")


def test_a_session_with_no_reading_still_validates() -> None:
    # A session ended before any reading (the archive has no 1 Hz oximetry) keeps its order.
    start = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    message = hl7.oru_r01(
        session_id="s-empty",
        patient_ref="P-1",
        start=start,
        end=start + timedelta(minutes=3),
        observations=[],
        message_control_id="ROOMD1",
        sender=hl7.Sender("room-1"),
    )
    parsed = parse_message(message, validation_level=VALIDATION_LEVEL.STRICT)
    assert parsed.validate() is True
    assert [s[0] for s in segments(message)] == ["MSH", "PID", "PV1", "OBR"]
