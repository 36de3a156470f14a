"""The clinical record on the tablet, in headless Chromium against a real broker and room.

One session's story, in file order: a note in every phase (the kind preset from the phase,
the text never on `events`, `state` or `replies`), the 4,000-character refusal on the page,
the dose with a warning, the confirmations, an adverse event, the side effects and the
debrief's length at the debrief, and the session's notes fetched on the page's own MQTT 5
response topic. Screenshots go to tests/tablet/artifacts/ (clinical-forms.png is the one in
docs/screens/).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.tablet.conftest import ARTIFACTS, USER, Stack, node_tests
from tests.tablet.test_tablet import Page

pytestmark = pytest.mark.e2e

HERE = Path(__file__).resolve().parent
SESSION = "tablet-clinical-1"
NOTES: dict[str, str] = {}  # phase -> the text written there (unique, to look for anywhere)


@pytest.fixture(scope="module")
def page(browser: Any, stack: Stack) -> Iterator[Page]:
    yield Page(browser, stack)


def probe(stack: Stack) -> Any:
    assert stack.probe is not None
    return stack.probe


def said(page: Page, box: str, needle: str, timeout: float = 20.0) -> str:
    """Wait for the words under a form (its `said` line) to hold ``needle``."""
    return page.wait_text(f"#cl-{box}-said", needle, timeout)


def write_note(page: Page, stack: Stack, phase: str, kind: str) -> None:
    """Write a note in ``phase``: the kind is preset from the phase; the room records it."""
    page.wait(lambda: page.css("#cl-note-kind").get_attribute("value") == kind, 10, f"{kind}")
    text = f'{phase} note {uuid.uuid4().hex[:8]}: patient said it\'s "calm" <b>here</b>'
    NOTES[phase] = text
    area = page.css("#cl-note-text")
    area.clear()
    area.send_keys(text)
    page.wait_text("#cl-note-count", f"{len(text)} / 4,000")
    page.click("#cl-note-send")
    said(page, "note", f"{kind} note, {len(text)} characters")
    assert page.css("#cl-note-text").get_attribute("value") == ""
    probe(stack).wait_event("note_recorded", 10, kind=kind, chars=len(text))


def advance(stack: Stack, page: Page, label: str) -> None:
    probe(stack).ok("advance")
    page.wait_text("#r-phase", label)


def test_clinical_logic_unit_tests_pass() -> None:
    """clinical.js's pure functions under ``node --test``."""
    node_tests(HERE / "clinical.test.js")


def test_notes_at_check_in_integration_and_intentions(page: Page, stack: Stack) -> None:
    plan = {
        "session_id": SESSION,
        "patient_ref": "P-C11N",
        "session_number": 1,
        "music_mode": "music",
        "playlist": ["intentions/arvo-part.ogg", "intentions/strings.ogg"],
        "protocol": {"infusion_minutes": 1, "call_escalate_s": 600, "call_reminder_s": 3600},
        "alarms": {"stale_s": 60},
    }
    probe(stack).publish("plan", json.dumps(plan).encode(), retain=True)
    page.login()
    page.open_room()
    page.act("#session-actions [data-verb=start_session]", "start_session")
    page.wait_text("#r-phase", "Check-in")
    write_note(page, stack, "check_in", "checkin")
    advance(stack, page, "Integration")
    write_note(page, stack, "integration", "integration")
    advance(stack, page, "Intentions")
    write_note(page, stack, "intentions", "intentions")


def test_a_note_over_4000_characters_is_refused_on_the_page(page: Page, stack: Stack) -> None:
    before = len([e for e in probe(stack).events() if e["type"] == "note_recorded"])
    page.js("const t = document.getElementById('cl-note-text'); t.value = 'x'.repeat(4000);")
    page.css("#cl-note-text").send_keys("y")  # the input event, as a clinician types
    page.wait_text("#cl-note-count", "4,001 / 4,000 — 1 too many")
    assert "over" in (page.css("#cl-note-count").get_attribute("class") or "").split()
    page.click("#cl-note-send")
    said(page, "note", "4,001 characters, at most 4,000: shorten it (not sent)")
    page.shot("clinical-note-over-4000-refused")
    # Nothing went to the room, and the text is kept for shortening.
    assert len(page.css("#cl-note-text").get_attribute("value")) == 4001
    assert len([e for e in probe(stack).events() if e["type"] == "note_recorded"]) == before
    page.css("#cl-note-text").clear()


def test_the_dose_is_computed_editable_and_its_warning_shown(page: Page, stack: Stack) -> None:
    advance(stack, page, "Pre-infusion")
    write_note(page, stack, "pre_infusion", "observation")
    # mg/kg prefilled with the protocol's (the room publishes it on state).
    page.wait(lambda: page.css("#cl-per-kg").get_attribute("value") == "0.5", 10, "0.5 mg/kg")
    page.css("#cl-weight").send_keys("72")
    page.wait(lambda: page.css("#cl-total").get_attribute("value") == "36", 5, "36 mg")
    total = page.css("#cl-total")
    total.clear()
    total.send_keys("50")  # editable: a total that is not weight × dose is recorded, warned
    page.click("#cl-dose-send")
    warning = said(page, "dose", "WARNING")
    assert "total_mg 50 mg is not weight × dose" in warning
    assert "warn" in (page.css("#cl-dose-said").get_attribute("class") or "").split()
    event = probe(stack).wait_event("dose_recorded", 10, total_mg=50.0)
    assert event["data"]["weight_kg"] == 72.0 and event["data"]["warnings"]
    page.wait_text("#cl-documented", "Dose 50 mg (72 kg × 0.5 mg/kg)")


def test_mindfulness_and_blindfold_are_confirmed_beside_discharge_readiness(
    page: Page, stack: Stack
) -> None:
    for item, label in (
        ("mindfulness_done", "Mindfulness done"),
        ("blindfold_offered", "Blindfold offered"),
    ):
        page.act(f"#session-actions [data-item={item}]", "confirm")
        page.wait_text(f"#session-actions [data-item={item}]", f"{label} ✓")
        probe(stack).wait_event("confirmed", 10, item=item)
        page.wait_text("#cl-documented", f"{label} by {USER}")
    # They sit with the discharge gate's confirmations, which are not done yet.
    assert "✓" not in page.text("#session-actions [data-item=psych_ready]")


def test_an_adverse_event_in_the_infusion(page: Page, stack: Stack) -> None:
    p = probe(stack)
    for item in ("readiness", "consent"):
        p.ok("confirm", item=item)
    p.ok("nibp_now")
    p.wait_event("nibp_result", 15)
    advance(stack, page, "Infusion")
    write_note(page, stack, "infusion", "observation")
    page.css("#cl-ae-kind").send_keys("vomiting")
    page.click("#cl-ae-send")
    said(page, "ae", "Severity: mild, moderate or severe (not sent)")
    page.js("document.getElementById('cl-ae-severity').value = 'moderate'")
    page.css("#cl-ae-action").send_keys("bowl, antiemetic given")
    page.css("#cl-ae-text").send_keys("settled after 5 min")
    page.click("#cl-ae-send")
    said(page, "ae", "vomiting (moderate), action: bowl, antiemetic given")
    event = p.wait_event("adverse_event_recorded", 10, kind="vomiting", severity="moderate")
    assert event["data"]["by"] == USER and event["data"]["note_id"]
    page.wait_text("#cl-documented", f"Adverse event by {USER}: vomiting (moderate)")


def test_side_effects_and_the_debrief_length_at_the_debrief(page: Page, stack: Stack) -> None:
    p = probe(stack)
    p.ok("confirm", item="iv_line")
    p.ok("start_infusion")
    p.wait_event("infusion_completed", 30)  # one room minute
    p.publish("sim/finish_playlist", b"{}")
    p.wait_event("debrief_ready", 30)
    advance(stack, page, "Debrief")
    # The debrief's length beside the phase timer: the range, then the least reached (20
    # room minutes: 20 s here).
    page.wait_text("#cl-debrief-due", "Debrief 20–30 min")
    write_note(page, stack, "debrief", "debrief")
    # The clinic's list as checkboxes, from the room's state.
    page.wait(lambda: len(page.all("#cl-effects input[type=checkbox]")) == 12, 10, "12 boxes")
    for item in ("nausea", "dizziness"):
        page.click(f"#cl-effects input[value='{item}']")
    page.css("#cl-effects-note").send_keys("dizzy on standing, resolved")
    page.click("#cl-effects-send")
    said(page, "effects", "nausea, dizziness")
    event = p.wait_event("side_effects_recorded", 10)
    assert event["data"]["items"] == ["nausea", "dizziness"] and event["data"]["note_id"]
    p.wait_event("debrief_due", 60, bound="least")
    page.wait_text("#cl-debrief-due", "Debrief 20 min reached: may end now")
    page.shot("clinical-debrief")
    advance(stack, page, "Preparation")
    write_note(page, stack, "preparation", "preparation")
    advance(stack, page, "Discharge")
    write_note(page, stack, "discharge", "observation")


def test_the_notes_come_on_the_pages_own_response_topic_and_never_on_events(
    page: Page, stack: Stack
) -> None:
    p = probe(stack)
    page.click("#cl-notes-fetch")
    said(page, "note", f"of session {SESSION}")
    page.wait(lambda: len(page.all("#cl-notes li")) >= len(NOTES), 10, "the notes listed")
    listed = [li.text for li in page.all("#cl-notes li")]
    for phase, text in NOTES.items():
        assert any(text in line for line in listed), (phase, listed)
    # The side effects' and the adverse event's notes are the session's notes too.
    assert any("dizzy on standing" in line for line in listed)
    assert any("settled after 5 min" in line for line in listed)
    # Markup typed in a note is shown as text, never run.
    assert not page.all("#cl-notes b")
    # The reply came only on a response topic of the page's own under replies/, with the
    # correlation data.
    with p.lock:
        messages = list(p.messages)
    private = [m for m in messages if p.leaf(m[0]).startswith("replies/")]
    assert len(private) == 1, [m[0] for m in private]
    topic, payload, retained, props = private[0]
    reply = json.loads(payload)
    assert topic == f"{stack.room.root}/replies/{reply['request_id']}"
    assert reply["request_id"].startswith("tab-") and not retained
    assert props.CorrelationData == reply["request_id"].encode()
    # No note's text anywhere else the room publishes: events, state, the shared replies,
    # any retained topic (only the page's own commands to the room carried it).
    elsewhere = [m for m in messages if not p.leaf(m[0]).startswith(("replies/", "cmd/"))]
    assert {p.leaf(m[0]) for m in elsewhere} >= {"events", "state", "replies", "status"}
    for phase, text in NOTES.items():
        secret = text.split(":")[0]  # "<phase> note <hex>"
        hits = [m[0] for m in elsewhere if secret.encode() in m[1]]
        assert not hits, (phase, hits)
    for text in ("dizzy on standing", "settled after 5 min"):
        assert not [m[0] for m in elsewhere if text.encode() in m[1]], text
    # Nor in the browser's storage (only the log-in fields are kept there).
    stored = page.js("return JSON.stringify(localStorage)")
    assert not [phase for phase, text in NOTES.items() if text.split(":")[0] in stored]
    # The card alone (the one in docs/screens/), the sticky bar and banner held in place so
    # that they do not cover its top.
    sticky = "for (const id of ['bar', 'banner']) document.getElementById(id).style.position = "
    page.js(sticky + "'static'")
    size = page.d.get_window_size()
    try:
        card = page.css("#clinical-card")
        page.d.set_window_size(size["width"], int(card.size["height"]) + 300)  # all of it
        page.js("arguments[0].scrollIntoView({block: 'start'})", card)
        ARTIFACTS.mkdir(exist_ok=True)
        card.screenshot(str(ARTIFACTS / "clinical-forms.png"))
    finally:
        page.d.set_window_size(size["width"], size["height"])
        page.js(sticky + "''")
    page.shot("clinical-forms-whole-page")


def test_logging_out_leaves_no_clinical_text_in_the_page(page: Page) -> None:
    page.css("#cl-note-text").send_keys("a draft nobody saved")
    page.click("#logout")
    if page.css("#ask").is_displayed():  # alarms still open: log out anyway
        page.css("#ask-ok").click()
    page.wait_css("#login-view:not([hidden])")
    assert page.css("#cl-note-text").get_attribute("value") == ""
    assert not page.all("#cl-notes li")
    page.login()
    page.open_room()
    page.wait_text("#r-phase", "Discharge")
    assert page.css("#cl-note-text").get_attribute("value") == ""
    assert "a draft nobody saved" not in page.js("return JSON.stringify(localStorage)")
