"""``roomd``: reads the config, wires adapters to ports, runs the core loop.

This is the one module of the core that imports adapters: everything else in controller/
sees only ports.
"""

from __future__ import annotations

import argparse
import logging
import secrets
import signal
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from controller import drivers
from controller.clock import SystemClock
from controller.config import Config, load_config
from controller.errors import ConfigError, JournalError
from controller.events import InboxMessage, Shutdown, SimAction
from controller.inbox import Inbox
from controller.journal import Journal, open_journal
from controller.loop import CoreLoop
from controller.models import Event, iso_utc, parse_utc
from controller.room import Room
from controller.sdnotify import Notifier
from controller.storage import StorageError, classify
from controller.system import ClockWatch, setup_logging

if TYPE_CHECKING:
    from controller.record.writer import RecordWriter

log = logging.getLogger("roomd")

FAILURE_SIGNAL_S = 5.0
"""How long the buzzer sounds the failure pattern before a failed daemon exits."""
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
    p.add_argument(
        "--self-test", action="store_true", help="run the pre-first-patient checklist and exit"
    )
    p.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    return p.parse_args(argv)


def scaled_clock(journal: Journal, time_scale: float) -> SystemClock:
    """A clock whose scaled time continues where the journal's last run left it."""
    if time_scale == 1.0:
        return SystemClock()
    # Kept to the millisecond, as stored, so a restart's clock is exactly this one.
    real = parse_utc(iso_utc(datetime.now(UTC)))
    stored = journal.get_meta("time_anchor")
    if stored is not None:
        scale_s, real_s, scaled_s = stored.split("|")
        if float(scale_s) == time_scale:
            return SystemClock(time_scale, (parse_utc(real_s), parse_utc(scaled_s)))
    last = journal.events_since(journal.last_seq, 1)
    start = max(real, last[0].ts) if last else real
    start = parse_utc(iso_utc(start))
    journal.set_meta("time_anchor", f"{time_scale}|{iso_utc(real)}|{iso_utc(start)}")
    return SystemClock(time_scale, (real, start))


def load_adapters() -> None:
    """Import the hardware adapters: each driver module registers the name a config uses."""
    import hw

    hw.register_all()


# Whatever reads a config in this process (the daemon, the report, the self-test) reads it
# with every driver registered: the registry loads the adapters before its first look-up.
drivers.use_loader(load_adapters)


class Devices:
    """The room's hardware adapters, built from the config; simulated under ``--simulate``.

    Under ``--simulate``: gpiozero's MockFactory pins for the call button, lamp, buzzer and
    lights; serial devices with an empty ``port`` behind pseudo-terminals speaking their real
    format, read by the real drivers; libVLC to ALSA's null output when ``music_dir`` exists,
    else a stand-in player whose tracks "play" for nine session minutes each.
    """

    def __init__(
        self,
        config: Config,
        emit: Callable[[InboxMessage], None],
        clock: SystemClock,
        *,
        simulate: bool,
    ) -> None:
        from hw.buzzer import Buzzer
        from hw.call_button import CallButton
        from hw.lighting import make_lighting
        from hw.vitals import make_nibp, make_oximeter

        hw = config.hardware
        self._clock = clock
        self._press_id = 0
        self._closers: list[Any] = []
        self.sim_devices: list[Any] = []
        self.patient: Any = None
        self.sim_oximeter: Any = None
        pins: Any = None
        ox_port = nibp_port = None
        if simulate:
            from gpiozero.pins.mock import MockFactory, MockPWMPin

            from hw.simulator import SimulatedPatient, simulated_nibp, simulated_oximeter

            pins = MockFactory(pin_class=MockPWMPin)
            self.patient = SimulatedPatient(clock)
            if not hw.oximeter.port:
                # One line per session second would flood; one per real 50 ms keeps samples
                # fresher than the stale limit at any --time-scale up to 200.
                period = max(clock.real_seconds(1.0), 0.05)
                self.sim_oximeter = simulated_oximeter(
                    hw.oximeter.driver, clock, self.patient, period
                )
                if self.sim_oximeter is not None:
                    self.sim_devices.append(self.sim_oximeter)
                    ox_port = self.sim_oximeter.port_path
            sim_nibp = None if hw.nibp.port else simulated_nibp(hw.nibp.driver, clock, self.patient)
            if sim_nibp is not None:
                self.sim_devices.append(sim_nibp)
                nibp_port = sim_nibp.port_path
        self.oximeter = make_oximeter(hw.oximeter, emit, clock, port=ox_port)
        self.nibp = make_nibp(hw.nibp, emit, clock, port=nibp_port)
        self.lighting = make_lighting(hw.lighting, emit, pin_factory=pins, clock=clock)
        cb = hw.call_button
        # The button keeps real time: a scaled clock would turn a short press into a hold.
        self.call_button = CallButton(
            cb.pin, cb.lamp_pin, emit, None, cb.bounce_ms, cb.clear_hold_s, pin_factory=pins
        )
        self.buzzer = Buzzer(hw.buzzer.pin, pin_factory=pins)
        self.audio, self.library = self._audio(config, emit, clock, simulate)
        self._closers = [self.oximeter, self.nibp, self.lighting, self.call_button, self.buzzer]

    @staticmethod
    def _audio(
        config: Config, emit: Callable[[InboxMessage], None], clock: SystemClock, simulate: bool
    ) -> tuple[Any, Any]:
        if simulate and not Path(config.audio.music_dir).is_dir():
            from audio.fake import FakeLibrary, SimulatedAudioPlayer

            return SimulatedAudioPlayer(emit, clock), FakeLibrary()
        from audio.library import MusicLibrary
        from audio.player import VlcAudioPlayer

        library = MusicLibrary(config.audio.music_dir)
        library.scan()
        return VlcAudioPlayer(config.audio, emit, null_output=simulate), library

    def present(self) -> dict[str, str]:
        """Devices known present at start (serial devices report themselves when opened)."""
        # Lights and audio report a fault (or absence) themselves when they find one.
        present = {"call_button": "ok", "audio": "ok", "lighting": "ok"}
        if self.oximeter is None:
            present["oximeter"] = "absent"
        if self.nibp is None:
            present["nibp"] = "absent"
        return present

    def start(self) -> None:
        """Start the serial drivers' reader threads."""
        for driver in (self.oximeter, self.nibp):
            if driver is not None:
                driver.start()

    def observe(self, event: Event) -> None:
        """Let the simulated patient follow the session (the infusion drives the BP curve)."""
        if self.patient is not None and event.type == "infusion_started":
            self.patient.set_infusion_started(self._clock.monotonic())

    def act(self, action: SimAction) -> None:
        """Carry out one ``sim/<action>`` on the simulated hardware (on the core thread)."""
        match action.action:
            case "press_call":
                self._press(0.1)
            case "release_call":
                self._press_id += 1
                self.call_button.button.pin.drive_high()
            case "hold_call":
                self._press(float(action.args.get("seconds", 3.0)))
            case "incident":
                self._incident(str(action.args.get("kind", "")))
            case "finish_playlist":
                finish = getattr(self.audio, "finish", None)
                if finish is not None:
                    finish()
            case other:
                log.warning("unknown sim action %r", other)

    def _press(self, seconds: float) -> None:
        # A simulated finger: a later press is not cut short by an earlier one's release.
        self._press_id += 1
        press_id = self._press_id
        pin = self.call_button.button.pin
        pin.drive_low()

        def release() -> None:
            if self._press_id == press_id:
                pin.drive_high()

        _later(seconds, release)

    def _incident(self, kind: str) -> None:
        if kind in ("desaturation", "hypertension") and self.patient is not None:
            self.patient.incident(kind)
        elif kind in ("sensor_off", "unplug", "garbage") and self.sim_oximeter is not None:
            self.sim_oximeter.incident(kind)
        elif kind == "recover":
            if self.patient is not None:
                self.patient.incident("recover")
            for device in self.sim_devices:
                device.incident("recover")
        else:
            log.warning("incident %r cannot be simulated here", kind)

    def close(self) -> None:
        """Stop every driver and simulated device."""
        for thing in (*self._closers, self.audio, *self.sim_devices):
            if thing is not None:
                try:
                    thing.close()
                except Exception:  # closing one device must not keep the others open
                    log.exception("closing %r failed", thing)


def _later(seconds: float, action: Callable[[], None]) -> None:
    timer = threading.Timer(seconds, action)
    timer.daemon = True
    timer.start()


def build_room(
    config: Config,
    args: argparse.Namespace,
    journal: Journal,
    inbox: Inbox,
) -> tuple[Room, Any, Devices, SystemClock, RecordWriter]:
    """Wire the adapters to the core's ports."""
    from controller.record.hl7 import Sender
    from controller.record.writer import RecordWriter
    from mqtt_bridge.link import MqttLink, room_client_id
    from mqtt_bridge.topics import Topics

    clock = scaled_clock(journal, args.time_scale)
    emit = inbox.put
    secret = journal.get_meta("client_id_secret")
    if secret is None:
        secret = secrets.token_hex(6)
        journal.set_meta("client_id_secret", secret)
    link = MqttLink(
        config.mqtt,
        Topics(config.mqtt.topic_prefix, config.room.id),
        emit,
        client_id=room_client_id(config.room.id, secret),
        simulate=args.simulate,
    )
    devices = Devices(config, emit, clock, simulate=args.simulate)
    # Session records are written on the writer's thread, from its own view of the journal.
    records = RecordWriter(
        journal.path, Path(args.data_dir), emit, sender=Sender(config.room.id), now=clock.now,
        timezone=config.room.timezone,
    )  # fmt: skip
    room = Room(
        config,
        clock=clock,
        journal=journal,
        link=link,
        lighting=devices.lighting,
        call_lamp=devices.call_button,
        annunciator=devices.buzzer,
        nibp=devices.nibp,
        audio=devices.audio,
        library=devices.library,
        devices=devices.present(),
        heartbeat_s=10.0 * args.time_scale,
        simulator=devices.act if args.simulate else None,
        listeners=[devices.observe],
        # Under --time-scale the room's clock runs ahead of the senders': no age check.
        command_max_age_s=config.mqtt.command_max_age_s if args.time_scale == 1.0 else None,
        records=records,
    )
    return room, link, devices, clock, records


def self_test(config: Config, args: argparse.Namespace) -> int:
    """``roomd --self-test``: the room's checklist on its own devices; 0 when nothing failed."""
    from controller.selftest import SelfTest, print_results

    inbox = Inbox()
    devices = Devices(config, inbox.put, SystemClock(), simulate=args.simulate)
    try:
        return print_results(SelfTest(config, devices, inbox).run())
    finally:
        devices.close()


def config_refused(exc: ConfigError) -> int:
    """Say what is wrong with the configuration, one line per problem on stderr; exit 2."""
    for problem in exc.problems:
        print(f"{exc.path}: {problem}", file=sys.stderr)
    return 2


def report_main(argv: list[str]) -> int:
    """``roomd report <session_id>``: build a session's record again from the journal."""
    from controller.record.files import rebuild_from_journal

    p = argparse.ArgumentParser(prog="roomd report", description=report_main.__doc__)
    p.add_argument("session_id")
    p.add_argument("--config", default=DEFAULT_CONFIG)
    p.add_argument("--data-dir", default=DEFAULT_DATA_DIR)
    args = p.parse_args(argv)
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        return config_refused(exc)
    try:
        journal = Journal(Path(args.data_dir) / "journal.sqlite")
    except JournalError as exc:
        print(f"roomd: {exc}", file=sys.stderr)
        return 1
    try:
        ready = rebuild_from_journal(
            journal, args.session_id, Path(args.data_dir), room_id=config.room.id,
            timezone=config.room.timezone,
        )  # fmt: skip
    except LookupError as exc:
        print(f"roomd report: {exc}", file=sys.stderr)
        return 1
    finally:
        journal.close()
    print(ready["path"])
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the room until SIGTERM/SIGINT; exit 2 on a bad config."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["report"]:
        return report_main(argv[1:])
    args = parse_args(argv)
    setup_logging(args.log_level)
    try:
        config = load_config(args.config)
        if args.time_scale != 1.0 and not args.simulate:
            raise ConfigError("--time-scale", ["only allowed with --simulate"])
        if args.time_scale <= 0:
            raise ConfigError("--time-scale", ["must be positive"])
    except ConfigError as exc:
        return config_refused(exc)
    if args.self_test:
        return self_test(config, args)
    journal_path = Path(args.data_dir) / "journal.sqlite"
    try:
        journal, recovery = open_journal(journal_path, datetime.now(UTC), config.journal)
    except (JournalError, OSError) as exc:
        return refuse_to_start(config, args, classify(exc, journal_path))
    if recovery is not None:
        log.critical(
            "journal damaged (%s): kept as %s; a new journal continues at seq %d",
            recovery.reason,
            recovery.damaged_file,
            recovery.first_seq,
        )
    # SimpleQueue: its put() is safe in a signal handler (Queue's lock could deadlock there).
    inbox = Inbox()
    notifier = Notifier()
    try:
        room, link, devices, clock, records = build_room(config, args, journal, inbox)
    except ConfigError as exc:
        journal.close()
        return config_refused(exc)

    def stop(signum: int, frame: FrameType | None) -> None:
        inbox.put(Shutdown())

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    room.add_listener(
        lambda event: (
            notifier.notify(f"STATUS=room {config.room.id}: {event.data['to']}")
            if event.type == "phase_changed"
            else None
        )
    )
    try:
        room.resume()
    except StorageError as exc:
        journal.close()
        devices.close()
        return refuse_to_start(config, args, exc)
    if recovery is not None:
        room.health.journal_recovered(recovery.damaged_file, recovery.last_seq, recovery.reason)
    if journal.lost is not None:
        lost = journal.lost
        log.critical("journal: events %d-%d were lost while the room was down", *lost)
        reason = "committed events missing (the -wal file was removed or cut while down)"
        room.health.journal_recovered(None, lost[0] - 1, reason, lost=lost)
    devices.start()
    # Under --simulate the machine's clock is whatever it is: the simulated room trusts it.
    clock_watch = None if args.simulate else ClockWatch(inbox.put)
    if clock_watch is not None:
        clock_watch.start()
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
        CoreLoop(
            room, inbox, clock, alive=notifier.alive, notify=notifier.notify,
            annunciator=devices.buzzer,
        ).run()  # fmt: skip
    except JournalError as exc:
        log.critical("journal failure, stopping: %s", exc)
        code = 1
        # The room's own failure signal, for whoever is in the room; systemd restarts us.
        devices.buzzer.annunciate("failure")
        time.sleep(FAILURE_SIGNAL_S)
    finally:
        notifier.notify("STOPPING=1")
        link.stop()
        if clock_watch is not None:
            clock_watch.close()
        devices.close()
        if not records.close():
            log.error("stopped while writing a session record: `roomd report` writes it again")
        journal.close()
    log.info("room %s stopped", config.room.id)
    return code


def refuse_to_start(config: Config, args: argparse.Namespace, error: StorageError) -> int:
    """The journal cannot be used: say which file and why, sound the failure pattern, exit 1.

    The file is left where it is (only damage sets a journal aside, in ``open_journal``).
    """
    print(f"roomd: cannot start: {error}", file=sys.stderr)
    log.critical("cannot start: %s", error)
    signal_failure(config, args.simulate)
    return 1


def signal_failure(config: Config, simulate: bool) -> None:
    """The buzzer's failure pattern for ``FAILURE_SIGNAL_S``, for whoever is in the room."""
    try:
        from hw.buzzer import Buzzer

        pins = None
        if simulate:
            from gpiozero.pins.mock import MockFactory

            pins = MockFactory()
        buzzer = Buzzer(config.hardware.buzzer.pin, pin_factory=pins)
    except Exception:  # no buzzer to sound: the exit code and the log must do
        log.exception("the buzzer could not sound the failure pattern")
        return
    try:
        buzzer.annunciate("failure")
        time.sleep(FAILURE_SIGNAL_S)
    finally:
        buzzer.close()


if __name__ == "__main__":
    raise SystemExit(main())
