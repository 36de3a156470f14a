"""The session record's directory: the files, what they hold, and a rebuild from the journal."""

from __future__ import annotations

import csv
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from controller.models import parse_utc
from controller.record.files import FILES, rebuild_from_journal, report_dir
from controller.record.summary import CSV_COLUMNS, vitals_rows
from tests.controller.harness import Harness
from tests.controller.record.sessions import SID, times_of


def test_files_written_and_report_ready(session: dict[str, Any]) -> None:
    out: Path = session["out"]
    assert out == Path(out.parent.parent, "reports", SID)
    assert sorted(p.name for p in out.iterdir()) == sorted(FILES)
    ready = session["ready"]
    assert ready["path"] == str(out / "report.html")
    assert len(json.dumps(ready)) < 1024, "report_ready stays small"
    s = ready["summary"]
    assert s["session_id"] == SID and s["infusion_completed"] is True
    assert (s["spo2_min"], s["hr_min"], s["hr_max"]) == (86, 58, 112)
    assert (s["nibp_readings"], s["calls"], s["overrides"], s["emergency"]) == (7, 1, 1, False)


def test_csv_round_trips(session: dict[str, Any]) -> None:
    rows = vitals_rows(session["events"], session["vitals"])
    with (session["out"] / "vitals.csv").open(newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        # The header names each column with its unit.
        assert header[:6] == ["time_utc", "t_s", "kind", "spo2_pct", "hr_bpm", "pi_pct"]
        assert header[7:10] == ["sys_mmHg", "dia_mmHg", "map_mmHg"]
        read = [dict(zip(CSV_COLUMNS, row, strict=True)) for row in reader]
    assert len(read) == len(rows)
    for got, want in zip(read, rows, strict=True):
        for col in CSV_COLUMNS:
            expected = "" if want[col] is None else str(want[col])
            assert got[col] == expected, (col, got, want)
    samples = [json.loads(p) for _, k, p in session["vitals"] if k == "sample"]
    csv_samples = [r for r in read if r["kind"] == "sample"]
    assert [int(r["spo2"]) for r in csv_samples] == [s["spo2"] for s in samples]
    assert [r["time"] for r in csv_samples] == [s["ts"] for s in samples]
    nibp = [r for r in read if r["kind"] == "nibp"]
    assert [(int(r["sys"]), int(r["dia"])) for r in nibp] == [
        (n["sys"], n["dia"]) for n in session["rec"]["nibp"]
    ]
    start = times_of(session, "session_started")[0]
    for r in read:
        assert float(r["t_s"]) == (parse_utc(r["time"]) - start).total_seconds()


def test_events_jsonl_is_the_journal(session: dict[str, Any]) -> None:
    lines = (session["out"] / "events.jsonl").read_text().splitlines()
    assert [json.loads(line)["seq"] for line in lines] == [e.seq for e in session["events"]]
    assert json.loads(lines[-1])["type"] == "session_ended"


def test_html_is_self_contained(session: dict[str, Any]) -> None:
    html = (session["out"] / "report.html").read_text()
    assert "<svg" in html and "</svg>" in html
    for forbidden in ("http://", "https://", "<script", "@import", "url(", "<link", "<img"):
        assert forbidden not in html, forbidden
    assert "P-7F3A" in html and "spo2_critical" in html and "infusion_target" in html


def test_rebuild_from_journal_gives_the_same_files(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    h.to_infusion_running(music_mode="no_music", playlist=[])
    h.run(5 * 60)
    h.ok("checkin", note="calm | eyes ^closed & <quiet>")
    h.run(10 * 60)  # the next prompt goes unanswered
    h.ok("record_vitals", spo2=95, hr=66)
    h.ok("emergency", reason="laryngospasm")
    h.run(60)
    h.ok("end_session", reason="transferred to ED")
    # The HL7 message carries the time it was made (MSH-7); everything else is the journal's.
    made = h.clock.now()
    first = rebuild_from_journal(h.journal, SID, tmp_path, created_at=made)
    out = report_dir(tmp_path, SID)
    before = {name: (out / name).read_bytes() for name in FILES}
    again = rebuild_from_journal(h.journal, SID, tmp_path, created_at=made)
    assert again == first
    assert {name: (out / name).read_bytes() for name in FILES} == before
    later = rebuild_from_journal(h.journal, SID, tmp_path, created_at=made + timedelta(hours=1))
    assert later == first
    after = {name: (out / name).read_bytes() for name in FILES}
    assert {n for n in FILES if after[n] != before[n]} == {"oru_r01.hl7"}
    msh_before, msh_after = (
        m["oru_r01.hl7"].split(b"\r", 1)[0].split(b"|") for m in (before, after)
    )
    assert [i for i, (a, b) in enumerate(zip(msh_before, msh_after, strict=True)) if a != b] == [6]
    assert after["oru_r01.hl7"].split(b"\r", 1)[1] == before["oru_r01.hl7"].split(b"\r", 1)[1]
    rec = json.loads(before["session.json"])
    assert rec["end_reason"] == "transferred to ED" and rec["discharged_at"] is None
    assert rec["infusion"]["stop_reason"] == "emergency" and not rec["infusion"]["completed"]
    assert [e["reason"] for e in rec["emergencies"]] == ["laryngospasm"]
    assert [c["note"] for c in rec["checkins"]["recorded"]] == ["calm | eyes ^closed & <quiet>"]
    assert len(rec["checkins"]["prompts"]) == 3 and rec["checkins"]["missed"] == 1
    assert rec["manual_vitals"][0]["spo2"] == 95
    assert "emergency" in [a["code"] for a in rec["alarms"]]
    assert all("discharge" not in n["flags"] for n in rec["nibp"])
    html = before["report.html"].decode()
    assert "&lt;quiet&gt;" in html and "<quiet>" not in html
    with pytest.raises(LookupError):
        rebuild_from_journal(h.journal, "no-such-session", tmp_path)
    h.close()


def test_report_dir_keeps_session_ids_inside_reports(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    for sid in ("../../etc", "s 1/2", ".", "..", "/abs", "a\\b", "\u202e"):
        out = report_dir(tmp_path, sid)
        assert out.parent == reports and out.name not in ("", ".", ".."), sid
        assert "/" not in out.name and "\\" not in out.name
    assert report_dir(tmp_path, "../../etc").name.startswith("_.._etc~")
    assert report_dir(tmp_path, "s 1/2").name.startswith("s_1_2~")


def test_a_plain_session_id_is_its_folder(tmp_path: Path) -> None:
    for sid in ("2026-01-05-r3-am", "S_1", "s.1", "x" * 64):
        assert report_dir(tmp_path, sid) == tmp_path / "reports" / sid


def test_session_ids_that_look_alike_get_their_own_folders(tmp_path: Path) -> None:
    ids = ["rt/1", "rt:1", "rt_1", "rt 1", "rt?1", "RT_1", "rt_1~", "../rt_1", "rt/1 "]
    dirs = [report_dir(tmp_path, sid) for sid in ids]
    assert len(set(dirs)) == len(ids), dirs
    assert dirs[0] == report_dir(tmp_path, "rt/1"), "the same id, the same folder"
