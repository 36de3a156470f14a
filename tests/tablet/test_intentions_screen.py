"""The intentions card and the plan builder, in headless Chromium against a real broker and a
real ``roomd --simulate`` whose music is read by real libVLC from a music_dir made by sox.

One story in file order (the module shares one broker, room and browser): the library with
its lengths, a plan the page refuses in words, a playlist built and reordered against 50–60
minutes, a plan the room rejects (a track deleted since the library was read) and one it
accepts, the session started, a preview, a choice refused by the missing track's name, a
choice accepted with the 50–60 warning, one within the range reflected from ``plan_amended``,
and a rescan. Screenshots of the card: ``plan-builder.png``, ``intentions-warning.png`` and
``intentions-screen.png`` in tests/tablet/artifacts/ (copied to docs/screens/ with
ROOMD_UPDATE_SCREENS=1).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.probe import Probe
from tests.tablet.conftest import (
    ARTIFACTS,
    ROOM_ID,
    TOP,
    USER,
    Stack,
    node_tests,
    started_stack,
)
from tests.tablet.test_tablet import Page

pytestmark = pytest.mark.e2e

HERE = Path(__file__).resolve().parent
SCREENS = TOP / "docs" / "screens"
DOOMED = "extra/doomed.wav"  # listed by the library, deleted from the disk by a test
WAIT = 40.0  # the machine is shared and slow: generous, but bounded


def wav(path: Path, minutes: float) -> None:
    """A long, small WAV by sox (1 kHz, 8 bit: the room reads its length from the header)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    cmd = ["sox", "-n", "-r", "1000", "-b", "8", "-c", "1", str(path)]
    subprocess.run([*cmd, "synth", str(minutes * 60), "sine", "200"], check=True, timeout=60)


def ogg(path: Path, seconds: float, title: str) -> None:
    """A short Ogg Vorbis tone by sox, with a title tag (libVLC reads it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    cmd = ["sox", "-n", "-r", "22050", "-c", "1", "--comment", f"Title={title}", str(path)]
    subprocess.run([*cmd, "synth", str(seconds), "sine", "440", "vol", "0.3"], check=True)


@pytest.fixture(scope="module")
def music(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three calm tracks (25, 20 and 12 min), one to be deleted, a tagged short one, two
    guidance tracks, and the M3U playlist ``calm`` (45 min: short of 50–60)."""
    if shutil.which("sox") is None:
        pytest.skip("sox is not installed (Debian: sox libsox-fmt-all)")
    root = tmp_path_factory.mktemp("music")
    wav(root / "calm" / "01-dawn.wav", 25)
    wav(root / "calm" / "02-drift.wav", 20)
    wav(root / "calm" / "03-tide.wav", 12)
    wav(root / DOOMED, 5)
    ogg(root / "harbour.ogg", 4, "Harbour Lights")
    ogg(root / "guidance" / "breathing.ogg", 3, "Breathing")
    ogg(root / "guidance" / "body_scan.ogg", 3, "Body Scan")
    (root / "calm.m3u").write_text("#EXTM3U\ncalm/01-dawn.wav\ncalm/02-drift.wav\n")
    return root


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, music: Path) -> Iterator[Stack]:
    """The tablet's stack (conftest), its room reading ``music`` with real libVLC."""
    workdir = tmp_path_factory.mktemp("tablet-intentions")
    with started_stack(workdir, f'[audio]\nmusic_dir = "{music}"\n') as s:
        yield s


@pytest.fixture(scope="module")
def page(browser: Any, stack: Stack) -> Page:
    return Page(browser, stack)


def probe(stack: Stack) -> Probe:
    assert stack.probe is not None
    return stack.probe


def paths(page: Page, selector: str) -> list[str]:
    return [str(li.get_attribute("data-path") or "") for li in page.all(f"{selector} li")]


def builder(page: Page) -> list[str]:
    """The playlist being built, in order (its items' paths)."""
    return [el.text for el in page.all("#i-playlist li .i-path")]


def total(page: Page) -> tuple[str, str]:
    """The running total's words and level (ok, warn, unknown, empty)."""
    el = page.css("#i-total")
    return el.text, (el.get_attribute("class") or "").replace("i-total", "").strip()


def button(page: Page, where: str, action: str, path: str) -> str:
    return f"{where} button[data-i={action}][data-path='{path}']"


def moved(page: Page, index: int, action: str) -> None:
    page.click(f"#i-playlist button[data-i={action}][data-index='{index}']")


def title(page: Page, words: str) -> None:
    """Wait for the card's title (its CSS shows it in capitals: read the text itself)."""
    page.wait(
        lambda: words in page.css("#i-title").get_attribute("textContent"), WAIT, f"title {words}"
    )


def card_shot(page: Page, name: str) -> None:
    """A PNG of the intentions card alone (the window grown to hold it) in artifacts/, and
    the whole page beside it; copied to docs/screens/ only when ROOMD_UPDATE_SCREENS=1 (a test
    run must not change the checkout)."""
    page.shot(f"{name}-page")
    size = page.d.get_window_size()
    height = int(page.js("return document.documentElement.scrollHeight"))
    page.d.set_window_size(size["width"], max(size["height"], min(height + 140, 4000)))
    try:
        page.css("#intentions-card").screenshot(str(ARTIFACTS / f"{name}.png"))
    finally:
        page.d.set_window_size(size["width"], size["height"])
    if os.environ.get("ROOMD_UPDATE_SCREENS") == "1":
        SCREENS.mkdir(exist_ok=True)
        shutil.copyfile(ARTIFACTS / f"{name}.png", SCREENS / f"{name}.png")


def fill(page: Page, field: str, value: str) -> None:
    el = page.css(field)
    el.clear()
    el.send_keys(value)


def test_the_intentions_logic_unit_tests_pass() -> None:
    """intentions.js under ``node --test`` (intentions.test.js)."""
    node_tests(HERE / "intentions.test.js")


def test_mosquitto_serves_the_intentions_files(stack: Stack) -> None:
    import urllib.request

    for name in ("intentions.js", "intentions_view.js", "intentions.css"):
        with urllib.request.urlopen(f"http://127.0.0.1:{stack.ws_port}/{name}", timeout=5) as r:
            assert r.status == 200 and len(r.read()) > 100, name


def test_the_library_is_listed_with_lengths_guidance_apart(page: Page) -> None:
    page.login()
    page.wait_text(f".room-card[data-room='{ROOM_ID}']", "ONLINE", timeout=WAIT)
    page.open_room()
    title(page, "Plan the next session")
    page.wait(lambda: len(page.all("#i-tracks li[data-path]")) == 5, WAIT, "five music tracks")
    tracks = {li.get_attribute("data-path"): li.text for li in page.all("#i-tracks li")}
    assert "25:00" in tracks["calm/01-dawn.wav"] and "01-dawn" in tracks["calm/01-dawn.wav"]
    assert "20:00" in tracks["calm/02-drift.wav"] and "12:00" in tracks["calm/03-tide.wav"]
    assert "Harbour Lights" in tracks["harbour.ogg"] and "00:04" in tracks["harbour.ogg"]
    # Guidance tracks apart, with their titles; the named playlist with its total.
    assert paths(page, "#i-guidance") == ["guidance/body_scan.ogg", "guidance/breathing.ogg"]
    assert "Breathing" in page.text("#i-guidance li[data-path='guidance/breathing.ogg']")
    assert "calm" in page.text("#i-playlists") and "45:00" in page.text("#i-playlists")
    assert "2 tracks" in page.text("#i-playlists li[data-name=calm]")
    # Preview plays only from check-in to pre-infusion (the room refuses it when idle).
    assert not page.css(button(page, "#i-tracks", "preview", "harbour.ogg")).is_enabled()
    assert page.text("#i-lib-note").startswith("7 tracks · 3 playlists")  # folders are playlists


def test_the_page_refuses_a_plan_with_a_name_for_a_pseudonym(page: Page, stack: Stack) -> None:
    fill(page, "#i-session-id", "tab-int-1")
    fill(page, "#i-patient-ref", "Jane Doe")
    page.click("#i-publish")
    text = page.wait_text("#i-plan-problems", "Not published", timeout=WAIT)
    assert "a pseudonym, never the patient's name" in text
    assert "a music session needs a playlist" in text
    assert "pseudonym" in page.text(".i-phi") and "Never a name" in page.text(".i-phi")
    assert f"{stack.room.root}/plan" not in probe(stack).retained  # nothing was published


def test_a_playlist_is_built_and_reordered_against_50_to_60_minutes(page: Page) -> None:
    page.click("#i-playlists button[data-i=use][data-name=calm]")
    page.wait(lambda: builder(page) == ["calm/01-dawn.wav", "calm/02-drift.wav"], WAIT, "calm")
    assert "the named playlist “calm”" in page.text("#i-from")
    words, level = total(page)
    assert level == "warn" and words.startswith("Total 45:00 — SHORT: 05:00 under the 50–60 min")
    page.click(button(page, "#i-tracks", "add", "calm/03-tide.wav"))
    page.wait(lambda: total(page)[1] == "ok", WAIT, "the total within the range")
    assert total(page)[0].startswith("Total 57:00 — within the 50–60 min")
    assert "changed: sent as these tracks" in page.text("#i-from")
    # Reorder with the arrows: the tide first, then dawn and drift.
    moved(page, 2, "up")
    moved(page, 1, "up")
    page.wait(
        lambda: builder(page) == ["calm/03-tide.wav", "calm/01-dawn.wav", "calm/02-drift.wav"],
        WAIT,
        "the tide moved to the top",
    )
    assert not page.css("#i-playlist button[data-i=up][data-index='0']").is_enabled()
    arrow = page.css("#i-playlist button[data-i=down][data-index='0']").size
    assert arrow["height"] >= 56 and arrow["width"] >= 56, arrow  # a finger's target
    assert not page.css("#i-playlist button[data-i=down][data-index='2']").is_enabled()
    moved(page, 0, "down")
    page.wait(lambda: builder(page)[:2] == ["calm/01-dawn.wav", "calm/03-tide.wav"], WAIT, "down")
    # Too long with one more, back in range once it is removed.
    page.click(button(page, "#i-tracks", "add", "extra/doomed.wav"))
    page.wait(lambda: "LONG: 02:00 over" in total(page)[0], WAIT, "62 minutes: long")
    assert total(page)[1] == "warn"
    page.click("#i-playlist button[data-i=remove][data-index='3']")
    page.wait(lambda: total(page)[1] == "ok", WAIT, "back to 57 minutes")
    assert builder(page) == ["calm/01-dawn.wav", "calm/03-tide.wav", "calm/02-drift.wav"]


def test_a_plan_the_room_rejects_is_shown_with_its_reasons(
    page: Page, stack: Stack, music: Path
) -> None:
    """A track deleted since the library was read: the room rejects the plan naming it."""
    page.click(button(page, "#i-tracks", "add", DOOMED))
    page.wait(lambda: builder(page)[-1:] == [DOOMED], WAIT, "the doomed track added")
    (music / DOOMED).unlink()
    fill(page, "#i-patient-ref", "P-7F3A")
    page.click("#i-publish")
    text = page.wait_text("#i-plan-problems", "REJECTED", timeout=WAIT)
    assert f"{DOOMED}: no such file in music_dir" in text and "the room keeps what it had" in text
    assert page.all("#i-plan-problems li.error")
    probe(stack).wait_event("plan_rejected", WAIT)
    page.click(f"#i-playlist button[data-i=remove][data-index='{len(builder(page)) - 1}']")
    page.wait(lambda: DOOMED not in builder(page), WAIT, "the doomed track removed")


def test_the_plan_builder_publishes_a_plan_the_room_accepts(page: Page, stack: Stack) -> None:
    from selenium.webdriver.support.select import Select  # the browser fixture skips without

    fill(page, "#i-session-id", "tab-int-1")
    fill(page, "#i-patient-ref", "P-7F3A")
    Select(page.css("#i-session-number")).select_by_value("2")
    page.click("#i-guide input[value=breathing]")
    fill(page, "#i-infusion_minutes", "240")
    fill(page, "#i-nibp_interval_minutes", "abc")
    page.click("#i-check")
    page.wait_text("#i-plan-problems", "NIBP every (minutes): a number from 10 to 15", WAIT)
    fill(page, "#i-nibp_interval_minutes", "15")
    page.click("#i-check")
    page.wait_text("#i-plan-problems", "Nothing wrong found", WAIT)
    page.click("#i-publish")
    text = page.wait_text("#i-plan-problems", "ACCEPTED", timeout=WAIT)
    assert "tab-int-1 (patient P-7F3A, session 2, 3 music tracks, guidance: breathing)" in text
    assert page.all("#i-plan-problems li.ok")
    # Published retained, QoS 1, exactly what the page built.
    plan_topic = f"{stack.room.root}/plan"
    plan = json.loads(probe(stack).wait_for(lambda: probe(stack).retained.get(plan_topic), 10))
    assert plan == {
        "session_id": "tab-int-1",
        "patient_ref": "P-7F3A",
        "session_number": 2,
        "music_mode": "music",
        "guidance": "breathing",
        "playlist": ["calm/01-dawn.wav", "calm/03-tide.wav", "calm/02-drift.wav"],
        "protocol": {"infusion_minutes": 240, "nibp_interval_minutes": 15},
    }
    configured = probe(stack).wait_event("session_configured", WAIT)
    assert configured["data"]["tracks"][0] == "guidance/breathing.ogg"
    page.assert_contrast("plan builder")
    card_shot(page, "plan-builder")


def test_in_check_in_the_card_shows_the_planned_choice_and_previews(
    page: Page, stack: Stack
) -> None:
    page.act("#session-actions [data-verb=start_session]", "start_session")
    page.wait_text("#r-phase", "Check-in", timeout=WAIT)
    title(page, "The patient's choice")
    now = page.wait_text("#i-current", "as planned", timeout=WAIT)
    assert "Music: 3 tracks · guidance: breathing" in now
    assert builder(page) == ["calm/01-dawn.wav", "calm/03-tide.wav", "calm/02-drift.wav"]
    assert page.css("#i-guide input[value=breathing]").is_selected()
    assert not page.all("#i-plan:not([hidden])")
    page.click(button(page, "#i-tracks", "preview", "harbour.ogg"))
    page.wait_text("#i-preview-note", "Playing an excerpt of “Harbour Lights”", timeout=WAIT)
    probe(stack).wait_event("preview_started", WAIT, track="harbour.ogg")


def test_a_choice_with_a_missing_track_is_refused_by_its_name(page: Page) -> None:
    page.click(button(page, "#i-tracks", "add", DOOMED))
    page.click("#i-send")
    text = page.wait_text("#i-result", "REFUSED", timeout=WAIT)
    assert f"field 'playlist.3': {DOOMED}: no such file in music_dir" in text
    assert page.all("#i-result li.error") and not page.all("#i-result li.warn")
    assert "as planned" in page.text("#i-current")  # nothing changed
    page.click(f"#i-playlist button[data-i=remove][data-index='{len(builder(page)) - 1}']")


def test_a_short_playlist_is_accepted_with_the_warning_shown(page: Page) -> None:
    page.click("#i-playlists button[data-i=use][data-name=calm]")
    page.click("#i-guide input[value=none]")
    page.click("#i-send")
    text = page.wait_text("#i-result", "accepted, with 1 warning", timeout=WAIT)
    assert "WARNING: the playlist lasts 45.0 min; the protocol expects 50–60 min" in text
    assert page.all("#i-result li.warn") and not page.all("#i-result li.error")
    now = page.wait_text("#i-current", f"chosen by {USER}", timeout=WAIT)
    assert "Music: playlist “calm” (45:00) · no guidance" in now
    assert "WARNING: the playlist lasts 45.0 min" in page.text("#i-current .i-warn-line")
    card_shot(page, "intentions-warning")


def test_a_choice_within_the_range_is_reflected_from_plan_amended(page: Page, stack: Stack) -> None:
    page.click(button(page, "#i-tracks", "add", "calm/03-tide.wav"))
    moved(page, 2, "up")
    page.wait(
        lambda: builder(page) == ["calm/01-dawn.wav", "calm/03-tide.wav", "calm/02-drift.wav"],
        WAIT,
        "dawn, tide, drift",
    )
    page.click("#i-guide input[value=body_scan]")
    page.click("#i-send")
    page.wait_text("#i-result", "Choice recorded — playlist 57:00", timeout=WAIT)
    assert not page.all("#i-result li.warn")
    amended = probe(stack).wait_event("plan_amended", WAIT, playlist_duration_s=3420)
    assert amended["data"]["tracks"] == [
        "guidance/body_scan.ogg",
        "calm/01-dawn.wav",
        "calm/03-tide.wav",
        "calm/02-drift.wav",
    ]
    now = page.wait_text("#i-current", "(57:00)", timeout=WAIT)
    assert f"Music: 3 tracks (57:00) · guidance: body scan · chosen by {USER}" in now
    assert not page.all("#i-current .i-warn-line")
    # The music card previews the chosen tracks now.
    page.wait(lambda: page.all("#m-track option[value='guidance/body_scan.ogg']"), WAIT, "tracks")
    page.assert_contrast("intentions card")
    card_shot(page, "intentions-screen")


def test_rescan_reads_the_music_folder_again(page: Page) -> None:
    assert DOOMED in paths(page, "#i-tracks")  # deleted on disk, still in the list read
    page.click("#i-rescan")
    page.wait(lambda: DOOMED not in paths(page, "#i-tracks"), WAIT, "the deleted track gone")
    assert len(paths(page, "#i-tracks")) == 4
    assert page.severe_console() == []


def test_the_card_fits_a_portrait_tablet(page: Page) -> None:
    """At 820×1180 nothing of the card is cut off or needs scrolling sideways."""
    page.viewport((820, 1180))
    try:
        page.wait(lambda: page.js("return window.innerWidth") == 820, WAIT, "the portrait size")
        card = page.js(
            "return document.getElementById('intentions-card').getBoundingClientRect().toJSON()"
        )
        assert card["right"] <= 820, card
        assert page.js("return document.documentElement.scrollWidth") <= 820
        widest = page.js(
            "return Math.max(...Array.from(document.querySelectorAll('#intentions-card *'),"
            " (e) => e.getBoundingClientRect().right))"
        )
        assert widest <= card["right"] + 0.5, widest
    finally:
        page.viewport(None)
