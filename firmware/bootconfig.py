#!/usr/bin/env python3
"""Merge roomd's boot configuration fragment into the Raspberry Pi's ``config.txt``.

    python3 firmware/bootconfig.py [--check] [--config /boot/firmware/config.txt]
                                   [--fragment firmware/roomd-config.txt] [--force]

The fragment goes between ``# BEGIN roomd`` and ``# END roomd`` under an ``[all]``
section: appended at the end the first time, replaced in place afterwards. Running it
again changes nothing. Before writing, the old file is copied to
``config.txt.roomd-bak-<UTC timestamp>`` (never overwriting an earlier backup).

Lines *outside* the block that contradict it (``enable_uart=0``, ``dtparam=i2s=on`` on the
PWM pins, another PWM overlay, ``miniuart-bt``, a serial console in ``cmdline.txt`` …)
are conflicts: the merge is refused (exit 3) unless ``--force``.

Exit status: 0 up to date / merged; 1 ``--check`` found a difference or a conflict (the
diff is printed); 2 bad usage, unreadable file or broken markers; 3 merge refused.

Standard library only: it runs with the Pi's own ``python3`` before anything is installed.
"""

from __future__ import annotations

import argparse
import difflib
import os
import re
import shutil
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

BEGIN = "# BEGIN roomd"
END = "# END roomd"
BEGIN_LINE = (
    f"{BEGIN} (managed by firmware/bootconfig.py: edit firmware/roomd-config.txt, not this block)"
)
DEFAULT_CONFIG = Path("/boot/firmware/config.txt")
DEFAULT_FRAGMENT = Path(__file__).resolve().with_name("roomd-config.txt")

# Model filters that select the same boards ([pi4] also matches the 400 and CM4, …).
_FAMILIES = {
    "pi4": "4", "pi400": "4", "cm4": "4", "cm4s": "4",
    "pi5": "5", "pi500": "5", "cm5": "5",
    "pi3": "3", "pi3+": "3", "cm3": "3", "pi02": "3",
    "pi0": "0", "pi0w": "0", "pi1": "1", "pi2": "2",
}  # fmt: skip
# Serial consoles that would send kernel messages to the monitor's UART.
_SERIAL_CONSOLE = re.compile(r"(?:^|\s)console=(serial0|ttyAMA0|ttyS0)\b")


class BootConfigError(Exception):
    """A file that cannot be merged safely (exit status 2)."""


@dataclass(frozen=True)
class Setting:
    """One active ``key=value`` line and the section filter it sits under."""

    lineno: int
    section: str
    key: str
    value: str
    text: str


@dataclass(frozen=True)
class Conflict:
    """A line outside the block that contradicts it."""

    where: str
    text: str
    why: str

    def __str__(self) -> str:
        return f"{self.where}: '{self.text}' — {self.why}"


def find_block(lines: Sequence[str]) -> tuple[int, int] | None:
    """Index of the BEGIN and END lines of the roomd block, or None if there is none."""
    begins = [i for i, line in enumerate(lines) if line.strip().startswith(BEGIN)]
    ends = [i for i, line in enumerate(lines) if line.strip() == END]
    if not begins and not ends:
        return None
    if len(begins) != 1 or len(ends) != 1 or ends[0] < begins[0]:
        raise BootConfigError(
            f"expected one '{BEGIN}' line followed by one '{END}' line, found "
            f"{len(begins)} BEGIN at {[i + 1 for i in begins]} and {len(ends)} END at "
            f"{[i + 1 for i in ends]}; fix the markers by hand"
        )
    return begins[0], ends[0]


def settings(lines: Iterable[str], first_lineno: int = 1, section: str = "all") -> list[Setting]:
    """Active settings with the section filter in force, for the given lines."""
    out: list[Setting] = []
    for n, raw in enumerate(lines, start=first_lineno):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1].strip().lower()
            continue
        key, sep, value = line.partition("=")
        if sep:
            out.append(Setting(n, section, key.strip().lower(), value.strip(), raw.strip()))
    return out


def section_at_end(lines: Iterable[str]) -> str:
    """The section filter in force after the given lines ("all" if none)."""
    section = "all"
    for raw in lines:
        line = raw.split("#", 1)[0].strip()
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1].strip().lower()
    return section


def _overlap(a: str, b: str) -> bool:
    """Whether two section filters can both apply on one board (conservatively)."""
    if "none" in (a, b):
        return False
    fa, fb = _FAMILIES.get(a), _FAMILIES.get(b)
    return fa is None or fb is None or fa == fb


def _dtparams(value: str) -> dict[str, str]:
    params: dict[str, str] = {}
    for item in value.split(","):
        name, sep, val = item.strip().partition("=")
        if name:
            params[name.lower()] = val.strip().lower() if sep else "on"
    return params


def _overlay_name(value: str) -> str:
    return value.split(",", 1)[0].strip().lower()


def find_conflicts(outside: Sequence[Setting], fragment: Sequence[Setting]) -> list[Conflict]:
    """Lines outside the block that contradict the fragment."""
    conflicts: list[Conflict] = []
    ours_overlay_lines = [f for f in fragment if f.key == "dtoverlay"]
    ours_overlays = {_overlay_name(f.value) for f in ours_overlay_lines}
    ours_overlays.discard("")
    for s in outside:
        where = f"line {s.lineno} [{s.section}]"
        for f in fragment:
            if not _overlap(s.section, f.section):
                continue
            if s.key == f.key and s.key not in ("dtoverlay", "dtparam") and s.value != f.value:
                conflicts.append(Conflict(where, s.text, f"roomd needs '{f.text}'"))
            elif s.key == f.key == "dtparam":
                theirs, ours = _dtparams(s.value), _dtparams(f.value)
                for name in sorted(theirs.keys() & ours.keys()):
                    if theirs[name] != ours[name]:
                        conflicts.append(
                            Conflict(where, s.text, f"roomd needs 'dtparam={name}={ours[name]}'")
                        )
        if s.key == "dtparam" and s.section != "none":
            if _dtparams(s.value).get("i2s") in ("on", "true", "yes", "1"):
                conflicts.append(
                    Conflict(where, s.text, "I2S uses GPIO 18-21, where roomd's PWM lights are")
                )
        elif s.key == "dtoverlay" and s.section != "none":
            name = _overlay_name(s.value)
            disable_bt = [f for f in ours_overlay_lines if _overlay_name(f.value) == "disable-bt"]
            if name in ("miniuart-bt", "pi3-miniuart-bt") and any(
                _overlap(s.section, f.section) for f in disable_bt
            ):
                conflicts.append(
                    Conflict(where, s.text, "roomd uses dtoverlay=disable-bt for the UART")
                )
            elif name.startswith("pwm") and name in ours_overlays:
                same = [f for f in ours_overlay_lines if _overlay_name(f.value) == name]
                if all(f.value.replace(" ", "") != s.value.replace(" ", "") for f in same):
                    conflicts.append(
                        Conflict(where, s.text, f"roomd loads '{same[0].text}' (GPIO 18/19)")
                    )
            elif name.startswith("pwm") and name not in ours_overlays:
                conflicts.append(Conflict(where, s.text, "another PWM overlay; roomd owns the PWM"))
    return conflicts


def cmdline_conflicts(cmdline: Path) -> list[Conflict]:
    """A serial console on the monitor's UART (``console=serial0`` in cmdline.txt)."""
    try:
        text = cmdline.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    m = _SERIAL_CONSOLE.search(text)
    if not m:
        return []
    return [
        Conflict(
            str(cmdline),
            f"console={m.group(1)}",
            "a serial console on the monitor's UART; remove it "
            "(sudo raspi-config nonint do_serial_cons 1)",
        )
    ]


def block_lines(fragment_text: str) -> list[str]:
    """The managed block: markers around the fragment (which must end in [all])."""
    body = fragment_text.splitlines()
    while body and not body[-1].strip():
        body.pop()
    if section_at_end(body) != "all":
        raise BootConfigError("the fragment must end in the [all] section")
    return [BEGIN_LINE, *body, END]


def merged(config_text: str, fragment_text: str) -> list[str]:
    """The config.txt lines with the roomd block in place."""
    lines = config_text.splitlines()
    block = block_lines(fragment_text)
    found = find_block(lines)
    if found is not None:
        begin, end = found
        before, after = lines[:begin], lines[end + 1 :]
        if section_at_end(before) != "all":
            before = [*before, "[all]"]
        return [*before, *block, *after]
    before = list(lines)
    while before and not before[-1].strip():
        before.pop()
    if section_at_end(before) != "all":
        before += ["", "[all]"]
    return [*before, "", *block] if before else block


def outside_settings(lines: Sequence[str]) -> list[Setting]:
    """Settings of every line that is not inside the roomd block."""
    found = find_block(lines)
    if found is None:
        return settings(lines)
    begin, end = found
    before = settings(lines[:begin])
    after = settings(lines[end + 1 :], first_lineno=end + 2, section="all")
    return before + after


def backup_path(config: Path, now: datetime) -> Path:
    """A backup name that does not exist yet."""
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    candidate = config.with_name(f"{config.name}.roomd-bak-{stamp}")
    n = 1
    while candidate.exists():
        candidate = config.with_name(f"{config.name}.roomd-bak-{stamp}-{n}")
        n += 1
    return candidate


def write_atomically(path: Path, text: str) -> None:
    """Replace ``path`` by ``text`` without a window where it is half written (FAT too)."""
    tmp = path.with_name(f".{path.name}.roomd-tmp")
    with open(tmp, "w", encoding="utf-8", newline="\n") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    try:
        dirfd = os.open(path.parent, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dirfd)
    except OSError:
        pass  # vfat may refuse a directory fsync; the rename is already done
    finally:
        os.close(dirfd)


def run(argv: Sequence[str] | None = None, now: datetime | None = None) -> int:
    """The command line; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="bootconfig.py", description="Merge roomd's fragment into the Pi's config.txt."
    )
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="%(default)s")
    parser.add_argument("--fragment", type=Path, default=DEFAULT_FRAGMENT, help="%(default)s")
    parser.add_argument(
        "--cmdline", type=Path, default=None, help="default: cmdline.txt beside --config"
    )
    parser.add_argument(
        "--check", action="store_true", help="change nothing; exit 1 and print a diff if needed"
    )
    parser.add_argument("--force", action="store_true", help="merge despite conflicts")
    args = parser.parse_args(argv)
    config: Path = args.config
    cmdline: Path = args.cmdline or config.with_name("cmdline.txt")

    try:
        current = config.read_text(encoding="utf-8")
        fragment = args.fragment.read_text(encoding="utf-8")
        lines = current.splitlines()
        desired = "\n".join(merged(current, fragment)) + "\n"
        fragment_settings = settings(block_lines(fragment))
        conflicts = find_conflicts(outside_settings(lines), fragment_settings)
    except (OSError, UnicodeDecodeError, BootConfigError) as exc:
        print(f"bootconfig.py: {config}: {exc}", file=sys.stderr)
        return 2
    conflicts += cmdline_conflicts(cmdline)

    for c in conflicts:
        print(f"bootconfig.py: conflict: {c}", file=sys.stderr)
    up_to_date = desired == current

    if args.check:
        if not up_to_date:
            sys.stdout.writelines(
                difflib.unified_diff(
                    current.splitlines(keepends=True),
                    desired.splitlines(keepends=True),
                    fromfile=str(config),
                    tofile=f"{config} (with roomd)",
                )
            )
        if up_to_date and not conflicts:
            print(f"bootconfig.py: {config} is up to date")
            return 0
        return 1

    if conflicts and not args.force:
        print(
            "bootconfig.py: not merged: fix the conflicting lines above, or run with --force",
            file=sys.stderr,
        )
        return 3
    if up_to_date:
        print(f"bootconfig.py: {config} is up to date")
        return 0
    try:
        backup = backup_path(config, now or datetime.now(UTC))
        shutil.copy2(config, backup)
        write_atomically(config, desired)
    except OSError as exc:
        print(f"bootconfig.py: {config}: {exc}", file=sys.stderr)
        return 2
    print(f"bootconfig.py: merged the roomd block into {config} (backup: {backup.name})")
    print("bootconfig.py: reboot for it to take effect")
    return 0


def main() -> None:
    """Console entry point."""
    sys.exit(run())


if __name__ == "__main__":
    main()
