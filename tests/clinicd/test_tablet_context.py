"""The tablet's rolling context: its pure logic under node, and the page in a real headless
Chromium showing session N−1 from a real clinicd at check-in of session N."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from mqtt_bridge.clinicd.config import parse_config
from mqtt_bridge.clinicd.service import ClinicArchive
from mqtt_bridge.clinicd.store import Store
from tests.clinicd.support import T0, session_events
from tests.tablet.conftest import ARTIFACTS, Stack, browser, node_tests, stack  # noqa: F401
from tests.tablet.test_tablet import Page

HERE = Path(__file__).resolve().parent
PREVIOUS = [
    ("plan_amended", {"changes": {"playlist": "Cello and strings"}, "by": "dr-lee"}),
    ("side_effects_recorded", {"items": ["nausea"], "note": "passed by discharge", "by": "dr-lee"}),
]
NOTES = [
    {"note_id": "n1", "kind": "intentions", "by": "dr-lee", "ts": "2026-01-05T09:05:00.000Z",
     "text": "To let the tension in the shoulders go."},
    {"note_id": "n2", "kind": "debrief", "by": "dr-lee", "ts": "2026-01-05T10:00:00.000Z",
     "text": "The cello carried her through the second half."},
]  # fmt: skip


def test_context_logic_under_node() -> None:
    node_tests(HERE / "course_context.test.js")


@pytest.fixture
def archive(stack: Stack, tmp_path: Path) -> Iterator[ClinicArchive]:  # noqa: F811
    """clinicd on the tablet's broker, holding session 1 of the stack's patient (P-7F3A)."""
    db = tmp_path / "archive.sqlite"
    store = Store(db)
    # Session 1 twelve days before today's session 2: late by the seed's schedule (> 10 days).
    days = (datetime.now(UTC) - T0).total_seconds() / 86400 - 12
    store.add_events(
        "room-3", session_events("ctx-1", 1, days=days, patient_ref="P-7F3A", extra=PREVIOUS)
    )
    store.put_notes("ctx-1", NOTES)
    store.close()
    config = parse_config({"mqtt": {"port": stack.broker.port}, "archive": {"resync_s": 3600}})
    a = ClinicArchive(config, db)
    a.start()
    yield a
    a.stop()


def test_check_in_shows_the_previous_session(
    browser: Any,  # noqa: F811
    stack: Stack,  # noqa: F811
    archive: ClinicArchive,
) -> None:
    page = Page(browser, stack)
    page.login()
    stack.publish_plan("ctx-2")  # session 2 of P-7F3A, in room-7
    page.open_room()
    page.act("#session-actions [data-verb=start_session]", "start_session")
    page.wait_text("#r-phase", "Check-in")
    # (Selenium reads the text as shown: headings are upper-cased by the style sheet.)
    page.wait(lambda: page.text("#c-title").lower() == "previous session (1)", 15, "session 1")
    card = page.text("#context-card")
    for needle in (
        "Music: Cello and strings",
        "Played a.ogg (9 min)",
        "To let the tension in the shoulders go.",
        "The cello carried her through the second half.",
        "nausea (passed by discharge)",
        "baseline 120/80 · peak 150/95",
        "#1 ·",
        "room-3",
        "#2 ·",
        "in progress",
        "late",
        "12.0 days after session 1",
    ):
        assert needle in card, (needle, card)
    page.shot("clinicd-context-check-in")
    # The panel alone: docs/screens/rolling-context.png (the sticky bar held in place).
    page.js("document.getElementById('bar').style.position = 'static'")
    try:
        panel = page.css("#context-card")
        page.js("arguments[0].scrollIntoView({block: 'start'})", panel)
        panel.screenshot(str(ARTIFACTS / "rolling-context.png"))
    finally:
        page.js("document.getElementById('bar').style.position = ''")
    # Still there at intentions; gone once the infusion is near (pre-infusion).
    page.act("#advance", "advance")
    page.act("#advance", "advance")
    page.wait_text("#r-phase", "Intentions")
    assert page.css("#context-card").is_displayed()
    page.act("#advance", "advance")
    page.wait_text("#r-phase", "Pre-infusion")
    page.wait(lambda: not page.css("#context-card").is_displayed(), 10, "context hidden")
