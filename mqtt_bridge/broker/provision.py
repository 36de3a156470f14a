"""Provision the clinic broker's users: password file entries, ACL blocks and credential files.

Usage (as root on the broker host; ``--broker-dir`` defaults to /etc/mosquitto/roomd)::

    python3 -m mqtt_bridge.broker.provision room room-3
    python3 -m mqtt_bridge.broker.provision clinician dr-tremblay
    python3 -m mqtt_bridge.broker.provision observer nurses-dashboard
    python3 -m mqtt_bridge.broker.provision archive clinicd
    python3 -m mqtt_bridge.broker.provision revoke dr-tremblay
    python3 -m mqtt_bridge.broker.provision list

then ``systemctl reload mosquitto`` (SIGHUP) so the broker rereads both files.

Files in the broker directory:

``passwd``
    Mosquitto's password file (``user:$7$<iterations>$<salt>$<PBKDF2-SHA512>``, the format of
    ``mosquitto_passwd``). Lines this tool did not write are kept.
``roomd.acl``
    Mosquitto's ACL file, rebuilt from the role templates below on every change: one ``user``
    block per provisioned user, headed by a ``# roomd-role:`` marker that is how this tool
    remembers who has which role. Anything after the site-additions marker is kept verbatim.
``credentials/<name>.pass``
    The new password in clear, mode 0600 in a 0700 folder, to hand over (a room's goes to its
    ``/etc/roomd/mqtt.pass``) and then delete. It is the only place the password is written;
    it is printed only with ``--show``.

The tool is stdlib-only and idempotent: provisioning an existing user with the same role
changes nothing (``--rotate`` issues a new password); revoking an absent user is not an error.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import fcntl
import grp
import hashlib
import hmac
import os
import re
import secrets
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

DEFAULT_BROKER_DIR = Path("/etc/mosquitto/roomd")
DEFAULT_PREFIX = "clinic"
PASSWD_NAME = "passwd"
ACL_NAME = "roomd.acl"
CREDENTIALS_DIR = "credentials"
LOCK_NAME = ".provision.lock"
ROLES = ("room", "clinician", "observer", "archive")

ROOM_NAME = re.compile(r"^[a-z0-9-]{1,32}$")
"""The contract's ``room.id``: the room's broker username is its room id."""
PERSON_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
"""Clinicians, observers and the archive: no ``:`` (password file), no space (ACL), no MQTT
wildcard."""
PREFIX = re.compile(r"^[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*$")
"""The same rule as ``[mqtt] topic_prefix`` in roomd.toml."""

ROOM_OUTPUTS = ("status", "state", "events", "vitals", "vitals/nibp", "alarms", "replies/#")
"""What a room publishes (leaves under its root). ``replies/#`` also matches ``replies`` and
leaves room for MQTT 5 response topics under ``<root>/replies/…``: a room may write nowhere
else, so a response topic outside its root is refused by the broker."""
ROOM_INPUTS = ("plan", "cmd/#")
"""What a room subscribes to under its own root."""
OBSERVED = (*(leaf for leaf in ROOM_OUTPUTS if leaf != "replies/#"), "replies")
"""What an observer reads of a room: its outputs but not the MQTT 5 response topics under
``replies/``, where a room sends a requester the text of its notes (contract v2)."""
ARCHIVE_VERBS = ("events", "notes")
"""The rooms' read-only verbs the archive may send."""

PBKDF2_ITERATIONS = 101
"""The iteration count of ``mosquitto_passwd`` 2.0. The passwords are 256-bit random, so key
stretching adds nothing against guessing; every CONNECT costs the single-threaded broker one
hash, and a larger count would let a flood of bad logins delay the rooms' traffic."""
PASSWORD_BYTES = 32

ROLE_MARK = "# roomd-role:"
PREFIX_MARK = "# roomd-prefix:"
SITE_MARK = "# ==== site additions below this line are kept by provision ===="
RELOAD_HINT = "reload the broker so it rereads passwd and roomd.acl: systemctl reload mosquitto"


class ProvisionError(Exception):
    """A request the tool refuses (bad name, role clash, unreadable files)."""


@dataclass(frozen=True)
class Outcome:
    """What one ``provision`` call did."""

    name: str
    role: str
    action: str  # "created" | "rotated" | "unchanged"
    credential_file: Path | None
    password: str | None  # only when a new one was issued


# --- roles ------------------------------------------------------------------------------


def validate_name(role: str, name: str) -> None:
    """Raise ProvisionError unless ``name`` is a valid username for ``role``."""
    if role not in ROLES:
        raise ProvisionError(f"unknown role {role!r}; roles: {', '.join(ROLES)}")
    rule = ROOM_NAME if role == "room" else PERSON_NAME
    if not rule.fullmatch(name):
        raise ProvisionError(f"invalid {role} name {name!r}: must match {rule.pattern}")


def role_rules(role: str, name: str, prefix: str = DEFAULT_PREFIX) -> list[tuple[str, str]]:
    """The (access, topic) ACL lines the contract's ``role`` gives user ``name``."""
    rooms = f"{prefix}/rooms"
    if role == "room":
        root = f"{rooms}/{name}"
        return [("write", f"{root}/{leaf}") for leaf in ROOM_OUTPUTS] + [
            ("read", f"{root}/{leaf}") for leaf in ROOM_INPUTS
        ]
    outputs = [("read", f"{rooms}/+/{leaf}") for leaf in ROOM_OUTPUTS]
    archive = f"{prefix}/archive"
    if role == "clinician":
        # Commands only under the clinician's own user name: the room records that name as
        # `by`, proven by the broker (the payload's `by` is only declared).
        return [
            ("write", f"{rooms}/+/cmd/+/by/{name}"),
            ("write", f"{rooms}/+/plan"),
            ("write", f"{archive}/cmd/#"),
            *outputs,
            ("read", f"{archive}/status"),
            ("read", f"{archive}/replies/#"),
        ]
    if role == "observer":
        return [("read", f"{rooms}/+/{leaf}") for leaf in OBSERVED] + [
            ("read", f"{archive}/status")
        ]
    if role == "archive":
        return [
            ("write", f"{archive}/#"),
            *[("write", f"{rooms}/+/cmd/{verb}") for verb in ARCHIVE_VERBS],
            *outputs,
            ("read", f"{archive}/cmd/#"),
        ]
    raise ProvisionError(f"unknown role {role!r}")


def render_acl(prefix: str, users: dict[str, str], site: str = "") -> str:
    """The whole ACL file for ``users`` (name → role), with the kept ``site`` additions."""
    out = [
        "# Mosquitto ACL of the roomd clinic broker. GENERATED by mqtt_bridge/broker/provision.py:",
        "# edit the role templates there, or add site rules below the last marker line.",
        "#",
        "# Without a matching line a client may do nothing (Mosquitto denies by default), and",
        "# there are no lines for anonymous clients (allow_anonymous is false anyway).",
        "# `read` governs both SUBSCRIBE and delivery; `write` governs PUBLISH. Every user gets",
        "# an explicit block: no `pattern` lines, because a pattern applies to every user and",
        "# would give clinicians and observers a writable fake room named after themselves.",
        "#",
        "# Roles (a room's username is its room id; <root> = <prefix>/rooms/<room id>):",
        "#   room       write <root>/{status,state,events,vitals,vitals/nibp,alarms,replies/#}",
        "#              read  <root>/plan, <root>/cmd/#  (never another room, never sim/)",
        "#   clinician  write <prefix>/rooms/+/cmd/+/by/<own name>, <prefix>/rooms/+/plan,",
        "#                    <prefix>/archive/cmd/#  (commands only on the attributed path:",
        "#                    the room records the topic's user as `by`, proven)",
        "#              read  every room's outputs, <prefix>/archive/{status,replies/#}",
        "#   observer   read  every room's outputs but replies/… (a room's notes go there),",
        "#                    <prefix>/archive/status",
        "#   archive    write <prefix>/archive/#, <prefix>/rooms/+/cmd/{events,notes}",
        "#              read  every room's outputs, <prefix>/archive/cmd/#",
        f"{PREFIX_MARK} {prefix}",
    ]
    for name in sorted(users):
        role = users[name]
        out += ["", f"{ROLE_MARK} {role}", f"user {name}"]
        out += [f"topic {access} {topic}" for access, topic in role_rules(role, name, prefix)]
    out += ["", SITE_MARK]
    text = "\n".join(out) + "\n"
    return text + site if site else text


def parse_acl(text: str) -> tuple[str | None, dict[str, str], str]:
    """(prefix, users name → role, site additions) of an ACL this tool wrote."""
    prefix: str | None = None
    users: dict[str, str] = {}
    head, sep, site = text.partition(SITE_MARK + "\n")
    if not sep:
        head, site = text, ""
    role: str | None = None
    for raw in head.splitlines():
        line = raw.strip()
        if line.startswith(PREFIX_MARK):
            prefix = line[len(PREFIX_MARK) :].strip() or None
        elif line.startswith(ROLE_MARK):
            role = line[len(ROLE_MARK) :].strip()
        elif line.startswith("user ") and role is not None:
            name = line[len("user ") :].strip()
            if role in ROLES:
                users[name] = role
            role = None
    return prefix, users, site


# --- passwords --------------------------------------------------------------------------


def new_password() -> str:
    """A fresh random password (256 bits, URL-safe text)."""
    return secrets.token_urlsafe(PASSWORD_BYTES)


def hash_password(
    password: str, *, salt: bytes | None = None, iterations: int = PBKDF2_ITERATIONS
) -> str:
    """The password-file hash of ``password``, as ``mosquitto_passwd`` writes it."""
    salt = secrets.token_bytes(12) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)
    b64 = base64.b64encode
    return f"$7${iterations}${b64(salt).decode()}${b64(digest).decode()}"


def check_password(hashed: str, password: str) -> bool:
    """Whether ``password`` matches a ``$7$`` password-file hash."""
    try:
        _, kind, iterations, salt, digest = hashed.split("$")
        if kind != "7":
            return False
        mine = hashlib.pbkdf2_hmac(
            "sha512", password.encode(), base64.b64decode(salt), int(iterations)
        )
        return hmac.compare_digest(mine, base64.b64decode(digest))
    except ValueError:
        return False


def parse_passwd(text: str) -> list[tuple[str, str]]:
    """The (username, rest-of-line) entries of a password file, comments kept as ("", line)."""
    entries: list[tuple[str, str]] = []
    for line in text.splitlines():
        name, sep, rest = line.partition(":")
        entries.append((name, rest) if sep and not line.startswith("#") else ("", line))
    return entries


def render_passwd(entries: list[tuple[str, str]]) -> str:
    """A password file from parse_passwd-style entries."""
    lines = [f"{n}:{r}" if n else r for n, r in entries]
    return "\n".join(lines) + "\n" if lines else ""


# --- files ------------------------------------------------------------------------------


def _broker_gid() -> int | None:
    """The ``mosquitto`` group when running as root and it exists: the broker drops to that
    user before reading passwd and the ACL, so they are root:mosquitto 0640."""
    if os.geteuid() != 0:
        return None
    try:
        return grp.getgrnam("mosquitto").gr_gid
    except KeyError:
        return None


def _write_atomic(path: Path, text: str, mode: int, gid: int | None = None) -> None:
    """Replace ``path`` with ``text`` so that no reader ever sees a half-written or
    wider-than-``mode`` file (the temporary file is created 0600 by mkstemp)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        if gid is not None:
            os.chown(tmp, -1, gid)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def _locked(broker_dir: Path) -> Iterator[None]:
    """Serialise concurrent runs: two at once would lose one's password-file entry."""
    broker_dir.mkdir(parents=True, exist_ok=True, mode=0o750)
    with open(broker_dir / LOCK_NAME, "a") as fh:
        os.chmod(fh.fileno(), 0o600)
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


class BrokerDir:
    """The password file, ACL and credentials of one broker directory."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.passwd = path / PASSWD_NAME
        self.acl = path / ACL_NAME
        self.credentials = path / CREDENTIALS_DIR

    def read(self) -> tuple[list[tuple[str, str]], str | None, dict[str, str], str]:
        """(password entries, ACL prefix, users name → role, site additions)."""
        entries = parse_passwd(self.passwd.read_text("utf-8")) if self.passwd.exists() else []
        prefix, users, site = (
            parse_acl(self.acl.read_text("utf-8")) if self.acl.exists() else (None, {}, "")
        )
        return entries, prefix, users, site

    def write(
        self, entries: list[tuple[str, str]], prefix: str, users: dict[str, str], site: str
    ) -> None:
        """Write the password file and the ACL (root:mosquitto 0640 or 0600)."""
        gid = _broker_gid()
        mode = 0o640 if gid is not None else 0o600
        _write_atomic(self.passwd, render_passwd(entries), mode, gid)
        _write_atomic(self.acl, render_acl(prefix, users, site), mode, gid)

    def credential_file(self, name: str) -> Path:
        """Where ``name``'s new password is handed over."""
        return self.credentials / f"{name}.pass"

    def write_credential(self, name: str, password: str) -> Path:
        """Write the clear password, owner-only (roomd refuses a file others can read)."""
        self.credentials.mkdir(mode=0o700, exist_ok=True)
        os.chmod(self.credentials, 0o700)
        path = self.credential_file(name)
        _write_atomic(path, password + "\n", 0o600)
        return path


def _resolve_prefix(requested: str | None, recorded: str | None) -> str:
    prefix = requested or recorded or DEFAULT_PREFIX
    if not PREFIX.fullmatch(prefix):
        raise ProvisionError(f"invalid topic prefix {prefix!r}: must match {PREFIX.pattern}")
    return prefix


# --- operations -------------------------------------------------------------------------


def provision(
    broker_dir: Path,
    role: str,
    name: str,
    *,
    rotate: bool = False,
    prefix: str | None = None,
) -> Outcome:
    """Create user ``name`` with ``role`` (or leave an existing one as it is, or give it a
    new password with ``rotate``); keeps the ACL block in step with the role template."""
    validate_name(role, name)
    store = BrokerDir(broker_dir)
    with _locked(broker_dir):
        entries, recorded, users, site = store.read()
        prefix = _resolve_prefix(prefix, recorded)
        known = {n for n, _ in entries if n}
        existing = users.get(name)
        if existing is not None and existing != role:
            raise ProvisionError(
                f"{name!r} is already a {existing}; revoke it first (one username, one role)"
            )
        if existing is None and name in known:
            raise ProvisionError(
                f"{name!r} is in {store.passwd} but not managed by this tool; remove it first"
            )
        password: str | None = None
        if existing is None or rotate or name not in known:
            password = new_password()
            hashed = hash_password(password)
            if name in known:
                entries = [(n, hashed if n == name else r) for n, r in entries]
            else:
                entries.append((name, hashed))
        action = "created" if existing is None else "rotated" if password else "unchanged"
        users[name] = role
        credential: Path | None = None
        if password is not None:
            # the credential first: a crash between the two writes leaves a usable file and
            # an unchanged broker, never a broker expecting a password nobody has
            credential = store.write_credential(name, password)
        store.write(entries, prefix, users, site)
    return Outcome(name, role, action, credential, password)


def revoke(broker_dir: Path, name: str) -> bool:
    """Remove ``name`` from the password file, the ACL and the credentials; whether it existed."""
    store = BrokerDir(broker_dir)
    with _locked(broker_dir):
        entries, recorded, users, site = store.read()
        had = name in users or any(n == name for n, _ in entries)
        users.pop(name, None)
        entries = [(n, r) for n, r in entries if n != name]
        store.write(entries, _resolve_prefix(None, recorded), users, site)
        with contextlib.suppress(FileNotFoundError):
            store.credential_file(name).unlink()
    return had


def list_users(broker_dir: Path) -> dict[str, str]:
    """The provisioned users, name → role."""
    return BrokerDir(broker_dir).read()[2]


# --- command line -----------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="provision",
        description="Provision users of the roomd clinic broker (password file, ACL, "
        "credential files). Reload the broker afterwards: systemctl reload mosquitto.",
    )
    p.add_argument(
        "--broker-dir",
        type=Path,
        default=DEFAULT_BROKER_DIR,
        help=f"where passwd, roomd.acl and credentials/ live (default {DEFAULT_BROKER_DIR})",
    )
    sub = p.add_subparsers(dest="command", required=True)
    for role in ROLES:
        s = sub.add_parser(role, help=f"create or update a {role} user")
        s.add_argument("name")
        s.add_argument("--rotate", action="store_true", help="issue a new password")
        s.add_argument("--prefix", default=None, help="topic prefix (default: as recorded)")
        s.add_argument("--show", action="store_true", help="also print a new password")
    r = sub.add_parser("revoke", help="remove a user")
    r.add_argument("name")
    sub.add_parser("list", help="list provisioned users and roles")
    return p


def main(argv: list[str] | None = None) -> int:
    """The command line; 0 on success, 1 when refused, 2 on a usage error."""
    ns = _parser().parse_args(argv)
    try:
        if ns.command == "list":
            for name, role in sorted(list_users(ns.broker_dir).items()):
                print(f"{role:9} {name}")
            return 0
        if ns.command == "revoke":
            had = revoke(ns.broker_dir, ns.name)
            print(f"{ns.name}: {'revoked' if had else 'was not provisioned'}; {RELOAD_HINT}")
            return 0
        out = provision(ns.broker_dir, ns.command, ns.name, rotate=ns.rotate, prefix=ns.prefix)
    except (ProvisionError, OSError) as exc:
        print(f"provision: {exc}", file=sys.stderr)
        return 1
    if out.action == "unchanged":
        print(f"{out.role} {out.name}: unchanged (use --rotate for a new password)")
    else:
        where = out.credential_file
        hand_over = {
            "room": "copy it to the room's /etc/roomd/mqtt.pass (mode 0600, owner roomd), "
            "then delete it",
            "archive": "copy it to /etc/clinicd/mqtt.pass (mode 0600, owner clinicd), "
            "then delete it",
        }.get(out.role, "hand it over, then delete it")
        print(f"{out.role} {out.name}: {out.action}; password in {where} ({hand_over})")
        if ns.show and out.password is not None:
            print(out.password)
    print(RELOAD_HINT)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
