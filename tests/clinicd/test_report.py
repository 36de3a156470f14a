"""The course report: the sessions side by side in local time, CSV, the command, and the page
as headless Chromium renders it."""

from __future__ import annotations

import csv
import io
import shutil
import subprocess
import sys
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from mqtt_bridge.clinicd.config import CourseSection
from mqtt_bridge.clinicd.report import course_csv, course_html
from mqtt_bridge.clinicd.store import Store
from mqtt_bridge.clinicd.verbs import Archive
from tests.clinicd.support import session_events

CHROMIUM = "/usr/bin/chromium"
SEED_DAYS = [0, 3.5, 7, 10.5, 17.5, 24.5]


def fill(db: Path) -> None:
    """Six sessions of P-1 in two rooms, with v2 events and a note in the first."""
    store = Store(db)
    for n, days in enumerate(SEED_DAYS, start=1):
        extra = []
        if n == 1:
            extra = [
                ("dose_recorded", {"weight_kg": 70, "dose_mg_per_kg": 0.5, "total_mg": 35}),
                ("side_effects_recorded", {"items": ["nausea", "dizziness"], "by": "dr-a"}),
            ]
        room = "room-3" if n % 2 else "room-5"
        store.add_events(
            room, session_events(f"s{n}", n, first_seq=n * 100, days=days, extra=extra)
        )
    note = {"note_id": "n1", "kind": "debrief", "by": "dr-a", "ts": "2026-01-05T10:00:00.000Z",
            "text": "<script>alert(1)</script> the cello helped"}  # fmt: skip
    store.put_notes("s1", [note])
    store.close()


@pytest.fixture
def course(tmp_path: Path) -> dict:
    fill(tmp_path / "a.sqlite")
    return Archive(Store(tmp_path / "a.sqlite"), CourseSection()).course("P-1")


def test_html_is_side_by_side_in_local_time_and_escaped(course: dict) -> None:
    page = course_html(course, ZoneInfo("America/Montreal"), "America/Montreal")
    assert page.count("<th scope=col>") == 6
    assert "Mon 2026-01-05 04:00" in page  # 09:00 UTC is 04:00 in Montreal in January
    assert "&lt;script&gt;" in page and "<script>" not in page
    assert "35 mg (0.5 mg/kg × 70 kg)" in page and "nausea, dizziness" in page
    assert "course_complete" in page and "termination_discussion" in page
    assert "@media print" in page and "landscape" in page


def test_csv_has_one_row_per_session(course: dict) -> None:
    rows = list(csv.DictReader(io.StringIO(course_csv(course))))
    assert [r["session_number"] for r in rows] == ["1", "2", "3", "4", "5", "6"]
    assert rows[0]["bp_baseline"] == "120/80" and rows[0]["bp_peak"] == "150/95"
    assert rows[0]["notes"] == "debrief: <script>alert(1)</script> the cello helped"
    assert rows[5]["flags"] == "termination_discussion;course_complete"
    assert rows[1]["room_id"] == "room-5" and rows[0]["started_at"] == "2026-01-05T09:00:00.000Z"


def test_the_command_writes_both_files_and_refuses_an_unknown_patient(tmp_path: Path) -> None:
    data = tmp_path / "data"
    fill(data / "archive.sqlite")
    config = tmp_path / "clinicd.toml"
    config.write_text("[course]\nsessions = 6\n")
    base = [sys.executable, "-m", "mqtt_bridge.clinicd", "report"]
    args = ["--config", str(config), "--data-dir", str(data), "--tz", "Europe/Paris"]
    out = tmp_path / "out"
    run = subprocess.run(
        [*base, "P-1", *args, "--out", str(out)], capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == str(out / "course.html")
    assert "Mon 2026-01-05 10:00" in (out / "course.html").read_text()
    assert (out / "course.csv").read_text().startswith("session_id,")
    run = subprocess.run([*base, "P-NONE", *args], capture_output=True, text=True, timeout=60)
    assert run.returncode == 1 and "patient_ref 'P-NONE'" in run.stderr
    run = subprocess.run(
        [*base, "P-1", *args[:4], "--tz", "Mars/Olympus"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 2 and "--tz" in run.stderr


def screenshot(page: Path, png: Path, size: str = "1500,1100") -> None:
    """Render ``page`` with Debian's headless Chromium into ``png`` (a window of ``size``)."""
    subprocess.run(
        [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         f"--screenshot={png}", f"--window-size={size}", page.as_uri()],
        capture_output=True, timeout=120, check=True,
    )  # fmt: skip


@pytest.mark.skipif(shutil.which(CHROMIUM) is None, reason="Debian's chromium is not installed")
def test_chromium_renders_the_page(tmp_path: Path, course: dict) -> None:
    page = tmp_path / "course.html"
    page.write_text(course_html(course, ZoneInfo("America/Montreal"), "America/Montreal"))
    png = tmp_path / "course.png"
    screenshot(page, png)
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000


@pytest.mark.skipif(shutil.which(CHROMIUM) is None, reason="Debian's chromium is not installed")
def test_a_two_session_course_as_a_clinician_reads_it(tmp_path: Path) -> None:
    """Sessions 1 and 2 of one patient in two rooms, side by side: the picture in
    docs/screens/course-report.png (tests/tablet/artifacts/course-report.png)."""
    from tests.tablet.conftest import ARTIFACTS

    first = [
        ("plan_amended", {"changes": {"playlist": "Cello and strings"}, "by": "dr-lee"}),
        ("dose_recorded", {"weight_kg": 64, "dose_mg_per_kg": 0.5, "total_mg": 32}),
        ("side_effects_recorded", {"items": ["nausea", "dizziness"], "by": "dr-lee"}),
        ("adverse_event_recorded", {"kind": "vomiting", "severity": "mild",
                                    "action": "bowl; ondansetron 4 mg", "by": "dr-lee"}),
    ]  # fmt: skip
    second = [("dose_recorded", {"weight_kg": 64, "dose_mg_per_kg": 0.5, "total_mg": 32})]
    store = Store(tmp_path / "a.sqlite")
    store.add_events("room-3", session_events("2026-01-05-r3-am", 1, patient_ref="P-7F3A",
                                              extra=first))  # fmt: skip
    store.add_events(
        "room-5",
        session_events("2026-01-08-r5-pm", 2, first_seq=100, days=3.25, patient_ref="P-7F3A",
                       extra=second),
    )  # fmt: skip
    notes = [
        ("intentions", "2026-01-05T09:05:00.000Z", "To let the tension in the shoulders go."),
        ("debrief", "2026-01-05T10:00:00.000Z", "The cello carried her through the second half."),
    ]
    store.put_notes(
        "2026-01-05-r3-am",
        [{"note_id": f"n{i}", "kind": k, "by": "dr-lee", "ts": ts, "text": text}
         for i, (k, ts, text) in enumerate(notes)],
    )  # fmt: skip
    store.put_notes("2026-01-08-r5-pm", [
        {"note_id": "n9", "kind": "integration", "by": "dr-kim", "ts": "2026-01-08T15:10:00.000Z",
         "text": "Sleeping better since the first session; wants the same music."},
    ])  # fmt: skip
    course = Archive(store, CourseSection()).course("P-7F3A")
    store.close()
    page = tmp_path / "course.html"
    page.write_text(course_html(course, ZoneInfo("Europe/London"), "Europe/London"))
    text = page.read_text()
    assert text.count("<th scope=col>") == 2
    assert "Cello and strings" in text and "vomiting (mild): bowl; ondansetron 4 mg" in text
    assert "Thu 2026-01-08 15:00" in text  # 3¼ days after Mon 09:00 UTC, London = UTC
    # Session 2 recorded no side effects: said so, never a blank that reads as "none".
    assert "<td>not recorded</td>" in text and "<td>none recorded</td>" in text
    ARTIFACTS.mkdir(exist_ok=True)
    png = ARTIFACTS / "course-report.png"
    screenshot(page, png, size="1200,720")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
