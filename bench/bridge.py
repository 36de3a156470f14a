"""Bridged sites: two site brokers with rooms, bridged over TLS to one central broker with a
tablet-like subscriber and the archive; the bridge's latency and a cut of the WAN link.

Each site runs the shipped ``mqtt_bridge/broker/bridge-site.conf`` (only the address, CA,
password and restart timeout substituted) through a ``WanLink`` the bench can cut; the
central broker checks the bridges' passwords and the shipped ``bridge-central.acl``.
The same run's reference is a subscriber on each site broker: the very events the central
tablet receives, one broker earlier.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.clients import Client, expect_online, fetch_journal, into_infusion, wait_online
from bench.infra import (
    REPO,
    BenchError,
    Broker,
    Matcher,
    Room,
    free_port,
    reap,
    spawn,
    summary_ms,
)
from bench.wan import WanLink

BRIDGE_CONF = REPO / "mqtt_bridge" / "broker" / "bridge-site.conf"
CENTRAL_ACL = REPO / "mqtt_bridge" / "broker" / "bridge-central.acl"
SHIPPED_SITE = "site-a"
SITES = ("site-a", "site-b")
BENCH_RESTART = "restart_timeout 1 5"
"""The bench's reconnect back-off (the shipped 5–60 s would only make the run longer: the
figures are latency, loss and duplication, not how soon the bridge retries)."""
EVENT_INTERVAL_S = 0.25
"""Each room gets a ``lights`` command (→ one ``lighting_changed`` event) this often."""


def render_bridge(site: str, port: int, ca: Path, password: str) -> str:
    """The shipped bridge config for ``site`` to 127.0.0.1:``port``; fails if a line the
    bench substitutes is missing, so the bench cannot silently stop running the real file."""
    edits = {
        "address ": f"address 127.0.0.1:{port}",
        "bridge_cafile ": f"bridge_cafile {ca}",
        "remote_password ": f"remote_password {password}",
        "restart_timeout ": BENCH_RESTART,
    }
    out, seen = [], set()
    for line in BRIDGE_CONF.read_text().splitlines():
        key = next((k for k in edits if line.startswith(k)), None)
        if key is not None:
            seen.add(key)
            line = edits[key]
        out.append(line.replace(SHIPPED_SITE, site))
    if missing := set(edits) - seen:
        raise BenchError(f"{BRIDGE_CONF.name} lacks {sorted(missing)}")
    return "\n".join(out) + "\n"


def central_acl(sites: tuple[str, ...]) -> str:
    """The shipped central ACL block, once per site."""
    block = CENTRAL_ACL.read_text()
    return "\n".join(block.replace(SHIPPED_SITE, s) for s in sites)


# --- certificates and brokers -------------------------------------------------------------


@dataclass(frozen=True)
class Pki:
    """A throwaway CA and the central broker's certificate for 127.0.0.1."""

    ca: Path
    crt: Path
    key: Path


def _openssl(d: Path, *args: str) -> None:
    subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True, timeout=30)


def make_pki(d: Path) -> Pki:
    """A CA and a server certificate (EC P-256, two days), made with the openssl CLI."""
    d.mkdir(parents=True, exist_ok=True)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _openssl(
        d, "req", "-x509", "-new", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "2",
        "-subj", "/CN=roomd bench CA", "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    )  # fmt: skip
    (d / "server.ext").write_text(
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=critical,CA:FALSE\n"
        "extendedKeyUsage=serverAuth\n"
    )
    _openssl(d, "req", "-new", *ec, "-keyout", "server.key", "-out", "server.csr",
             "-subj", "/CN=localhost")  # fmt: skip
    _openssl(
        d, "x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
        "-CAcreateserial", "-days", "2", "-extfile", "server.ext", "-out", "server.crt",
    )  # fmt: skip
    return Pki(d / "ca.crt", d / "server.crt", d / "server.key")


class Central:
    """The central broker: a TLS listener for the bridges (passwords, ACL) and a plain
    loopback one for the bench's tablet and the archive."""

    def __init__(self, workdir: Path, pki: Pki, passwords: dict[str, str]) -> None:
        self.broker = Broker(workdir)
        self.port = self.broker.port
        self.tls_port = free_port()
        passwd = workdir / "passwd"
        passwd.write_text("")
        for user, pw in passwords.items():
            subprocess.run(
                ["mosquitto_passwd", "-b", str(passwd), user, pw], check=True, timeout=30
            )
        acl = workdir / "central.acl"
        acl.write_text(central_acl(tuple(s.removeprefix("bridge-") for s in passwords)))
        self.broker.conf.write_text(
            "per_listener_settings true\npersistence false\nlog_dest stderr\nlog_type error\n"
            "user root\nset_tcp_nodelay true\nmax_queued_messages 100000\n"
            f"listener {self.tls_port} 127.0.0.1\nallow_anonymous false\n"
            f"password_file {passwd}\nacl_file {acl}\ncafile {pki.ca}\ncertfile {pki.crt}\n"
            f"keyfile {pki.key}\ntls_version tlsv1.2\nrequire_certificate false\n"
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\n"
        )

    def start(self) -> None:
        """Start it (and wait for the TLS listener too)."""
        self.broker.start()


class Site:
    """A site broker (anonymous, as the bench's others) with the shipped bridge, through a
    ``WanLink`` to the central broker's TLS listener."""

    def __init__(self, workdir: Path, name: str, central: Central, pki: Pki, pw: str) -> None:
        self.name = name
        self.link = WanLink(central.tls_port)
        self.broker = Broker(workdir / "broker")
        self.port = self.broker.port
        with open(self.broker.conf, "a", encoding="utf-8") as fh:
            fh.write(render_bridge(name, self.link.port, pki.ca, pw))
        self.rooms: list[Room] = []

    def close(self) -> None:
        """Stop its rooms, its broker and its link."""
        for room in self.rooms:
            room.stop()
        self.broker.stop()
        self.link.close()


# --- what the subscribers saw -------------------------------------------------------------


class Seen:
    """Events by (site, room, seq) as one subscriber received them: first arrival, count;
    and how many live vitals samples it received from each site."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.first: dict[tuple[str, str, int], tuple[float, float]] = {}
        self.count: Counter[tuple[str, str, int]] = Counter()
        self.vitals: Counter[str] = Counter()

    def add(self, site: str, room: str, t: float, wall: float, payload: bytes) -> None:
        """Note one event received at ``wall`` (latency from its ``ts``)."""
        obj = json.loads(payload)
        key = (site, room, int(obj["seq"]))
        lat = wall - datetime.fromisoformat(obj["ts"]).timestamp()
        with self.lock:
            self.count[key] += 1
            self.first.setdefault(key, (t, lat))

    def add_vitals(self, site: str) -> None:
        """Note one live vitals sample from ``site``."""
        with self.lock:
            self.vitals[site] += 1

    def central(self, t: float, wall: float, topic: str, payload: bytes) -> None:
        """``sites/<site>/clinic/rooms/<room>/events`` (and ``…/vitals``) at the central
        tablet."""
        parts = topic.split("/")
        if len(parts) == 6 and parts[5] == "events":
            self.add(parts[1], parts[4], t, wall, payload)
        elif len(parts) == 6 and parts[5] == "vitals":
            self.add_vitals(parts[1])

    def on_site(self, site: str) -> Any:
        """The hook for a subscriber on ``site``'s own broker (``clinic/rooms/<room>/events``
        and ``…/vitals``)."""

        def hook(t: float, wall: float, topic: str, payload: bytes) -> None:
            parts = topic.split("/")
            if len(parts) == 4 and parts[3] == "events":
                self.add(site, parts[2], t, wall, payload)
            elif len(parts) == 4 and parts[3] == "vitals":
                self.add_vitals(site)

        return hook

    def seqs(self, site: str, room: str) -> set[int]:
        """The seqs received of one room."""
        with self.lock:
            return {k[2] for k in self.first if k[0] == site and k[1] == room}


# --- the benchmark --------------------------------------------------------------------------


class Driver:
    """A tablet on each site: one ``lights`` command per room every ``EVENT_INTERVAL_S``."""

    def __init__(self, sites: list[Site], clients: dict[str, Client]) -> None:
        self.sites = sites
        self.clients = clients
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _run(self) -> None:
        rooms = [(s.name, r) for s in self.sites for r in s.rooms]
        step = EVENT_INTERVAL_S / len(rooms)
        k = 0
        while not self._stop.wait(step):
            site, room = rooms[k % len(rooms)]
            level = 0.3 if (k // len(rooms)) % 2 else 0.35
            body = {"request_id": f"br-{uuid.uuid4().hex[:12]}", "by": "bench", "level": level}
            self.clients[site].publish(f"{room.root}/cmd/lights", json.dumps(body).encode())
            k += 1

    def start(self) -> None:
        """Start commanding."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="bench-driver", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop commanding."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5.0)


def start_archive(workdir: Path, site: str, port: int) -> tuple[subprocess.Popen[bytes], Path]:
    """A clinicd for ``site``'s namespace on the central broker; (process, its database)."""
    workdir.mkdir(parents=True, exist_ok=True)
    conf = workdir / "clinicd.toml"
    conf.write_text(
        f'[mqtt]\nhost = "127.0.0.1"\nport = {port}\ntopic_prefix = "sites/{site}/clinic"\n'
        f'client_id = "clinicd-{site}"\n[archive]\nresync_s = 3600\n'
    )
    proc = spawn(
        [sys.executable, "-m", "mqtt_bridge.clinicd", "--config", str(conf), "--data-dir",
         str(workdir / "data")],
        workdir / "clinicd.log",
    )  # fmt: skip
    return proc, workdir / "data" / "archive.sqlite"


def _archived(db: Path) -> dict[str, tuple[int, int]]:
    """Rows and distinct seqs per room in an archive database (read-only)."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        rows = con.execute(
            "SELECT room_id, count(*), count(DISTINCT seq) FROM events GROUP BY room_id"
        ).fetchall()
    finally:
        con.close()
    return {r: (n, d) for r, n, d in rows}


def bridge_state(site: str, state: bytes) -> Matcher:
    """A matcher for the bridge's notification (``1`` up, ``0`` down) on the central broker."""
    topic = f"sites/{site}/bridge/status"
    return lambda t, p: t == topic and p == state


def _wait_bridge(central: Client, site: str, timeout: float) -> float:
    """Wait for the bridge's retained state ``1`` on the central broker; seconds waited."""
    t0 = time.monotonic()
    central.expect(bridge_state(site, b"1")).wait(timeout, f"{site} bridge up")
    return time.monotonic() - t0


def bench_bridge(
    workdir: Path, rooms_per_site: int, window_s: float, cut_s: float
) -> dict[str, Any]:
    """Bridge latency over ``window_s`` of events, then a ``cut_s`` WAN cut of site-a."""
    pki = make_pki(workdir / "pki")
    passwords = {f"bridge-{s}": uuid.uuid4().hex for s in SITES}
    central = Central(workdir / "central", pki, passwords)
    central.start()
    sites: list[Site] = []
    clients: list[Client] = []
    archives: list[tuple[subprocess.Popen[bytes], Path]] = []
    driver: Driver | None = None
    seen_central, seen_site = Seen(), Seen()
    try:
        watcher = Client(
            central.port, "bridges", ["sites/+/bridge/status", "sites/+/bridge/vitals/status"]
        )
        clients.append(watcher)
        tablet = Client(
            central.port,
            "tablet",
            ["sites/+/clinic/rooms/+/events", "sites/+/clinic/rooms/+/vitals"],
            on_message=seen_central.central,
        )
        clients.append(tablet)
        archives = [start_archive(workdir / f"archive-{s}", s, central.port) for s in SITES]
        site_clients: dict[str, Client] = {}
        for name in SITES:
            ups = watcher.expect(bridge_state(name, b"1"))
            vitals_up = watcher.expect(
                lambda t, p, name=name: t == f"sites/{name}/bridge/vitals/status" and p == b"1"
            )
            site = Site(workdir / name, name, central, pki, passwords[f"bridge-{name}"])
            sites.append(site)
            site.broker.start()
            ups.wait(30.0, f"{name} bridge up")
            vitals_up.wait(30.0, f"{name} vitals bridge up")
            ref = Client(
                site.port, f"ref-{name}", ["clinic/rooms/+/events", "clinic/rooms/+/vitals"],
                on_message=seen_site.on_site(name),
            )  # fmt: skip
            clients.append(ref)
            drive = Client(
                site.port, f"drive-{name}", ["clinic/rooms/+/replies", "clinic/rooms/+/status"]
            )
            clients.append(drive)
            site_clients[name] = drive
            for i in range(rooms_per_site):
                room = Room(workdir / name / f"room-{i}", site.port, f"{name[-1]}-room-{i}")
                site.rooms.append(room)
                online = expect_online(drive, room)
                room.start()
                wait_online(drive, room, watch=online)
                into_infusion(drive, room.root, f"{name}-s{i}")
        time.sleep(1.0)
        driver = Driver(sites, site_clients)
        # 1. latency: every event of the window, at the site and at the central tablet.
        with seen_central.lock, seen_site.lock:
            before = set(seen_site.first)
            vitals_before = (sum(seen_central.vitals.values()), sum(seen_site.vitals.values()))
        driver.start()
        time.sleep(window_s)
        with seen_central.lock, seen_site.lock:
            window = [k for k in seen_site.first if k not in before]
            vitals_central = sum(seen_central.vitals.values()) - vitals_before[0]
            vitals_site = sum(seen_site.vitals.values()) - vitals_before[1]
        # 2. the cut: site-a's WAN link goes for cut_s while the rooms keep going.
        cut_site = sites[0]
        down = watcher.expect(
            lambda t, p: t == f"sites/{cut_site.name}/bridge/status" and p == b"0"
        )
        cut_site.link.cut()
        t_cut = time.monotonic()
        # (the central broker publishes the bridge's will, "0", when it sees the link drop)
        time.sleep(max(0.0, cut_s - (time.monotonic() - t_cut)))
        cut_site.link.restore()
        t_restore = time.monotonic()
        reconnect_s = _wait_bridge(watcher, cut_site.name, 60.0)
        down_seen = down.done.is_set()
        time.sleep(2.0)
        driver.stop()
        # 3. the truth: each room's journal, and everything the central tablet got.
        journals: dict[tuple[str, str], set[int]] = {}
        for site in sites:
            for room in site.rooms:
                events, _ = fetch_journal(site_clients[site.name], room.root, 0)
                journals[(site.name, room.room_id)] = {int(e["seq"]) for e in events}
        deadline = time.monotonic() + 60.0
        while time.monotonic() < deadline:
            missing = {
                k: v - seen_central.seqs(*k)
                for k, v in journals.items()
                if v - seen_central.seqs(*k)
            }
            if not missing:
                break
            time.sleep(0.2)
        caught_up_s = time.monotonic() - t_restore
        time.sleep(1.0)  # let the archives store the last ones
    finally:
        if driver is not None:
            driver.stop()
        for c in clients:
            c.close()
        for proc, _ in archives:
            reap(proc)
        for site in sites:
            site.close()
        central.broker.stop()
    central_lat, site_lat, hop = [], [], []
    for key in window:
        if key in seen_central.first and key in seen_site.first:
            (tc, lc), (ts, ls) = seen_central.first[key], seen_site.first[key]
            central_lat.append(lc)
            site_lat.append(ls)
            hop.append(tc - ts)
    if not central_lat:
        raise BenchError("no event of the window reached the central tablet")
    with seen_central.lock:
        dups = sum(n - 1 for n in seen_central.count.values())
        dup_cut = sum(n - 1 for k, n in seen_central.count.items() if k[0] == cut_site.name)
    archived: dict[str, dict[str, tuple[int, int]]] = {}
    for (_, db), name in zip(archives, SITES, strict=True):
        archived[name] = _archived(db) if db.exists() else {}
    archive_lost = archive_dups = 0
    per_room = []
    for (site_name, room_id), seqs in sorted(journals.items()):
        got = seen_central.seqs(site_name, room_id)
        rows, distinct = archived.get(site_name, {}).get(room_id, (0, 0))
        archive_lost += len(seqs) - distinct
        archive_dups += rows - distinct
        per_room.append(
            {
                "site": site_name,
                "room": room_id,
                "journal_events": len(seqs),
                "central_lost": len(seqs - got),
                "archived": distinct,
            }
        )
    central_p = summary_ms(central_lat)
    site_p = summary_ms(site_lat)
    return {
        "sites": len(SITES),
        "rooms_per_site": rooms_per_site,
        "window_s": window_s,
        "events_per_s_per_room": round(1 / EVENT_INTERVAL_S, 2),
        "central_latency": central_p,
        "bridge_hop": summary_ms(hop),
        # Live vitals cross on their own bridge connection (bridge-site.conf, `central-vitals`).
        "vitals_window": {"site": vitals_site, "central": vitals_central},
        "overhead_p99_ms": round(float(central_p["p99_ms"]) - float(site_p["p99_ms"]), 3),
        "overhead_p50_ms": round(float(central_p["p50_ms"]) - float(site_p["p50_ms"]), 3),
        "cut": {
            "site": cut_site.name,
            "cut_s": cut_s,
            "bridge_down_seen": down_seen,
            "reconnect_s": round(reconnect_s, 2),
            "caught_up_s": round(caught_up_s, 2),
            "journal_events": sum(len(v) for v in journals.values()),
            "lost_events": sum(len(v - seen_central.seqs(*k)) for k, v in journals.items()),
            "duplicates_received": dups,
            "duplicates_received_cut_site": dup_cut,
            "archive_lost": archive_lost,
            "archive_duplicates": archive_dups,
            "rooms": per_room,
        },
        "reference": {"single_broker_latency": site_p},
        "note": "rooms on two site brokers bridged (shipped bridge-site.conf: TLS, MQTT 3.1.1, "
        "QoS 1; live vitals, QoS 0, on a second connection) to a central broker; latency = "
        "receive time − the event's ts, the same events at a subscriber on the site broker "
        "(reference) and on the central broker; "
        f"the bench's bridges retry with `{BENCH_RESTART}`",
    }
