"""Bridged sites on real brokers: the shipped bridge config over TLS, a WAN cut with nothing
lost, the relay the bench cuts."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import pytest

from bench import bridge
from bench.bridge import bench_bridge, central_acl, render_bridge
from bench.infra import reap_all
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
    assert not any(" in " in line for line in lines if line.startswith("topic "))  # up only
    acl = central_acl(("site-a", "site-b"))
    assert "user bridge-site-b" in acl and "topic write sites/site-b/clinic/rooms/+/events" in acl


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
    # The figures the bench prints are consistent with each other.
    assert r["overhead_p99_ms"] == round(
        r["central_latency"]["p99_ms"] - r["reference"]["single_broker_latency"]["p99_ms"], 3
    )
