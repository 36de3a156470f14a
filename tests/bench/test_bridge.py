"""Bridged sites on real brokers: the shipped bridge config over TLS, a WAN cut with nothing
lost, the relay the bench cuts."""

from __future__ import annotations

import socket
import sqlite3
import threading
import time
import uuid
from pathlib import Path

import pytest

from bench import bridge
from bench.bridge import (
    Central,
    Site,
    bench_bridge,
    bridge_state,
    central_acl,
    make_pki,
    render_bridge,
    start_archive,
)
from bench.clients import Client, expect_online, fetch_journal, into_infusion, wait_online
from bench.infra import Room, reap_all
from bench.wan import WanLink


def test_the_shipped_bridge_config_is_rendered_per_site(tmp_path: Path) -> None:
    text = render_bridge("site-b", 4242, tmp_path / "ca.crt", "s3cret")
    lines = text.splitlines()
    assert "address 127.0.0.1:4242" in lines
    assert f"bridge_cafile {tmp_path / 'ca.crt'}" in lines
    assert "remote_password s3cret" in lines and "remote_username bridge-site-b" in lines
    assert "topic rooms/+/events out 1 clinic/ sites/site-b/clinic/" in lines
    assert "cleansession false" in lines and "bridge_protocol_version mqttv311" in lines
    assert "site-a" not in text
    # Down, only the archive's read-only `events` request; its answer up on `replies`.
    inward = [line for line in lines if line.startswith("topic ") and " in " in line]
    assert inward == ["topic rooms/+/cmd/events in 1 clinic/ sites/site-b/clinic/"]
    assert "topic rooms/+/replies out 1 clinic/ sites/site-b/clinic/" in lines
    acl = central_acl(("site-a", "site-b"))
    assert "user bridge-site-b" in acl and "topic write sites/site-b/clinic/rooms/+/events" in acl
    assert "topic read sites/site-b/clinic/rooms/+/cmd/events" in acl
    assert "topic readwrite sites/site-b/bridge/vitals/status" in acl


def _topics_by_connection(text: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    conn = ""
    for line in text.splitlines():
        if line.startswith("connection "):
            conn = line.split()[1]
            out[conn] = []
        elif line.startswith("topic "):
            out[conn].append(line)
    return out


def test_qos_0_vitals_cross_on_a_connection_of_their_own(tmp_path: Path) -> None:
    """Mosquitto's bridge socket keeps Nagle on: a QoS 0 message (no PUBACK) on the events'
    connection made the next event wait for the central host's delayed ACK (40 ms). The
    shipped config keeps every QoS 0 topic off the connection that carries QoS 1."""
    topics = _topics_by_connection(render_bridge("site-b", 4242, tmp_path / "ca.crt", "pw"))
    assert set(topics) == {"central", "central-vitals"}
    assert topics["central-vitals"] == ["topic rooms/+/vitals out 0 clinic/ sites/site-b/clinic/"]
    assert topics["central"] and all(line.split()[3] == "1" for line in topics["central"])
    text = render_bridge("site-b", 4242, tmp_path / "ca.crt", "pw")
    # Both connections are substituted: the same central, CA and password.
    assert text.count("address 127.0.0.1:4242") == 2
    assert text.count("remote_password pw") == 2 and text.count("bridge_insecure false") == 2


def test_a_bridge_config_missing_a_substituted_line_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = tmp_path / "bridge-site.conf"
    broken.write_text("connection central\naddress x:8883\nbridge_cafile /x\n")
    monkeypatch.setattr(bridge, "BRIDGE_CONF", broken)
    with pytest.raises(bridge.BenchError, match="remote_password"):
        render_bridge("site-a", 1, tmp_path, "pw")


def _echo_server() -> tuple[socket.socket, threading.Thread]:
    server = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                while data := conn.recv(1024):
                    conn.sendall(data)

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    return server, t


def test_the_wan_link_relays_cuts_and_restores() -> None:
    server, _ = _echo_server()
    link = WanLink(server.getsockname()[1])
    try:
        with socket.create_connection(("127.0.0.1", link.port), timeout=5) as s:
            s.sendall(b"ping")
            assert s.recv(16) == b"ping"
            link.cut()
            assert s.recv(16) == b""  # the open connection is closed
        with pytest.raises(ConnectionRefusedError):  # new ones are refused while cut
            socket.create_connection(("127.0.0.1", link.port), timeout=5)
        link.restore()
        with socket.create_connection(("127.0.0.1", link.port), timeout=5) as s:
            s.sendall(b"again")
            assert s.recv(16) == b"again"
    finally:
        link.close()
        server.close()


def test_a_bridge_cut_loses_nothing_and_the_archive_stores_each_event_once(
    tmp_path: Path,
) -> None:
    try:
        r = bench_bridge(tmp_path, rooms_per_site=1, window_s=2.0, cut_s=3.0)
    finally:
        reap_all()
    cut = r["cut"]
    assert cut["bridge_down_seen"], "the cut did not take the bridge down"
    assert cut["journal_events"] > 0 and r["central_latency"]["n"] > 0
    assert cut["lost_events"] == 0
    assert cut["archive_lost"] == 0 and cut["archive_duplicates"] == 0
    for room in cut["rooms"]:
        assert room["central_lost"] == 0 and room["archived"] == room["journal_events"]
    # Live vitals reach the centre on their own connection.
    assert r["vitals_window"]["central"] > 0
    # The figures the bench prints are consistent with each other.
    assert r["overhead_p99_ms"] == round(
        r["central_latency"]["p99_ms"] - r["reference"]["single_broker_latency"]["p99_ms"], 3
    )


def test_the_archive_on_the_central_broker_fills_a_gap_through_the_bridge(
    tmp_path: Path,
) -> None:
    """A site's archive run centrally starts after a room's session began: the events it
    never saw live come only through the room's ``events`` verb, down the bridge (its one
    inward topic) with the answer up on the room's general replies (MQTT 3.1.1 drops the
    response topic)."""
    pki = make_pki(tmp_path / "pki")
    password = uuid.uuid4().hex
    central = Central(tmp_path / "central", pki, {"bridge-site-a": password})
    central.start()
    site: Site | None = None
    clients: list[Client] = []
    try:
        watcher = Client(central.port, "bridges", ["sites/+/bridge/status"])
        clients.append(watcher)
        up = watcher.expect(bridge_state("site-a", b"1"))
        site = Site(tmp_path / "site-a", "site-a", central, pki, password)
        site.broker.start()
        up.wait(30.0, "the bridge up")
        drive = Client(site.port, "drive", ["clinic/rooms/+/replies", "clinic/rooms/+/status"])
        clients.append(drive)
        room = Room(tmp_path / "site-a" / "room", site.port, "a-room-0")
        site.rooms.append(room)
        online = expect_online(drive, room)
        room.start()
        wait_online(drive, room, watch=online)
        into_infusion(drive, room.root, "gap-s1")  # before the archive exists
        _, db = start_archive(tmp_path / "archive", "site-a", central.port)
        journal, last_seq = fetch_journal(drive, room.root, 0)
        seqs = {int(e["seq"]) for e in journal}
        assert last_seq > 5 and seqs == set(range(1, last_seq + 1))
        deadline = time.monotonic() + 60
        while not db.exists() or archived_seqs(db, "a-room-0") < seqs:
            assert time.monotonic() < deadline, f"archived {len(archived_seqs(db, 'a-room-0'))}"
            time.sleep(0.2)
    finally:
        for c in clients:
            c.close()
        reap_all()
        if site is not None:
            site.close()
        central.broker.stop()


def archived_seqs(db: Path, room_id: str) -> set[int]:
    """The seqs of a room in an archive database (read-only; none before its table exists)."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        rows = con.execute("SELECT seq FROM events WHERE room_id = ?", (room_id,)).fetchall()
    except sqlite3.OperationalError:
        return set()
    finally:
        con.close()
    return {r[0] for r in rows}
