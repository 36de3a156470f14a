"""``roomd``: reads the config, wires adapters to ports, runs the core loop.

This is the one module of the core that imports adapters: everything else in controller/
sees only ports.
"""

from __future__ import annotations

import argparse
import logging
import queue
import signal
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

from controller.clock import SystemClock
from controller.config import Config, load_config
from controller.errors import ConfigError, JournalError
from controller.events import InboxMessage, Shutdown, SimAction
from controller.journal import Journal
from controller.loop import CoreLoop
from controller.models import Event, iso_utc, parse_utc
from controller.sdnotify import Notifier
from controller.session import Room

log = logging.getLogger("roomd")

DEFAULT_CONFIG = "/etc/roomd/roomd.toml"
DEFAULT_DATA_DIR = "/var/lib/roomd"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The contract's command line."""
    p = argparse.ArgumentParser(prog="roomd", description="The treatment-room daemon.")
    p.add_argument("--config", default=DEFAULT_CONFIG, help="roomd.toml (default %(default)s)")
    p.add_argument("--simulate", action="store_true", help="simulated hardware")
    p.add_argument(
        "--time-scale",
        type=float,
        default=1.0,
        help="simulation only: session clocks run N times faster",
    )
    p.add_argument("--data-dir", default=DEFAULT_DATA_DIR, help="journal and reports")
    p.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    return p.parse_args(argv)


def scaled_clock(journal: Journal, time_scale: float) -> SystemClock:
    """A clock whose scaled time continues where the journal's last run left it."""
    if time_scale == 1.0:
        return SystemClock()
    real = datetime.now(UTC)
    stored = journal.get_meta("time_anchor")
    if stored is not None:
        scale_s, real_s, scaled_s = stored.split("|")
        if float(scale_s) == time_scale:
            return SystemClock(time_scale, (parse_utc(real_s), parse_utc(scaled_s)))
    last = journal.events_since(journal.last_seq, 1)
    start = max(real, last[0].ts) if last else real
    journal.set_meta("time_anchor", f"{time_scale}|{iso_utc(real)}|{iso_utc(start)}")
    return SystemClock(time_scale, (real, start))


class SimulatedRoom:
    """The simulated hardware of ``--simulate`` and the ``sim/<action>`` verbs that drive it.

    Serial devices with an empty ``port`` are simulated behind pseudo-terminals speaking the
    device's real format, read by the real driver; a device with a ``port`` is used as set.
    """

    def __init__(
        self, config: Config, emit: Callable[[InboxMessage], None], clock: SystemClock
    ) -> None:
        from audio.fake import FakeLibrary, SimulatedAudioPlayer
        from hw.fake import FakeAnnunciator, FakeCallButton, FakeLighting
        from hw.simulator import SimulatedNibpModule, SimulatedOximeter, SimulatedPatient
        from hw.vitals import make_nibp, make_oximeter

        hw = config.hardware
        self.patient = SimulatedPatient(clock)
        self.sim_devices: list[Any] = []
        self.sim_oximeter: Any = None
        self.sim_nibp: Any = None
        if not hw.oximeter.port:
            # One line per session second would flood; one per real 50 ms keeps samples
            # fresher than the stale limit at any --time-scale up to 200.
            period = max(clock.real_seconds(1.0), 0.05)
            self.sim_oximeter = SimulatedOximeter(
                hw.oximeter.driver, clock, patient=self.patient, period_s=period
            )
            self.sim_devices.append(self.sim_oximeter)
        if hw.nibp.driver != "manual" and not hw.nibp.port:
            self.sim_nibp = SimulatedNibpModule(clock, patient=self.patient)
            self.sim_devices.append(self.sim_nibp)
        self.oximeter = make_oximeter(
            hw.oximeter,
            emit,
            clock,
            port=self.sim_oximeter.port_path if self.sim_oximeter else None,
        )
        self.nibp = make_nibp(
            hw.nibp, emit, clock, port=self.sim_nibp.port_path if self.sim_nibp else None
        )
        self.lighting = FakeLighting()
        self.button = FakeCallButton(emit)
        self.annunciator = FakeAnnunciator()
        self.audio = SimulatedAudioPlayer(emit, clock)
        self.library = FakeLibrary()
        self._clock = clock

    def devices(self) -> dict[str, str]:
        """Devices present from the start (serial devices report themselves when opened)."""
        return {"call_button": "ok", "lighting": "ok", "audio": "ok"}

    def start(self) -> None:
        """Start the drivers' reader threads."""
        for driver in (self.oximeter, self.nibp):
            if driver is not None:
                driver.start()

    def observe(self, event: Event) -> None:
        """Let the simulated patient follow the session (the infusion drives the BP curve)."""
        if event.type == "infusion_started":
            self.patient.set_infusion_started(self._clock.monotonic())

    def act(self, action: SimAction) -> None:
        """Carry out one ``sim/<action>`` (on the core thread; devices report via the inbox)."""
        match action.action:
            case "press_call":
                self.button.press()
            case "release_call":
                pass  # a short press: the press already placed the call
            case "hold_call":
                self.button.press()
                if float(action.args.get("seconds", 0)) >= 2.0:
                    self.button.hold()
            case "incident":
                self._incident(str(action.args.get("kind", "")))
            case "finish_playlist":
                self.audio.finish()
            case other:
                log.warning("unknown sim action %r", other)

    def _incident(self, kind: str) -> None:
        if kind in ("desaturation", "hypertension"):
            self.patient.incident(kind)
        elif kind in ("sensor_off", "unplug", "garbage") and self.sim_oximeter is not None:
            self.sim_oximeter.incident(kind)
        elif kind == "recover":
            for device in self.sim_devices:
                device.incident("recover")
        else:
            log.warning("unknown incident %r", kind)

    def close(self) -> None:
        """Stop the drivers and the simulated devices."""
        for thing in (self.oximeter, self.nibp, *self.sim_devices):
            if thing is not None:
                thing.close()
        self.audio.close()


def build_room(
    config: Config,
    args: argparse.Namespace,
    journal: Journal,
    inbox: queue.Queue[InboxMessage],
) -> tuple[Room, Any, SimulatedRoom | None, SystemClock]:
    """Wire the adapters to the core's ports."""
    from mqtt_bridge.link import MqttLink
    from mqtt_bridge.topics import Topics

    clock = scaled_clock(journal, args.time_scale)
    emit = inbox.put
    link = MqttLink(
        config.mqtt, Topics(config.mqtt.topic_prefix, config.room.id), emit, simulate=args.simulate
    )
    sim = SimulatedRoom(config, emit, clock) if args.simulate else None
    room = Room(
        config,
        clock=clock,
        journal=journal,
        link=link,
        lighting=sim.lighting if sim else None,
        call_lamp=sim.button if sim else None,
        annunciator=sim.annunciator if sim else None,
        nibp=sim.nibp if sim else None,
        audio=sim.audio if sim else None,
        library=sim.library if sim else None,
        devices=sim.devices() if sim else None,
        heartbeat_s=10.0 * args.time_scale,
        simulator=sim.act if sim else None,
        listeners=[sim.observe] if sim else [],
    )
    return room, link, sim, clock


def main(argv: list[str] | None = None) -> int:
    """Run the room until SIGTERM/SIGINT; exit 2 on a bad config."""
    args = parse_args(argv)
    logging.basicConfig(
        level=args.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        config = load_config(args.config)
        if args.time_scale != 1.0 and not args.simulate:
            raise ConfigError("--time-scale", ["only allowed with --simulate"])
        if args.time_scale <= 0:
            raise ConfigError("--time-scale", ["must be positive"])
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"{exc.path}: {problem}", file=sys.stderr)
        return 2
    try:
        journal = Journal(Path(args.data_dir) / "journal.sqlite")
    except JournalError as exc:
        print(f"roomd: {exc}", file=sys.stderr)
        return 1
    inbox: queue.Queue[InboxMessage] = queue.Queue()
    notifier = Notifier()
    try:
        room, link, sim, clock = build_room(config, args, journal, inbox)
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"{exc.path}: {problem}", file=sys.stderr)
        journal.close()
        return 2

    def stop(signum: int, frame: FrameType | None) -> None:
        inbox.put(Shutdown())

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    room.resume()
    if sim is not None:
        sim.start()
    link.start()
    notifier.notify("READY=1")
    notifier.notify(f"STATUS=room {config.room.id}: {room.phase}")
    log.info(
        "room %s ready (simulate=%s, time_scale=%g, journal seq %d)",
        config.room.id,
        args.simulate,
        args.time_scale,
        journal.last_seq,
    )
    code = 0
    try:
        CoreLoop(room, inbox, clock, alive=notifier.alive).run()
    except JournalError as exc:
        log.critical("journal failure, stopping: %s", exc)
        code = 1
    finally:
        notifier.notify("STOPPING=1")
        link.stop()
        if sim is not None:
            sim.close()
        journal.close()
    log.info("room %s stopped", config.room.id)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
