"""``clinicd --config clinicd.toml [--data-dir DIR]``: run the clinic archive until SIGTERM."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from types import FrameType

from controller.errors import ConfigError
from controller.sdnotify import Notifier
from controller.system import setup_logging
from mqtt_bridge.clinicd.config import load_config
from mqtt_bridge.clinicd.service import ClinicArchive

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


def main(argv: list[str] | None = None) -> int:
    """Run the archive; 0 after SIGTERM/SIGINT, 2 on a bad config, 1 if it cannot start."""
    args = parse_args(argv)
    setup_logging(args.log_level)
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"{exc.path}: {problem}", file=sys.stderr)
        return 2
    db = config.db_path(args.data_dir)
    notifier = Notifier()
    try:
        archive = ClinicArchive(config, db)
        archive.start(alive=notifier.alive)
    except ConfigError as exc:  # e.g. a password file others can read
        for problem in exc.problems:
            print(f"{exc.path}: {problem}", file=sys.stderr)
        return 2
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
    while not stopping.wait(1.0):
        pass
    notifier.notify("STOPPING=1")
    archive.stop()
    log.info("archive stopped")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
