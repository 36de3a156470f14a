"""The clinician's tablet, driven in headless Chromium against a real broker and a real room.

The tests of this module share one broker, one room and one browser (starting them is most
of the cost) and run in file order, one session's story: log in, overview, the safety gate,
an alarm, a call, catching up after a reload, a room that stops updating, a room that goes
offline. Screenshots of each main screen go to tests/tablet/artifacts/.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.tablet.conftest import (
    ARTIFACTS,
    MANUAL_ROOM_ID,
    PASSWORD,
    ROOM_ID,
    TOP,
    USER,
    Stack,
    node_tests,
)

pytestmark = pytest.mark.e2e

HERE = Path(__file__).resolve().parent
COLOUR_PAIRS_JS = (HERE / "colour_pairs.js").read_text()
TABLET_SIZES = {"landscape": (1180, 820), "portrait": (820, 1180)}  # iPad Air-class, CSS px
BANNER_ORDER = ["high", "call", "medium", "low", "prompt"]


def luminance(rgb: list[float]) -> float:
    """WCAG 2 relative luminance of an sRGB colour (0..255 channels)."""

    def linear(c: float) -> float:
        c /= 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (linear(c) for c in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(fg: list[float], bg: list[float]) -> float:
    """WCAG 2 contrast ratio (1..21) of two sRGB colours."""
    hi, lo = sorted((luminance(fg), luminance(bg)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


class Page:
    """The tablet page as a clinician sees it, with bounded waits."""

    def __init__(self, driver: Any, stack: Stack) -> None:
        self.d = driver
        self.stack = stack
        self.window: tuple[int, int] = (1280, 1400)

    def css(self, selector: str) -> Any:
        return self.d.find_element("css selector", selector)

    def all(self, selector: str) -> list[Any]:
        return self.d.find_elements("css selector", selector)

    def text(self, selector: str) -> str:
        els = self.all(selector)
        return els[0].text if els else ""

    def wait(self, predicate: Any, timeout: float = 20.0, what: str = "condition") -> Any:
        deadline = time.monotonic() + timeout
        while True:
            try:
                value = predicate()
            except Exception:  # an element replaced under us: try again
                value = None
            if value:
                return value
            if time.monotonic() > deadline:
                self.shot(f"timeout-{what.replace(' ', '-')[:40]}")
                console = "\n".join(m["message"] for m in self.d.get_log("browser"))
                raise AssertionError(
                    f"timed out after {timeout}s waiting for {what}; the page's console:\n{console}"
                )
            time.sleep(0.1)

    def wait_css(self, selector: str, timeout: float = 10.0) -> Any:
        return self.wait(lambda: self.all(selector), timeout, selector)[0]

    def wait_text(self, selector: str, needle: str, timeout: float = 10.0) -> str:
        return self.wait(
            lambda: needle in self.text(selector) and self.text(selector),
            timeout,
            f"{needle!r} in {selector}",
        )

    def click(self, selector: str, timeout: float = 10.0) -> None:
        """Click the first enabled, visible match (found again if the page redrew it)."""

        def attempt() -> bool:
            found = [e for e in self.all(selector) if e.is_enabled() and e.is_displayed()]
            if not found:
                return False
            self.d.execute_script("arguments[0].scrollIntoView({block: 'center'})", found[0])
            found[0].click()
            return True

        self.wait(attempt, timeout, f"enabled {selector}")

    def reply(self, verb: str, state: str = "ok", timeout: float = 20.0) -> str:
        """Wait for the newest reply line of ``verb`` to be in ``state``; its text."""

        def newest() -> str | None:
            lines = self.all(f"#r-replies li.reply[data-verb='{verb}']")
            if lines and state in (lines[0].get_attribute("class") or "").split():
                return str(lines[0].text)
            return None

        return str(self.wait(newest, timeout, f"{state} reply to {verb}"))

    def act(self, selector: str, verb: str, state: str = "ok") -> str:
        self.click(selector)
        return self.reply(verb, state)

    def shot(self, name: str) -> Path:
        """A PNG of the whole page from its top (the window grows to fit, then shrinks)."""
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        size = self.d.get_window_size()
        height = int(self.js("return document.documentElement.scrollHeight"))
        self.js("window.scrollTo(0, 0)")
        self.d.set_window_size(size["width"], max(size["height"], min(height + 140, 3000)))
        try:
            self.d.save_screenshot(str(path))
        finally:
            self.d.set_window_size(size["width"], size["height"])
        return path

    def screen(self, name: str, width: int, height: int) -> Path:
        """A PNG of exactly what a ``width``×``height`` tablet shows, unscrolled."""
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        self.d.save_screenshot(str(path))
        return path

    def viewport(self, size: tuple[int, int] | None) -> None:
        """Size the window so the page's CSS viewport is a tablet's (None: back as it was).

        The window is resized rather than emulated (CDP device metrics): clicks after an
        emulation was cleared could land off their target.
        """
        if size is None:
            self.d.set_window_size(*self.window)
            return
        width, height = size
        now = self.d.get_window_size()
        self.window = (now["width"], now["height"])
        self.d.set_window_size(width, height)
        inner = self.js("return [window.innerWidth, window.innerHeight]")
        self.d.set_window_size(2 * width - inner[0], 2 * height - inner[1])

    def banner_levels(self) -> list[str]:
        """The banner's lines, top to bottom, by level (the "+N more" line left out)."""
        levels = []
        for line in self.all("#banner .line"):
            cls = [c for c in (line.get_attribute("class") or "").split() if c.startswith("level-")]
            if cls:
                levels.append(cls[0].removeprefix("level-"))
        return levels

    def assert_contrast(self, where: str) -> int:
        """Every visible text on screen has a WCAG contrast of at least 4.5:1; how many."""
        pairs = self.js(COLOUR_PAIRS_JS)
        low = [
            f"{ratio:.2f}:1 {p['what']} {p['text']!r} fg={p['fg']} bg={p['bg']}"
            for p in pairs
            if (ratio := contrast(p["fg"], p["bg"])) < 4.5
        ]
        assert not low, f"text below 4.5:1 on the {where}:\n" + "\n".join(low)
        return len(pairs)

    def js(self, script: str, *args: Any) -> Any:
        return self.d.execute_script(script, *args)

    def login(self, password: str = PASSWORD) -> None:
        self.d.get(self.stack.url)
        self.wait_css("#login")
        for field, value in (("#f-by", "dr-lee"), ("#f-user", USER), ("#f-pass", password)):
            el = self.css(field)
            el.clear()
            el.send_keys(value)
        self.css("#connect").click()

    def open_room(self) -> None:
        self.click(f".room-card[data-room='{ROOM_ID}']")
        self.wait_text("#title", ROOM_ID)

    def severe_console(self) -> list[str]:
        logs = self.d.get_log("browser")
        return [e["message"] for e in logs if e["level"] == "SEVERE"]


@pytest.fixture(scope="module")
def page(browser: Any, stack: Stack) -> Page:
    return Page(browser, stack)


def test_page_logic_unit_tests_pass() -> None:
    """The pure JS logic (formatting, gate text, staleness, paging) under ``node --test``."""
    node_tests(HERE / "logic.test.js")


def test_the_page_greys_out_verbs_like_the_room() -> None:
    """logic.js's verb/phase table is controller/phases.py's."""
    from controller.phases import VERB_PHASES

    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed (Debian: nodejs)")
    logic = TOP / "mqtt_bridge" / "tablet" / "logic.js"
    out = subprocess.run(
        [node, "-e", f"console.log(JSON.stringify(require({str(logic)!r}).VERB_PHASES))"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    page_table = {verb: set(phases) for verb, phases in json.loads(out).items()}
    assert page_table == {verb: set(phases) for verb, phases in VERB_PHASES.items()}


def test_mosquitto_serves_the_page_and_the_vendored_mqtt_js(stack: Stack) -> None:
    import urllib.request

    for name in ("index.html", "app.js", "logic.js", "style.css", "mqtt.min.js"):
        with urllib.request.urlopen(f"http://127.0.0.1:{stack.ws_port}/{name}", timeout=5) as r:
            assert r.status == 200 and len(r.read()) > 100, name


def test_a_wrong_password_is_refused_in_words(page: Page) -> None:
    page.login(password="wrong")
    page.wait_text("#login-error", "refused", timeout=10)
    assert page.css("#login-view").is_displayed()


def test_log_in_and_see_the_room_in_the_overview(page: Page) -> None:
    page.shot("01-login")
    assert page.assert_contrast("log-in screen") >= 8
    page.login()
    card = f".room-card[data-room='{ROOM_ID}']"
    page.wait_text(card, "ONLINE")
    assert "Idle" in page.text(card)
    page.wait_text(card, "SpO2 9")
    page.shot("02-overview")
    assert page.assert_contrast("overview") >= 8


def test_a_session_through_the_safety_gate(page: Page, stack: Stack) -> None:
    stack.publish_plan("tablet-session-1")
    page.open_room()
    page.act("#session-actions [data-verb=start_session]", "start_session")
    page.wait_text("#r-phase", "Check-in")
    assert "P-7F3A" in page.text("#r-session")
    # The limits in force beside their readings: the plan's SpO2 limit marked as the plan's.
    plan_limit = page.wait_css("#lim-spo2 .limit.plan[data-code=spo2_low]")
    assert plan_limit.text == "< 91 medium 10 s plan"
    assert "< 88 high 5 s" in page.text("#lim-spo2 .limit:not(.plan)[data-code=spo2_critical]")
    assert "> 120" in page.text("#lim-hr") and "sys > 180" in page.text("#lim-nibp")
    assert "escalate after 60 s" in page.text("#lim-other")
    assert page.text("#lim-other .limit.plan[data-code=stale_s]") == "no reading for 60 s plan"
    for phase in ("Integration", "Intentions", "Pre-infusion"):
        page.act("#advance", "advance")
        page.wait_text("#r-phase", phase)
    # What the gate needs, before anything is confirmed.
    page.wait(lambda: len(page.all("#r-gate li.unmet")) == 3, 10, "three unmet gate items")
    # Trying anyway: the room refuses in words, and the unmet items are listed.
    page.click("#advance")
    text = page.reply("advance", "error")
    assert "gate_not_met" in text and "readiness" in text and "consent" in text
    assert "nibp" in text, text
    page.wait_text("#r-gate-last", "not met")
    assert "no blood pressure" in page.text("#r-gate li[data-item=baseline_vitals]")
    page.shot("03-room-gate-not-met")
    page.act("#session-actions [data-item=readiness]", "confirm")
    page.act("#session-actions [data-item=consent]", "confirm")
    page.wait(lambda: len(page.all("#r-gate li.met")) == 2, 10, "readiness and consent met")
    page.act("[data-verb=nibp_now]", "nibp_now")
    page.wait(lambda: page.text("#v-nibp") not in ("", "--/--"), 10, "the NIBP reading")
    page.wait(lambda: len(page.all("#r-gate li.met")) == 3, 10, "baseline vitals met")
    page.act("#advance", "advance")
    page.wait_text("#r-phase", "Infusion")
    # In infusion the next step is the IV line, then the timer.
    page.wait(lambda: page.all("#r-gate li.unmet[data-item=iv_line]"), 10, "iv_line unmet")
    page.act("#session-actions [data-item=iv_line]", "confirm")
    page.act("#session-actions [data-verb=start_infusion]", "start_infusion")
    page.wait(lambda: " / " in page.text("#r-inf-text"), 10, "the infusion timer")
    page.shot("04-room-infusion")


@pytest.mark.parametrize("orientation", list(TABLET_SIZES))
def test_the_vitals_are_on_the_first_screen_of_a_tablet(page: Page, orientation: str) -> None:
    """SpO2, HR and the last blood pressure with its age, without scrolling."""
    width, height = TABLET_SIZES[orientation]
    page.viewport((width, height))
    try:
        page.click("#back")
        page.open_room()  # a room opens at its top
        page.wait(lambda: page.text("#v-nibp") not in ("", "--/--"), 10, "the NIBP reading")
        page.wait_text("#v-nibp-age", "ago")
        page.wait(lambda: page.text("#v-spo2") not in ("", "--"), 10, "SpO2")
        page.screen(f"room-view-{width}x{height}-{orientation}", width, height)
        view = page.js("return {h: window.innerHeight, w: window.innerWidth, y: window.scrollY}")
        assert (view["w"], view["h"], view["y"]) == (width, height, 0), view
        # Below the sticky bar and banner, above the bottom edge.
        covered = page.js(
            "return Math.max(document.getElementById('bar').getBoundingClientRect().bottom,"
            " document.getElementById('banner').hidden ? 0 :"
            " document.getElementById('banner').getBoundingClientRect().bottom)"
        )
        for sel in ("#v-spo2", "#v-hr", "#v-nibp", "#v-nibp-age", "#lim-spo2"):
            box = page.js(
                f"return document.querySelector('{sel}').getBoundingClientRect().toJSON()"
            )
            assert box["top"] >= covered and box["bottom"] <= height, (sel, box, covered)
            assert box["right"] <= width, (sel, box)
    finally:
        page.viewport(None)


def test_an_alarm_from_the_patient_is_loud_and_acknowledged(page: Page, stack: Stack) -> None:
    assert stack.probe is not None
    stack.probe.publish("sim/incident", json.dumps({"kind": "desaturation"}).encode())
    item = page.wait_css("#r-alarms li.alarm.high[data-code=spo2_critical]", timeout=10)
    assert "active" in item.text or "latched" in item.text
    page.wait(lambda: "HIGH ALARM" in page.text("#banner"), 5, "the banner")
    assert page.css("#banner").is_displayed()
    page.wait(
        lambda: any(s["kind"] == "high" for s in page.js("return tablet.debug.sounds")),
        5,
        "the high-priority sound",
    )
    page.shot("05-room-alarm")
    # A call and a medium alarm (the sensor comes off) beside the high one: high stays first.
    stack.probe.publish("sim/press_call", b"{}")
    stack.probe.publish("sim/incident", json.dumps({"kind": "sensor_off"}).encode())
    page.wait(
        lambda: {"high", "call", "medium"} <= set(page.banner_levels()),
        10,
        "a high alarm, the call and a medium alarm in the banner",
    )
    levels = page.banner_levels()
    assert levels == sorted(levels, key=BANNER_ORDER.index), levels
    assert levels[0] == "high" and "HIGH ALARM" in page.text("#banner .line:first-child")
    assert levels.index("call") < levels.index("medium")
    page.shot("banner-order-high-alarm-then-call-then-medium")
    assert page.assert_contrast("room view with high, medium and call") >= 40
    # The call and a medium alarm do not share a colour (banner line, room view).
    colours = page.js(
        "const bg = (s) => getComputedStyle(document.querySelector(s)).backgroundColor;"
        "return [bg('#banner .level-call'), bg('#banner .level-medium'),"
        " bg('#r-call'), bg('#r-alarms li.alarm.medium')]"
    )
    assert colours[0] != colours[1] and colours[2] != colours[3], colours
    stack.probe.publish("sim/incident", json.dumps({"kind": "recover"}).encode())
    page.click("#back")
    page.wait_text(f".room-card[data-room='{ROOM_ID}']", "HIGH: SpO2")
    page.shot("06-overview-alarm")
    page.open_room()
    # Silence (120 s of room time: 2 s here at time scale 60), then acknowledge.
    page.click("[data-verb=alarm_silence][data-seconds='120']")
    assert "silenced" in page.reply("alarm_silence")
    page.click("#r-alarms li[data-code=spo2_critical] button[data-verb=alarm_ack]")
    page.reply("alarm_ack")
    page.wait(
        lambda: not page.all("#r-alarms li.alarm[data-code=spo2_critical]:not(.acknowledged)"),
        10,
        "spo2_critical acknowledged",
    )
    stack.probe.publish("sim/incident", json.dumps({"kind": "recover"}).encode())


def test_a_call_is_acknowledged_and_cleared(page: Page, stack: Stack) -> None:
    assert stack.probe is not None
    stack.probe.publish("sim/press_call", b"{}")  # still open from the alarm test: no change
    page.wait_text("#r-call", "PATIENT CALLING")
    page.wait(lambda: "PATIENT CALL" in page.text("#banner"), 5, "the call in the banner")
    page.shot("07-room-call")
    page.act("[data-verb=call_ack]", "call_ack")
    page.wait_text("#r-call", "acknowledged")
    page.act("[data-verb=call_clear]", "call_clear")
    page.wait_text("#r-call", "No call")


def test_hand_entered_vitals_are_prompted_and_a_missed_prompt_is_an_alarm(
    page: Page, stack: Stack
) -> None:
    """A manual-monitoring room: `vitals_due` is a prompt, `manual_vitals_overdue` an alarm."""
    probe = stack.start_manual_room()
    plan = {"session_id": "manual-1", "patient_ref": "P-22B1", "session_number": 1}
    probe.publish("plan", json.dumps({**plan, "playlist": ["a.ogg"]}).encode(), retain=True)
    probe.ok("start_session")
    for _ in range(3):
        probe.ok("advance")
    for item in ("readiness", "consent"):
        probe.ok("confirm", item=item)
    probe.ok("record_vitals", sys=118, dia=76, spo2=97, hr=70)
    probe.ok("advance")
    probe.ok("confirm", item="iv_line")
    probe.ok("start_infusion")
    page.click("#back")
    page.click(f".room-card[data-room='{MANUAL_ROOM_ID}']")
    page.wait_text("#title", MANUAL_ROOM_ID)
    prompt = page.wait_css("#v-prompts li.prompt[data-kind=vitals]", timeout=15)
    assert prompt.text.startswith("SpO2/HR by hand due")
    page.wait(lambda: "room-8: SpO2/HR by hand due" in page.text("#banner"), 5, "the prompt")
    # Nobody answers: at the next prompt the room raises the technical alarm.
    page.wait_css("#r-alarms li.alarm.medium[data-code=manual_vitals_overdue]", timeout=15)
    page.wait_text("#v-prompts", "the last one was missed")
    page.shot("manual-vitals-prompt-missed-and-alarm")
    page.css("#rv-spo2").send_keys("96")
    page.css("#rv-hr").send_keys("74")
    page.act("[data-verb=record_vitals]", "record_vitals")
    page.wait(
        lambda: (
            not page.all("#r-alarms li[data-code=manual_vitals_overdue]")
            and "missed" not in page.text("#v-prompts")
        ),
        10,
        "the alarm cleared and the missed prompt answered",
    )
    probe.ok("end_session", reason="the manual-monitoring test is over")
    page.wait_text("#r-phase", "Ended")
    page.click("#back")
    page.open_room()


def test_an_error_reply_is_shown_in_words(page: Page) -> None:
    # The playlist comes from the session_started event; a preview is refused in infusion.
    page.wait(lambda: page.all("#m-track option[value='intentions/strings.ogg']"), 5, "tracks")
    page.click("[data-verb=music][data-action=preview]")
    text = page.reply("music", "error")
    assert "invalid_state: Can't preview music while in infusion" in text, text
    # A reply with a quote in it (Can't) is drawn once, not rebuilt at every redraw: a list
    # redrawn each second replaced its lines under the finger (and under these tests).
    page.js("document.querySelector('#r-replies li').dataset.kept = 'yes'")
    time.sleep(3)  # several redraws: one a second, and one per message from the room
    assert page.js("return document.querySelector('#r-replies li').dataset.kept") == "yes"
    # A bad value: the room names the field.
    page.css("#rv-sys").send_keys("80")
    page.css("#rv-dia").send_keys("95")
    page.click("[data-verb=record_vitals]")
    assert "invalid_payload: field 'dia'" in page.reply("record_vitals", "error")


def test_music_and_lights(page: Page) -> None:
    page.act("[data-verb=music][data-action=pause]", "music")
    page.act("[data-verb=music][data-action=resume]", "music")
    # A volume slider sends when released (a `change` event).
    page.js(
        "const s = document.getElementById('m-vol-headphones'); s.value = 30;"
        "s.dispatchEvent(new Event('change'))"
    )
    assert "volume" in page.reply("music")
    page.wait_text("#m-vol-headphones-v", "30%")
    page.js("document.getElementById('l-scene').value = 'debrief'")
    page.act("[data-verb=lights][data-kind=scene]", "lights")
    page.wait_text("#l-state", "Scene debrief")


def test_a_reload_catches_up_on_events(page: Page, stack: Stack) -> None:
    page.login()
    page.wait_css(f".room-card[data-room='{ROOM_ID}']")
    page.open_room()
    # Events from before this page existed, fetched with the `events` command (the log shows
    # only the last 14, and the playlist's tracks keep adding events: ask the page's store).
    page.wait(
        lambda: page.js(
            f"return tablet.rooms.get('{ROOM_ID}').events.some((e) => e.type === 'call_cleared')"
        ),
        10,
        "the call_cleared event from before the reload",
    )
    catchups = page.js("return tablet.debug.catchups")
    assert catchups and catchups[-1]["last_seq"] >= catchups[-1]["since"]
    page.wait_text("#r-phase", "Infusion")
    assert len(page.all("#r-gate li")) == 0 or page.all("#r-gate li.met")


def test_a_lost_broker_is_loud_and_the_page_catches_up_after_it(page: Page, stack: Stack) -> None:
    before = len(page.js("return tablet.debug.catchups"))
    stack.broker.stop()
    page.wait_text("#banner", "CONNECTION TO THE BROKER LOST", timeout=10)
    page.wait_text("#conn", "RECONNECTING")
    stack.broker.start()
    page.wait_text("#conn", "connected", timeout=15)
    # Reconnected: the page asked the room for what it missed (the room reconnects too).
    page.wait(lambda: len(page.js("return tablet.debug.catchups")) > before, 15, "a catch-up")
    page.wait(lambda: "BROKER LOST" not in page.text("#banner"), 5, "the banner to clear")
    page.wait(lambda: not page.css("#room-health").is_displayed(), 15, "the room online again")


def test_a_room_that_stops_updating_is_shown_loudly(page: Page) -> None:
    # The room republishes at least every 10 s; pretend its last state came 30 s ago (again
    # at each look: a live state arriving meanwhile would end the pretence).
    def stale_and(selector: str, needle: str) -> bool:
        page.js(f"tablet.rooms.get('{ROOM_ID}').stateAt = Date.now() - 30000")
        return needle in page.text(selector)

    page.wait(lambda: stale_and("#room-health", "NOT UPDATING"), 5, "the room not updating")
    page.wait(lambda: stale_and("#banner", "NO UPDATE FOR"), 5, "stale room in the banner")


def answer(page: Page, reason: str | None) -> None:
    """Type ``reason`` into the open question and confirm (None: cancel)."""
    page.wait(lambda: page.css("#ask").is_displayed(), 5, "the question")
    if reason is None:
        page.css("#ask-cancel").click()
    else:
        field = page.css("#ask-reason")
        field.clear()
        field.send_keys(reason)
        page.css("#ask-ok").click()


def test_during_the_playlist_advance_is_not_invited_and_asks_why(page: Page, stack: Stack) -> None:
    assert stack.probe is not None
    page.wait_text("#m-state", "Playing")
    # Infusion running: the debrief is not the next thing to do, and advance cannot be.
    page.wait_text("#r-next", "when the infusion completes")
    assert not page.css("#advance").is_enabled()
    page.css("#stop-reason").send_keys("patient asked to stop")
    page.act("[data-verb=stop_infusion]", "stop_infusion")
    page.wait_text("#r-next", "when the playlist ends")
    advance = page.css("#advance")
    assert "primary" not in (advance.get_attribute("class") or "").split()
    assert "stops the music" in advance.text
    # Doing it anyway: the page asks why; no words, no command.
    page.click("#advance")
    answer(page, " … ")
    page.wait_text("#ask-error", "in words")
    answer(page, "patient wants to talk now")
    assert "phase debrief" in page.reply("advance")
    page.wait_text("#r-phase", "Debrief")
    stack.probe.wait_event(
        "music_stopped", 10, reason="phase_changed", note="patient wants to talk now"
    )
    # `by` is the broker user the command came from (issue 15), not the name typed at log-in.
    page.wait_text("#r-events", f"Music stopped (phase changed) by {USER}: patient wants to talk")


def test_an_emergency_then_the_end_of_the_session(page: Page, stack: Stack) -> None:
    assert stack.probe is not None
    # "Other…" with nothing typed asks what is happening; cancelled, nothing is sent.
    page.click("#emergency-presets [data-preset='']")
    answer(page, None)
    assert not page.css("#ask").is_displayed()
    assert not page.all("#r-replies li[data-verb=emergency]")
    # A preset is one tap; typed details go with it.
    page.css("#emergency-reason").send_keys("SpO2 80 on air")
    page.shot("emergency-presets-with-details")
    page.act("#emergency-presets [data-preset=Desaturation]", "emergency")
    alarm = page.wait_css("#r-alarms li.alarm.high[data-code=emergency]")
    assert "Emergency: Desaturation — SpO2 80 on air" in alarm.text
    page.wait_text("#l-state", "Scene emergency")
    page.wait_text("#r-inf-text", "stopped")
    # Logging out with the emergency open asks first; staying keeps the room in view.
    page.click("#logout")
    page.wait_text("#ask-title", "Log out with alarms open?")
    assert "EMERGENCY" in page.text("#ask-text").upper()
    page.shot("logout-with-alarms-open-asks")
    assert page.assert_contrast("question dialog") >= 5
    answer(page, None)
    assert page.css("#room-view").is_displayed()
    page.click("#r-alarms li[data-code=emergency] button[data-verb=alarm_ack]")
    page.reply("alarm_ack")
    # Ending the session asks for a reason in words and to confirm.
    page.click("[data-verb=end_session]")
    page.wait_text("#ask-title", "End the session")
    answer(page, "")
    page.wait_text("#ask-error", "in words")
    page.shot("end-session-asks-why")
    answer(page, "transferred to emergency care")
    page.reply("end_session")
    page.wait_text("#r-phase", "Ended")
    ended = stack.probe.wait_event("session_ended", 10, reason="transferred to emergency care")
    assert ended["data"]["discharged"] is False
    page.wait_text("#r-events", "not discharged")


def test_a_room_that_goes_offline_and_a_command_without_reply(page: Page, stack: Stack) -> None:
    assert stack.room.terminate() == 0
    page.wait_text("#room-health", "OFFLINE", timeout=10)
    page.click("[data-verb=nibp_now]")
    text = page.reply("nibp_now", "timeout", timeout=8)
    assert "No reply within 5 s" in text
    page.shot("08-room-offline")
    page.click("#back")
    page.wait_text(f".room-card[data-room='{ROOM_ID}']", "OFFLINE", timeout=5)
    page.shot("09-overview-offline")
    errors = page.severe_console()
    assert errors == [], "\n".join(errors)
