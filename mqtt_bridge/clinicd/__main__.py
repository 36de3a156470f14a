"""``clinicd --config clinicd.toml [--data-dir DIR]``: run the clinic archive until SIGTERM.

``clinicd report PATIENT_REF [--config …] [--data-dir …] [--out DIR] [--tz ZONE]`` writes the
course report (``course.html``, ``course.csv``) from the archive's database.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from controller.errors import CommandError, ConfigError
from controller.sdnotify import Notifier
from controller.system import setup_logging
from mqtt_bridge.clinicd.config import load_config
from mqtt_bridge.clinicd.report import course_csv, course_html
from mqtt_bridge.clinicd.service import ClinicArchive
from mqtt_bridge.clinicd.store import Store
from mqtt_bridge.clinicd.verbs import Archive

log = logging.getLogger("clinicd")

DEFAULT_CONFIG = "/etc/clinicd/clinicd.toml"
DEFAULT_DATA_DIR = "/var/lib/clinicd"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line."""
    p = argparse.ArgumentParser(prog="clinicd", description="The clinic archive.")
    p.add_argument("--config", default=DEFAULT_CONFIG, help="clinicd.toml (default %(default)s)")
    p.add_argument("--data-dir", default=DEFAULT_DATA_DIR, help="where archive.sqlite lives")
    p.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    return p.parse_args(argv)


def config_failed(exc: ConfigError) -> int:
    """Say every bad key on stderr, naming the file (one line each); the exit code 2."""
    print(exc, file=sys.stderr)
    return 2


def report_main(argv: list[str]) -> int:
    """Write a patient's course report; its HTML path on stdout. 1: no such patient."""
    p = argparse.ArgumentParser(prog="clinicd report", description="Write a course report.")
    p.add_argument("patient_ref")
    p.add_argument("--config", default=DEFAULT_CONFIG)
    p.add_argument("--data-dir", default=DEFAULT_DATA_DIR)
    p.add_argument("--out", default=None, help="folder (default ./course-<patient_ref>)")
    p.add_argument("--tz", default=None, help="time zone of the page (default: this machine's)")
    args = p.parse_args(argv)
    try:
        config = load_config(args.config)
        tz = ZoneInfo(args.tz) if args.tz else None
    except ConfigError as exc:
        return config_failed(exc)
    except (ZoneInfoNotFoundError, ValueError):
        print(f"--tz: unknown time zone {args.tz!r}", file=sys.stderr)
        return 2
    db = config.db_path(args.data_dir)
    if not db.is_file():
        print(f"clinicd report: no archive at {db}", file=sys.stderr)
        return 1
    store = Store(db)
    try:
        course = Archive(store, config.course).course(args.patient_ref)
    except CommandError as exc:
        print(f"clinicd report: {exc.message}", file=sys.stderr)
        return 1
    finally:
        store.close()
    out = Path(args.out or f"course-{args.patient_ref}")
    out.mkdir(parents=True, exist_ok=True)
    (out / "course.html").write_text(course_html(course, tz, args.tz or ""), "utf-8")
    (out / "course.csv").write_text(course_csv(course), "utf-8")
    print(out / "course.html")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the archive; 0 after SIGTERM/SIGINT, 2 on a bad config, 1 if it cannot start."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["report"]:
        return report_main(argv[1:])
    args = parse_args(argv)
    setup_logging(args.log_level)
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        return config_failed(exc)
    db = config.db_path(args.data_dir)
    notifier = Notifier()
    try:
        archive = ClinicArchive(config, db)
        archive.start(alive=notifier.alive)
    except ConfigError as exc:  # e.g. a password file others can read
        return config_failed(exc)
    except (OSError, RuntimeError) as exc:
        print(f"clinicd: {exc}", file=sys.stderr)
        return 1
    stopping = threading.Event()

    def stop(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    notifier.notify("READY=1")
    log.info("archive ready: %s", db)
    while not stopping.wait(1.0) and archive.failure is None:
        pass
    notifier.notify("STOPPING=1")
    archive.stop()
    if archive.failure is not None:
        return 1
    log.info("archive stopped")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
