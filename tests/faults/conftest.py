"""A real Mosquitto running the SHIPPED production config (mqtt_bridge/broker/mosquitto.conf)
over throwaway certificates, with users made by the shipped provisioning tool.

Only ports and file paths are substituted when the config is rendered for a test (and
``user root`` added: started as root, Mosquitto would otherwise drop to the mosquitto user and
lose access to the test's files); every other line is the production line.
"""

from __future__ import annotations

import queue
import re
import shutil
import signal
import ssl
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from mqtt_bridge.broker import provision
from tests.support.broker import free_port, port_open

SHIPPED_CONF = Path(__file__).resolve().parents[2] / "mqtt_bridge" / "broker" / "mosquitto.conf"

ROOM_A, ROOM_B = "room-a", "room-b"
CLINICIAN, OBSERVER = "dr-alice", "obs-olga"


# --- certificates -------------------------------------------------------------------------


@dataclass(frozen=True)
class Pki:
    """A test CA with a server certificate for 127.0.0.1/localhost, and an unrelated CA."""

    ca: Path
    server_crt: Path
    server_key: Path
    wrong_ca: Path


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=30)


def _make_ca(d: Path, name: str) -> tuple[Path, Path]:
    _openssl(
        "req", "-x509", "-new", "-nodes", "-newkey", "ec", "-pkeyopt",
        "ec_paramgen_curve:prime256v1", "-keyout", f"{name}.key", "-out", f"{name}.crt",
        "-days", "2", "-subj", f"/CN=roomd test {name}",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        cwd=d,
    )  # fmt: skip
    return d / f"{name}.crt", d / f"{name}.key"


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """Certificates made with the openssl CLI, as a clinic would (see docs/security.md)."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is not installed")
    d = tmp_path_factory.mktemp("pki")
    ca, _ = _make_ca(d, "ca")
    wrong_ca, _ = _make_ca(d, "wrong-ca")
    (d / "server.ext").write_text(
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n"
    )
    _openssl(
        "req", "-new", "-nodes", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
        "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost",
        cwd=d,
    )  # fmt: skip
    _openssl(
        "x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
        "-CAcreateserial", "-days", "2", "-extfile", "server.ext", "-out", "server.crt",
        cwd=d,
    )  # fmt: skip
    return Pki(ca, d / "server.crt", d / "server.key", wrong_ca)


# --- the rendered production config -------------------------------------------------------


def render_conf(
    shipped: str,
    *,
    tls_port: int,
    ws_port: int,
    paths: dict[str, Path],
    line_edits: dict[str, str] | None = None,
) -> str:
    """The shipped config with its ports and paths replaced (and, for a test that needs it,
    whole lines in ``line_edits``); fails if a line to replace is missing, so the test cannot
    silently stop exercising the production file."""
    edits = dict(line_edits or {})
    listeners = iter((tls_port, ws_port))
    replaced: set[str] = set()
    out = ["# rendered for a test from mqtt_bridge/broker/mosquitto.conf", "user root"]
    for line in shipped.splitlines():
        key = line.split(" ", 1)[0]
        if line in edits:
            out.append(edits[line])
            replaced.add(line)
        elif key == "listener":
            out.append(f"listener {next(listeners)} 127.0.0.1")
        elif key in paths:
            out.append(f"{key} {paths[key]}")
            replaced.add(key)
        elif line.startswith("log_dest file "):
            out.append(f"log_dest file {paths['log']}")
            replaced.add("log")
        else:
            out.append(line)
    missing = (set(paths) | set(edits)) - replaced
    assert not missing, f"shipped mosquitto.conf lacks {missing}"
    assert next(listeners, None) is None, "shipped mosquitto.conf lacks a listener"
    return "\n".join(out) + "\n"


class SecureBroker:
    """Mosquitto with the production config; users provisioned into ``broker_dir``."""

    def __init__(
        self, workdir: Path, pki: Pki, *, line_edits: dict[str, str] | None = None
    ) -> None:
        self.workdir = workdir
        self.pki = pki
        self.broker_dir = workdir / "broker"
        self.broker_dir.mkdir()
        self.tls_port = free_port()
        self.ws_port = free_port()
        http = workdir / "tablet"
        http.mkdir()
        (http / "index.html").write_text("<!doctype html><title>roomd tablet</title>\n")
        (workdir / "db").mkdir()
        self.log = workdir / "mosquitto.log"
        self.stdout = workdir / "mosquitto.stdout"
        paths = {
            "password_file": self.broker_dir / provision.PASSWD_NAME,
            "acl_file": self.broker_dir / provision.ACL_NAME,
            "cafile": pki.ca,
            "certfile": pki.server_crt,
            "keyfile": pki.server_key,
            "persistence_location": Path(f"{workdir / 'db'}/"),
            "http_dir": http,
            "log": self.log,
        }
        self.conf = workdir / "mosquitto.conf"
        self.conf.write_text(
            render_conf(
                SHIPPED_CONF.read_text(),
                tls_port=self.tls_port,
                ws_port=self.ws_port,
                paths=paths,
                line_edits=line_edits,
            )
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def add(self, role: str, name: str) -> Path:
        """Provision a user with the shipped tool; its password file (0600)."""
        out = provision.provision(self.broker_dir, role, name)
        assert out.credential_file is not None
        return out.credential_file

    def password_file(self, name: str) -> Path:
        """Where the provisioning tool put ``name``'s password."""
        return self.broker_dir / provision.CREDENTIALS_DIR / f"{name}.pass"

    def password(self, name: str) -> str:
        """``name``'s password."""
        return self.password_file(name).read_text().strip()

    def start(self, timeout: float = 10.0) -> None:
        """Start mosquitto; wait (bounded) until both listeners accept connections."""
        with open(self.stdout, "ab") as out:
            self.proc = subprocess.Popen(
                ["mosquitto", "-c", str(self.conf)], stdout=out, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout
        while not (port_open(self.tls_port) and port_open(self.ws_port)):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"mosquitto did not start:\n{self.logtext()}")
            time.sleep(0.05)

    def reload(self) -> None:
        """What ``systemctl reload mosquitto`` does: SIGHUP (rereads passwd and the ACL)."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGHUP)

    def stop(self) -> None:
        """SIGTERM (Mosquitto saves its persistence database), SIGKILL if it lingers."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.proc = None

    def logtext(self) -> str:
        """What the broker logged (its log file and its console)."""
        parts = [p.read_text(errors="replace") for p in (self.log, self.stdout) if p.exists()]
        return "\n".join(parts)[-4000:]


# --- a plain MQTT 5 client that reports what the broker answered --------------------------


class Peer:
    """One authenticated (or not) MQTT 5 client; records CONNACK, SUBACK and PUBACK codes."""

    def __init__(
        self,
        port: int,
        username: str | None,
        password: str | None,
        *,
        ca: Path | None,
        client_id: str | None = None,
        transport: str = "tcp",
        clean_start: bool = True,
        session_expiry_s: int = 0,
    ) -> None:
        self.port = port
        self.clean_start = clean_start
        self.session_expiry_s = session_expiry_s
        self.lock = threading.Condition()
        self.messages: list[mqtt.MQTTMessage] = []
        self.acks: dict[int, Any] = {}
        self.subacks: dict[int, list[Any]] = {}
        self.connack: queue.Queue[Any] = queue.Queue()
        self.disconnected: queue.Queue[Any] = queue.Queue()
        c = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id or f"peer-{uuid.uuid4().hex[:8]}",
            protocol=mqtt.MQTTv5,
            transport=transport,  # type: ignore[arg-type]
            reconnect_on_failure=False,
        )
        if username is not None:
            c.username_pw_set(username, password)
        if ca is not None:
            c.tls_set(ca_certs=str(ca), tls_version=ssl.PROTOCOL_TLS_CLIENT)
        c.on_connect = lambda cl, ud, fl, rc, pr: self.connack.put(rc)
        c.on_disconnect = lambda cl, ud, fl, rc, pr: self.disconnected.put(rc)
        c.on_message = self._on_message
        c.on_publish = self._on_publish
        c.on_subscribe = self._on_subscribe
        self.client = c

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        with self.lock:
            self.messages.append(msg)
            self.lock.notify_all()

    def _on_publish(self, client: mqtt.Client, ud: Any, mid: int, rc: Any, props: Any) -> None:
        with self.lock:
            self.acks[mid] = rc
            self.lock.notify_all()

    def _on_subscribe(self, client: mqtt.Client, ud: Any, mid: int, rcs: Any, props: Any) -> None:
        with self.lock:
            self.subacks[mid] = list(rcs)
            self.lock.notify_all()

    def connect(self, timeout: float = 10.0) -> Any:
        """Connect; the CONNACK's reason code (raises on a TLS or socket failure)."""
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = self.session_expiry_s
        self.client.connect(
            "127.0.0.1", self.port, keepalive=30, clean_start=self.clean_start, properties=props
        )
        self.client.loop_start()
        try:
            return self.connack.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no CONNACK within {timeout}s") from None

    def _wait(self, found: Callable[[], Any], timeout: float, what: str) -> Any:
        deadline = time.monotonic() + timeout
        with self.lock:
            while (value := found()) is None:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"timed out after {timeout}s waiting for {what}")
                self.lock.wait(min(left, 0.2))
            return value

    def subscribe(self, topic: str, qos: int = 1, timeout: float = 10.0) -> list[Any]:
        """Subscribe; the SUBACK's reason codes."""
        rc, mid = self.client.subscribe(topic, qos=qos)
        assert rc == mqtt.MQTT_ERR_SUCCESS and mid is not None, rc
        acks: list[Any] = self._wait(lambda: self.subacks.get(mid), timeout, f"SUBACK {topic}")
        return acks

    def publish(
        self,
        topic: str,
        payload: bytes,
        *,
        qos: int = 1,
        retain: bool = False,
        props: Properties | None = None,
        timeout: float = 10.0,
    ) -> Any:
        """Publish with QoS 1; the PUBACK's reason code."""
        info = self.client.publish(topic, payload, qos=qos, retain=retain, properties=props)
        return self._wait(lambda: self.acks.get(info.mid), timeout, f"PUBACK {topic}")

    def on(self, topic: str) -> list[mqtt.MQTTMessage]:
        """Every message received on ``topic`` so far."""
        with self.lock:
            return [m for m in self.messages if m.topic == topic]

    def wait_message(
        self, match: Callable[[mqtt.MQTTMessage], bool], timeout: float = 10.0, what: str = ""
    ) -> mqtt.MQTTMessage:
        """The first received message ``match`` accepts (bounded wait)."""

        def find() -> mqtt.MQTTMessage | None:
            return next((m for m in self.messages if match(m)), None)

        msg: mqtt.MQTTMessage = self._wait(find, timeout, what or "a message")
        return msg

    def close(self) -> None:
        """Disconnect and stop the network thread."""
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def peers(secure_broker: SecureBroker) -> Iterator[Callable[..., Peer]]:
    """Make connected-or-not peers against ``secure_broker``; all closed after the test.

    ``peers(user)`` logs in as a provisioned user over TLS; ``password=``, ``ca=``,
    ``port=``, ``transport=`` and ``client_id=`` override the defaults.
    """
    made: list[Peer] = []

    def make(user: str | None, **kw: Any) -> Peer:
        password = kw.pop("password", None)
        if password is None and user is not None:
            password = secure_broker.password(user)
        peer = Peer(
            kw.pop("port", secure_broker.tls_port),
            user,
            password,
            ca=kw.pop("ca", secure_broker.pki.ca),
            **kw,
        )
        made.append(peer)
        return peer

    yield make
    for p in made:
        p.close()


@pytest.fixture(scope="module")
def secure_broker(tmp_path_factory: pytest.TempPathFactory, pki: Pki) -> Iterator[SecureBroker]:
    """The production broker with two rooms, a clinician and an observer provisioned."""
    b = SecureBroker(tmp_path_factory.mktemp("secure-broker"), pki)
    for role, name in (
        ("room", ROOM_A),
        ("room", ROOM_B),
        ("clinician", CLINICIAN),
        ("observer", OBSERVER),
    ):
        b.add(role, name)
    b.start()
    yield b
    b.stop()


def log_matches(broker: SecureBroker, pattern: str) -> bool:
    """Whether the broker's log has a line matching ``pattern``."""
    return re.search(pattern, broker.logtext()) is not None
