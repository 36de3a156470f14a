"""systemd/install.sh into a temporary root: idempotent, config kept, uninstall and purge."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from deploy_helpers import ROOT, make_verify_root, verify

INSTALL = ROOT / "systemd" / "install.sh"
UNINSTALL = ROOT / "systemd" / "uninstall.sh"
MINIMAL_CONFIG = '[room]\nid = "room-1"\n\n[mqtt]\nhost = "127.0.0.1"\nport = 1883\n'


def _example(tmp_path: Path) -> Path:
    repo_example = ROOT / "roomd.example.toml"
    if repo_example.exists():
        return repo_example
    example = tmp_path / "roomd.example.toml"
    example.write_text(MINIMAL_CONFIG)
    return example


def _run(script: Path, dest: Path, example: Path, *args: str, **env: str) -> str:
    environ = {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", "/root"),
        "DESTDIR": str(dest),
        "ROOMD_SKIP_PIP": "1",
        "ROOMD_EXAMPLE_CONFIG": str(example),
        **env,
    }
    result = subprocess.run(
        ["bash", str(script), *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
        env=environ,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def _tree(root: Path) -> dict[str, tuple[str, int, int]]:
    """path → (content hash or link target, mode, mtime_ns) for every entry under root."""
    out = {}
    for p in sorted(root.rglob("*")):
        st = p.lstat()
        if p.is_symlink():
            what = "-> " + os.readlink(p)
        elif p.is_dir():
            what = "dir"
        else:
            what = hashlib.sha256(p.read_bytes()).hexdigest()
        out[str(p.relative_to(root))] = (what, st.st_mode, 0 if p.is_dir() else st.st_mtime_ns)
    return out


@pytest.fixture
def dest(tmp_path: Path) -> Path:
    return tmp_path / "root"


def test_install_layout_and_idempotence(tmp_path: Path, dest: Path) -> None:
    example = _example(tmp_path)
    log1 = _run(INSTALL, dest, example, "--with-watchdog")
    tree1 = _tree(dest)
    log2 = _run(INSTALL, dest, example, "--with-watchdog")
    assert _tree(dest) == tree1, "a second install changed the tree"
    changed = [ln for ln in log2.splitlines() if ln.split()[0] in ("installed", "mkdir", "chmod")]
    assert changed == [], log2
    assert "installed  /etc/systemd/system/roomd.service" in log1

    mode = lambda rel: (dest / rel).stat().st_mode & 0o7777  # noqa: E731
    assert (dest / "etc/roomd/roomd.toml").read_text() == example.read_text()
    assert mode("etc/roomd/roomd.toml") == 0o640
    assert mode("var/lib/roomd") == 0o750 and (dest / "var/lib/roomd/music").is_dir()
    assert (dest / "etc/systemd/system/roomd.service").read_bytes() == (
        ROOT / "systemd/roomd.service"
    ).read_bytes()
    assert (dest / "etc/udev/rules.d/99-roomd.rules").exists()
    assert (
        "RuntimeWatchdogSec="
        in (dest / "etc/systemd/system.conf.d/roomd-watchdog.conf").read_text()
    )
    assert "m roomd gpio" in (dest / "etc/sysusers.d/roomd.conf").read_text()
    assert (dest / "opt/roomd/venv/bin/python").exists()
    assert (dest / "opt/roomd/firmware/bootconfig.py").stat().st_mode & 0o111
    # Nothing of the temporary root leaks into the venv's recorded paths.
    assert str(dest) not in (dest / "opt/roomd/venv/pyvenv.cfg").read_text()
    # DESTDIR: no user, no systemctl.
    assert "simulated  user roomd" in log1 and "skipped    systemctl enable" in log1

    # The installed tree is what systemd sees: verify it there.
    make_verify_root(dest)
    result = verify(dest)
    assert result.returncode == 0 and result.stdout + result.stderr == "", result.stderr


def test_local_edits_are_kept(tmp_path: Path, dest: Path) -> None:
    example = _example(tmp_path)
    _run(INSTALL, dest, example)
    config = dest / "etc/roomd/roomd.toml"
    config.write_text('[room]\nid = "room-7"\n')
    rules = dest / "etc/udev/rules.d/99-roomd.rules"
    rules.write_text(rules.read_text().replace("REPLACE-ME-DMX-SERIAL", "EN123456"))
    log = _run(INSTALL, dest, example)
    assert config.read_text() == '[room]\nid = "room-7"\n'
    assert "EN123456" in rules.read_text()
    assert (dest / "etc/udev/rules.d/99-roomd.rules.new").exists()
    assert "kept       /etc/roomd/roomd.toml" in log

    log = _run(UNINSTALL, dest, example)
    assert not (dest / "opt/roomd").exists()
    assert not (dest / "etc/systemd/system/roomd.service").exists()
    assert config.exists() and (dest / "var/lib/roomd").is_dir()
    assert rules.exists(), "edited rules (the technician's serials) survive a plain uninstall"
    assert not (dest / "etc/udev/rules.d/99-roomd.rules.new").exists()

    _run(UNINSTALL, dest, example, "--purge")
    for rel in ("etc/roomd", "var/lib/roomd", "etc/udev/rules.d/99-roomd.rules"):
        assert not (dest / rel).exists(), rel


def test_uninstall_keeps_data_removes_unedited_rules(tmp_path: Path, dest: Path) -> None:
    example = _example(tmp_path)
    _run(INSTALL, dest, example)
    journal = dest / "var/lib/roomd/journal.sqlite3"
    journal.write_bytes(b"events")
    _run(INSTALL, dest, example, "uninstall")
    assert journal.read_bytes() == b"events"
    assert not (dest / "etc/udev/rules.d/99-roomd.rules").exists()
    # Uninstalling twice is fine too.
    _run(INSTALL, dest, example, "uninstall")


def test_refuses_bad_arguments(tmp_path: Path) -> None:
    for args in (["--bogus"], ["--purge"]):
        r = subprocess.run(
            ["bash", str(INSTALL), *args], capture_output=True, text=True, check=False
        )
        assert r.returncode == 64, r.stderr


def test_shell_syntax_and_shellcheck() -> None:
    scripts = [str(INSTALL), str(UNINSTALL)]
    for s in scripts:
        subprocess.run(["bash", "-n", s], check=True)
    shellcheck = shutil.which("shellcheck")
    if shellcheck is None:
        pytest.skip("shellcheck not found: install the Debian package 'shellcheck'")
    r = subprocess.run([shellcheck, *scripts], capture_output=True, text=True, check=False)
    assert r.returncode == 0, r.stdout


@pytest.mark.skipif(
    os.environ.get("ROOMD_TEST_OFFLINE") == "1", reason="ROOMD_TEST_OFFLINE=1: no package index"
)
def test_real_pip_install(tmp_path: Path, dest: Path) -> None:
    """The whole install with a real venv and `pip install` of the project (needs the index).

    Built from a copy of the repository; if the tree has no README.md yet (pyproject names it
    as the readme) a placeholder is added to the copy only.
    """
    repo = tmp_path / "repo"
    shutil.copytree(
        ROOT,
        repo,
        ignore=shutil.ignore_patterns(".git", ".venv", "*.egg-info", "__pycache__", ".*_cache"),
    )
    if not (repo / "README.md").exists():
        (repo / "README.md").write_text("roomd\n")
    example = _example(tmp_path)
    env = {"ROOMD_SKIP_PIP": "0"}
    log = _run(repo / "systemd/install.sh", dest, example, **env)
    assert "pip        installed roomd 0.1.0" in log, log
    roomd = dest / "opt/roomd/venv/bin/roomd"
    assert roomd.read_text().splitlines()[0] in (
        "#!/opt/roomd/venv/bin/python",
        "#!/opt/roomd/venv/bin/python3",
    )
    # Runs from the staged venv (the interpreter recorded in the shebang is not there yet).
    venv_python = dest / "opt/roomd/venv/bin/python3"
    r = subprocess.run(
        [str(venv_python), "-c", "import controller.config, paho.mqtt, pydantic, serial, vlc"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    tree = _tree(dest)
    log2 = _run(repo / "systemd/install.sh", dest, example, **env)
    assert "unchanged  /opt/roomd/venv (built from this source)" in log2
    assert _tree(dest) == tree
    make_verify_root(dest)
    result = verify(dest)
    assert result.returncode == 0 and result.stdout + result.stderr == "", result.stderr
