"""systemd/99-roomd.rules: syntax (udevadm's own parser, isolated) and what each rule does."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

RULES = Path(__file__).resolve().parents[2] / "systemd" / "99-roomd.rules"
MATCH_OPS = ("==", "!=")
ASSIGN_OPS = ("=", "+=", "-=", ":=")
KEYS = {
    "ACTION", "SUBSYSTEM", "SUBSYSTEMS", "KERNEL", "ATTRS", "ATTR", "ENV", "SYMLINK",
    "GROUP", "MODE", "GOTO", "LABEL",
}  # fmt: skip
TOKEN = re.compile(r'\s*([A-Z]+)(?:\{([^}]+)\})?\s*(==|!=|\+=|-=|:=|=)\s*"([^"]*)"\s*(?:,|$)')


def _rules(text: str) -> list[list[tuple[str, str | None, str, str]]]:
    rules = []
    for n, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        tokens = []
        pos = 0
        while pos < len(line):
            m = TOKEN.match(line, pos)
            assert m, f"line {n}: cannot parse from {line[pos:]!r}"
            tokens.append((m.group(1), m.group(2), m.group(3), m.group(4)))
            pos = m.end()
        rules.append(tokens)
    return rules


def _uncommented_variants(text: str) -> str:
    """The documented alternatives (commented-out rules) must parse too."""
    return "\n".join(
        line[1:] for line in text.splitlines() if re.match(r"#(ENV|KERNEL|SUBSYSTEMS)\b", line)
    )


def test_keys_and_operators() -> None:
    text = RULES.read_text()
    for rule in _rules(text) + _rules(_uncommented_variants(text)):
        for key, _attr, op, _value in rule:
            assert key in KEYS, key
            if key in ("ACTION", "SUBSYSTEM", "SUBSYSTEMS", "KERNEL", "ATTRS"):
                assert op in MATCH_OPS, (key, op)
            elif key in ("SYMLINK", "GROUP", "MODE", "GOTO", "LABEL"):
                assert op in ASSIGN_OPS, (key, op)


def test_stable_names() -> None:
    text = RULES.read_text()
    named: dict[str, list[tuple[str, str | None, str, str]]] = {}
    for rule in _rules(text):
        links = [v for k, _a, op, v in rule if k == "SYMLINK" and op == "+="]
        for link in links:
            named[link] = rule
    assert set(named) == {"roomd/oximeter", "roomd/nibp", "roomd/dmx"}
    for rule in named.values():
        d = {(k, a): v for k, a, _op, v in rule}
        assert d[("GROUP", None)] == "dialout" and d[("MODE", None)] == "0660"
        assert d[("ENV", "ID_MM_DEVICE_IGNORE")] == "1"
        assert re.fullmatch(r"[0-9a-f]{4}", d[("ATTRS", "idVendor")])
        assert re.fullmatch(r"[0-9a-f]{4}", d[("ATTRS", "idProduct")])
        assert d[("ATTRS", "serial")].startswith("REPLACE-ME-"), "a placeholder to fill in"
    dmx = {(k, a): v for k, a, _op, v in named["roomd/dmx"]}
    assert (dmx[("ATTRS", "idVendor")], dmx[("ATTRS", "idProduct")]) == ("0403", "6001")
    # Rules run for tty devices only and never on removal.
    assert 'SUBSYSTEM!="tty", GOTO="roomd_end"' in text and 'LABEL="roomd_end"' in text


def test_udevadm_parses_rules(tmp_path: Path) -> None:
    """systemd 252 has no `udevadm verify` (254+): run `udevadm test`, which loads and checks
    every rules file, inside a private mount namespace where /etc/udev/rules.d, /dev and
    /run are scratch directories — the host's udev, /dev and /run are never touched. /run/udev
    is made inside the fresh /run: a host where no udev daemon has run has none."""
    udevadm, unshare = shutil.which("udevadm"), shutil.which("unshare")
    if udevadm is None:
        pytest.skip("udevadm not found: install the Debian package 'udev'")
    if unshare is None:
        pytest.skip("unshare not found: install the Debian package 'util-linux'")
    if os.geteuid() != 0:
        pytest.skip("needs root for a private mount namespace (unshare -m)")
    device = next(
        (d for d in ("/sys/class/tty/ttyS0", "/sys/class/tty/tty") if Path(d).exists()), None
    )
    if device is None:
        pytest.skip("no tty device in /sys/class/tty to simulate an event for")
    rules_dir = tmp_path / "rules.d"
    rules_dir.mkdir()
    shutil.copy(RULES, rules_dir / RULES.name)
    (rules_dir / "98-broken.rules").write_text('SUBSYSTEM=="tty", BOGUS{x}=="y"\n')
    script = (
        "set -e; mount -t tmpfs none /run; mkdir /run/udev; mount -t tmpfs none /dev; "
        f"mount --bind {rules_dir} /etc/udev/rules.d; {udevadm} test {device} 2>&1"
    )
    result = subprocess.run(
        [unshare, "--mount", "--propagation", "private", "sh", "-c", script],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    out = result.stdout + result.stderr
    if "Operation not permitted" in out or "cannot" in out.split("\n", 1)[0]:
        pytest.skip(f"no private mount namespace here: {out.strip()[:200]}")
    assert "Reading rules file: /etc/udev/rules.d/99-roomd.rules" in out, out
    # The harness sees errors (our broken file) …
    assert "98-broken.rules:1 Invalid key 'BOGUS'" in out, out
    # … and there are none in ours.
    ours = [ln for ln in out.splitlines() if "99-roomd.rules:" in ln]
    assert ours == [], ours
