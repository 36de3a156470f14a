"""The broker provisioning tool: files, modes, idempotency, revocation, names and the ACL."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from mqtt_bridge.broker import provision as pv

SHIPPED_ACL = Path(pv.__file__).with_name("roomd.acl")


def mode(path: Path) -> int:
    """The permission bits of ``path``."""
    return stat.S_IMODE(path.stat().st_mode)


def passwd_users(d: Path) -> dict[str, str]:
    """name → hash of the password file."""
    return dict(line.split(":", 1) for line in (d / "passwd").read_text().splitlines())


def test_room_gets_a_password_file_an_entry_and_an_acl_block(tmp_path: Path) -> None:
    out = pv.provision(tmp_path, "room", "room-3")
    assert out.action == "created" and out.credential_file is not None
    password = out.credential_file.read_text().strip()
    assert len(password) >= 40 and out.password == password
    assert mode(out.credential_file) == 0o600
    assert mode(out.credential_file.parent) == 0o700
    assert pv.check_password(passwd_users(tmp_path)["room-3"], password)
    assert mode(tmp_path / "passwd") in (0o600, 0o640)
    assert mode(tmp_path / "roomd.acl") in (0o600, 0o640)
    assert "user room-3\n" in (tmp_path / "roomd.acl").read_text()


def test_password_hash_is_mosquitto_passwd_format() -> None:
    """``$7$101$<12-byte salt>$<PBKDF2-SHA512>``: the same as ``mosquitto_passwd``."""
    hashed = pv.hash_password("secret", salt=b"\x00" * 12)
    kind, iterations, salt, digest = hashed.split("$")[1:]
    assert (kind, iterations, salt) == ("7", "101", "AAAAAAAAAAAAAAAA")
    assert len(digest) == 88
    assert pv.check_password(hashed, "secret")
    assert not pv.check_password(hashed, "Secret")
    assert not pv.check_password("garbage", "secret")


@pytest.mark.skipif(shutil.which("mosquitto_passwd") is None, reason="mosquitto_passwd absent")
def test_hash_verifies_a_mosquitto_passwd_entry(tmp_path: Path) -> None:
    """Cross-check against the real tool (the security tests also log in with our hashes)."""
    f = tmp_path / "pw"
    subprocess.run(["mosquitto_passwd", "-c", "-b", str(f), "u", "pa55"], check=True, timeout=10)
    hashed = f.read_text().strip().split(":", 1)[1]
    assert pv.check_password(hashed, "pa55")


def test_provision_is_idempotent(tmp_path: Path) -> None:
    first = pv.provision(tmp_path, "clinician", "dr-tremblay")
    before = ((tmp_path / "passwd").read_text(), (tmp_path / "roomd.acl").read_text())
    again = pv.provision(tmp_path, "clinician", "dr-tremblay")
    assert again.action == "unchanged" and again.password is None
    assert ((tmp_path / "passwd").read_text(), (tmp_path / "roomd.acl").read_text()) == before
    assert first.credential_file is not None
    assert first.credential_file.read_text().strip() == first.password


def test_rotate_issues_a_new_password(tmp_path: Path) -> None:
    first = pv.provision(tmp_path, "observer", "wall-board")
    second = pv.provision(tmp_path, "observer", "wall-board", rotate=True)
    assert second.action == "rotated" and second.password != first.password
    hashed = passwd_users(tmp_path)["wall-board"]
    assert second.password is not None and pv.check_password(hashed, second.password)
    assert first.password is not None and not pv.check_password(hashed, first.password)
    assert len(passwd_users(tmp_path)) == 1


def test_one_username_one_role(tmp_path: Path) -> None:
    pv.provision(tmp_path, "room", "room-3")
    with pytest.raises(pv.ProvisionError, match="already a room"):
        pv.provision(tmp_path, "clinician", "room-3")


def test_revoke_removes_everything_and_is_idempotent(tmp_path: Path) -> None:
    pv.provision(tmp_path, "room", "room-3")
    keep = pv.provision(tmp_path, "room", "room-4")
    assert pv.revoke(tmp_path, "room-3") is True
    assert "room-3" not in passwd_users(tmp_path)
    assert "room-3" not in (tmp_path / "roomd.acl").read_text()
    assert not (tmp_path / "credentials" / "room-3.pass").exists()
    assert pv.list_users(tmp_path) == {"room-4": "room"}
    assert keep.password is not None
    assert pv.check_password(passwd_users(tmp_path)["room-4"], keep.password)
    assert pv.revoke(tmp_path, "room-3") is False


@pytest.mark.parametrize(
    ("role", "name"),
    [
        ("room", "Room-3"),
        ("room", "room_3"),
        ("room", "r" * 33),
        ("room", ""),
        ("room", "room/3"),
        ("room", "room+"),
        ("clinician", "dr smith"),
        ("clinician", "dr:smith"),
        ("clinician", "#"),
        ("observer", "-board"),
        ("archive", "arch ive"),
        ("admin", "root"),
    ],
)
def test_invalid_names_are_refused(tmp_path: Path, role: str, name: str) -> None:
    with pytest.raises(pv.ProvisionError):
        pv.provision(tmp_path, role, name)
    assert not (tmp_path / "passwd").exists()


@pytest.mark.parametrize(
    ("role", "name"), [("room", "r" * 32), ("clinician", "dr.j-smith_2"), ("archive", "clinicd")]
)
def test_valid_names(tmp_path: Path, role: str, name: str) -> None:
    assert pv.provision(tmp_path, role, name).action == "created"


def test_acl_blocks_follow_the_contract(tmp_path: Path) -> None:
    pv.provision(tmp_path, "room", "room-3")
    pv.provision(tmp_path, "clinician", "dr-a")
    pv.provision(tmp_path, "observer", "board")
    text = (tmp_path / "roomd.acl").read_text()
    blocks = {b.split("\n")[1]: b for b in text.split("\n\n") if b.startswith("# roomd-role:")}
    room = blocks["user room-3"]
    for leaf in ("status", "state", "events", "vitals", "vitals/nibp", "alarms", "replies/#"):
        assert f"topic write clinic/rooms/room-3/{leaf}\n" in room + "\n"
    assert "topic read clinic/rooms/room-3/plan" in room
    assert "topic read clinic/rooms/room-3/cmd/#" in room
    assert "+" not in room and "/sim" not in room and "readwrite" not in room
    doc = blocks["user dr-a"]
    # commands only on the attributed path, under the clinician's own name (issue 15)
    assert "topic write clinic/rooms/+/cmd/+/by/dr-a\n" in doc + "\n"
    assert [line for line in doc.splitlines() if "/rooms/+/cmd" in line] == [
        "topic write clinic/rooms/+/cmd/+/by/dr-a"
    ]
    assert "topic write clinic/rooms/+/plan" in doc
    assert "topic read clinic/rooms/+/events" in doc
    assert "read clinic/rooms/+/cmd" not in doc
    assert "topic write clinic/archive/cmd/#" in doc
    assert "topic read clinic/archive/replies/#" in doc
    assert "topic read clinic/rooms/+/replies/#" in doc
    board = blocks["user board"]
    assert "write" not in board.replace("# roomd-role", "")
    assert "topic read clinic/rooms/+/state" in board
    # an observer reads the rooms' replies but not the response topics under them, where a
    # room sends the text of its notes (contract v2), nor the archive's replies
    assert "topic read clinic/rooms/+/replies\n" in board + "\n"
    assert "replies/#" not in board and "archive/replies" not in board
    assert "topic read clinic/archive/status" in board
    # no line for anonymous clients, no pattern that would reach every user
    body = [ln for ln in text.splitlines() if ln and not ln.startswith("#")]
    assert body[0].startswith("user ")
    assert not [ln for ln in body if ln.startswith("pattern")]


def test_archive_reads_the_rooms_and_sends_only_their_read_only_verbs(tmp_path: Path) -> None:
    out = pv.provision(tmp_path, "archive", "clinicd")
    assert out.role == "archive" and out.credential_file is not None
    rules = pv.role_rules("archive", "clinicd")
    writes = sorted(t for a, t in rules if a == "write")
    assert writes == [
        "clinic/archive/#",
        "clinic/rooms/+/cmd/events",
        "clinic/rooms/+/cmd/notes",
    ]
    reads = {t for a, t in rules if a == "read"}
    for leaf in pv.ROOM_OUTPUTS:
        assert f"clinic/rooms/+/{leaf}" in reads
    assert "clinic/archive/cmd/#" in reads
    assert not [t for t in reads if "/cmd/" in t and "archive" not in t]
    assert not [t for t in reads | set(writes) if "/plan" in t or "/sim" in t]
    assert pv.list_users(tmp_path) == {"clinicd": "archive"}


def test_prefix_is_recorded_and_used(tmp_path: Path) -> None:
    pv.provision(tmp_path, "room", "room-3", prefix="mtl/clinic")
    pv.provision(tmp_path, "observer", "board")  # keeps the recorded prefix
    text = (tmp_path / "roomd.acl").read_text()
    assert "topic write mtl/clinic/rooms/room-3/status" in text
    assert "topic read mtl/clinic/rooms/+/status" in text
    assert "clinic/rooms/+/" not in text.replace("mtl/clinic/rooms/+/", "")
    with pytest.raises(pv.ProvisionError, match="prefix"):
        pv.provision(tmp_path, "room", "room-4", prefix="bad prefix")


def test_site_additions_and_foreign_passwords_are_kept(tmp_path: Path) -> None:
    pv.provision(tmp_path, "room", "room-3")
    acl = tmp_path / "roomd.acl"
    acl.write_text(acl.read_text() + "user bridge\ntopic write clinic/bridge/#\n")
    with open(tmp_path / "passwd", "a") as fh:
        fh.write("bridge:$7$101$xxx$yyy\n")
    pv.provision(tmp_path, "observer", "board")
    pv.revoke(tmp_path, "room-3")
    assert acl.read_text().endswith(f"{pv.SITE_MARK}\nuser bridge\ntopic write clinic/bridge/#\n")
    assert passwd_users(tmp_path)["bridge"] == "$7$101$xxx$yyy"
    assert pv.list_users(tmp_path) == {"board": "observer"}
    with pytest.raises(pv.ProvisionError, match="not managed"):
        pv.provision(tmp_path, "clinician", "bridge")


def test_shipped_acl_is_the_generated_empty_acl() -> None:
    """The ACL in the repository is exactly what the tool writes with no users yet."""
    assert SHIPPED_ACL.read_text() == pv.render_acl("clinic", {})


def test_cli_never_prints_the_password_unless_asked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert pv.main(["--broker-dir", str(tmp_path), "room", "room-3"]) == 0
    printed = capsys.readouterr()
    password = (tmp_path / "credentials" / "room-3.pass").read_text().strip()
    assert password not in printed.out + printed.err
    assert "/etc/roomd/mqtt.pass" in printed.out and "systemctl reload mosquitto" in printed.out
    assert pv.main(["--broker-dir", str(tmp_path), "room", "room-3", "--rotate", "--show"]) == 0
    password = (tmp_path / "credentials" / "room-3.pass").read_text().strip()
    assert password in capsys.readouterr().out
    assert pv.main(["--broker-dir", str(tmp_path), "list"]) == 0
    assert "room      room-3" in capsys.readouterr().out
    assert pv.main(["--broker-dir", str(tmp_path), "room", "Bad_Name"]) == 1
    assert "invalid room name" in capsys.readouterr().err


def test_runs_as_a_module(tmp_path: Path) -> None:
    module = [sys.executable, "-m", "mqtt_bridge.broker.provision"]
    run = subprocess.run(
        [*module, "--broker-dir", str(tmp_path), "clinician", "dr-a"],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=Path(pv.__file__).parents[2],
    )
    assert run.returncode == 0, run.stderr
    assert pv.list_users(tmp_path) == {"dr-a": "clinician"}


def test_room_password_file_is_accepted_by_roomd(tmp_path: Path) -> None:
    """roomd's link reads the credential file as is (it refuses files others can read)."""
    from mqtt_bridge.link import read_password

    out = pv.provision(tmp_path, "room", "room-3")
    assert out.credential_file is not None
    assert read_password(str(out.credential_file)) == out.password


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to hand files to the mosquitto group")
def test_broker_files_are_readable_by_the_mosquitto_group_only(tmp_path: Path) -> None:
    import grp

    try:
        gid = grp.getgrnam("mosquitto").gr_gid
    except KeyError:
        pytest.skip("no mosquitto group")
    pv.provision(tmp_path, "room", "room-3")
    for name in ("passwd", "roomd.acl"):
        st = (tmp_path / name).stat()
        assert (stat.S_IMODE(st.st_mode), st.st_gid) == (0o640, gid)
    assert stat.S_IMODE((tmp_path / "credentials" / "room-3.pass").stat().st_mode) == 0o600
