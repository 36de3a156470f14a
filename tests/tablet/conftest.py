"""The tablet page in a real headless Chromium, against a real Mosquitto and a real roomd.

Mosquitto serves the page itself (the websockets listener's ``http_dir``), exactly as in a
clinic; the page logs in with a broker password; the room is ``roomd --simulate``.
Chromium and its driver come from Debian (``chromium``, ``chromium-driver``): when missing,
they are installed with apt-get if this runs as root, else the tests skip saying why.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.broker import Broker, free_port
from tests.support.daemon import RoomProcess, wait_until
from tests.support.probe import Probe

TOP = Path(__file__).resolve().parents[2]
PAGE_DIR = TOP / "mqtt_bridge" / "tablet"
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
USER, PASSWORD = "dr-tablet", "s3cret-tablet"
ROOM_ID = "room-7"
MANUAL_ROOM_ID = "room-8"  # manual monitoring: SpO2/HR by hand, prompted every 3 room minutes


def node_tests(path: Path) -> None:
    """Run a JS unit-test file under ``node --test`` (skip without node); it must pass."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed (Debian: nodejs)")
    run = subprocess.run([node, "--test", str(path)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr


def ensure_chromium() -> None:
    """Debian's chromium and chromium-driver, installed when missing (root only), else skip."""
    if Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists():
        return
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        pytest.skip(
            "needs Debian's chromium and chromium-driver: apt-get install chromium chromium-driver"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    try:
        subprocess.run(["apt-get", "update", "-qq"], env=env, timeout=300, check=False)
        subprocess.run(
            [
                "apt-get",
                "install",
                "-y",
                "-qq",
                "--no-install-recommends",
                "chromium",
                "chromium-driver",
                "fonts-dejavu-core",
            ],
            env=env,
            timeout=600,
            check=True,
            capture_output=True,
        )
    except (subprocess.SubprocessError, OSError) as exc:
        pytest.skip(f"could not install chromium and chromium-driver with apt-get: {exc}")
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        pytest.skip("apt-get ran but /usr/bin/chromium or /usr/bin/chromedriver is still missing")


class Stack:
    """The broker (TCP + websockets with the page), the room and a probe, for one module."""

    def __init__(self, workdir: Path) -> None:
        self.ws_port = free_port()
        pwfile = workdir / "passwords"
        subprocess.run(
            ["mosquitto_passwd", "-b", "-c", str(pwfile), USER, PASSWORD],
            check=True,
            capture_output=True,
            timeout=10,
        )
        # Global password file: clients with a user name are checked (the tablet); the room
        # and the probe connect anonymously on the TCP listener (allowed on this test broker).
        self.broker = Broker(
            workdir,
            extra_conf=(
                f"password_file {pwfile}\n"
                f"listener {self.ws_port} 127.0.0.1\nprotocol websockets\nhttp_dir {PAGE_DIR}\n"
            ),
        )
        self.room = RoomProcess(workdir, self.broker.port, room_id=ROOM_ID, time_scale=60.0)
        self.probe: Probe | None = None
        manual_dir = workdir / MANUAL_ROOM_ID
        manual_dir.mkdir()
        self.manual_room = RoomProcess(
            manual_dir,
            self.broker.port,
            room_id=MANUAL_ROOM_ID,
            time_scale=60.0,
            extra_toml="[protocol]\nmanual_interval_minutes = 3\n",
        )
        config = self.manual_room.config
        config.write_text(
            config.read_text().replace("[room]\n", '[room]\nmonitoring = "manual"\n', 1)
        )
        self.manual_probe: Probe | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.ws_port}/index.html"

    def start(self) -> None:
        self.broker.start()
        wait_until(lambda: _port_open(self.ws_port), 10, "the websockets listener")
        probe = self.probe = Probe(self.broker.port, self.room.root)
        self.room.start()
        probe.wait_for(
            lambda: probe.retained.get(f"{self.room.root}/state"), 20, "the room's state"
        )

    def start_manual_room(self) -> Probe:
        """Start the manual-monitoring room (only the test that needs it does); its probe."""
        probe = self.manual_probe = Probe(self.broker.port, self.manual_room.root)
        self.manual_room.start()
        probe.wait_for(
            lambda: probe.retained.get(f"{self.manual_room.root}/state"), 20, "room-8's state"
        )
        return probe

    def publish_plan(self, session_id: str) -> None:
        """The session's plan: a long playlist (each simulated track plays 9 s here) and a long
        infusion, so both still run when the tests reach them; the call's escalation and
        reminder late enough not to race the page; alarm settings from the plan."""
        plan = {
            "session_id": session_id,
            "patient_ref": "P-7F3A",
            "session_number": 2,
            "music_mode": "music",
            "playlist": ["intentions/arvo-part.ogg", "intentions/strings.ogg"]
            + [f"infusion/{n:02d}.ogg" for n in range(1, 61)],
            "protocol": {"infusion_minutes": 240, "call_escalate_s": 600, "call_reminder_s": 3600},
            # stale_s 60 room seconds is 1 s here: a loaded test machine's late samples are
            # not "no valid SpO2" (the default 10 s would be 0.17 s).
            "alarms": {
                "spo2_low": {"limit": 91, "priority": "medium", "delay_s": 10},
                "stale_s": 60,
            },
        }
        assert self.probe is not None
        self.probe.publish("plan", json.dumps(plan).encode(), retain=True)

    def stop(self) -> None:
        for probe in (self.probe, self.manual_probe):
            if probe is not None:
                probe.close()
        self.manual_room.stop()
        self.room.stop()
        self.broker.stop()


def _port_open(port: int) -> bool:
    import socket

    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


@contextlib.contextmanager
def started_stack(workdir: Path, room_toml: str = "") -> Iterator[Stack]:
    """A started ``Stack`` in ``workdir`` (skipped without mosquitto), ``room_toml`` added to
    the room's config; stopped on leaving."""
    if shutil.which("mosquitto") is None or shutil.which("mosquitto_passwd") is None:
        pytest.skip("mosquitto is not installed: run `make deps`")
    s = Stack(workdir)
    if room_toml:
        s.room.config.write_text(s.room.config.read_text() + room_toml)
    try:
        s.start()
        yield s
    finally:
        s.stop()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A real Mosquitto serving the page and a real ``roomd --simulate`` at time scale 60."""
    with started_stack(tmp_path_factory.mktemp("tablet")) as s:
        yield s


@pytest.fixture(scope="module")
def browser(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Headless Debian Chromium through Selenium and Debian's chromedriver."""
    ensure_chromium()
    webdriver = pytest.importorskip(
        "selenium.webdriver", reason="selenium is not installed (pip install selenium)"
    )
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--window-size=1280,1400",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
    ):
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    ARTIFACTS.mkdir(exist_ok=True)
    service = Service(executable_path=CHROMEDRIVER, log_output=str(ARTIFACTS / "chromedriver.log"))
    started = time.monotonic()
    driver = webdriver.Chrome(options=opts, service=service)
    driver.set_page_load_timeout(15)
    driver.set_script_timeout(10)
    assert time.monotonic() - started < 30
    try:
        yield driver
    finally:
        driver.quit()
