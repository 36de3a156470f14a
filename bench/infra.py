"""What every benchmark stands on: a broker, room processes, /proc readings, the pty line.

Nothing here imports the tests: the bench must run from a checkout with only the runtime
dependencies (plus Mosquitto) installed.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import glob
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


class BenchError(RuntimeError):
    """Something the bench needs did not happen (a timeout, a process that died)."""


# --- numbers ------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100), linear between closest ranks."""
    if not values:
        raise ValueError("no values")
    s = sorted(values)
    if len(s) == 1:
        return s[0]
    pos = (len(s) - 1) * q / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def summary_ms(seconds: Sequence[float]) -> dict[str, float | int]:
    """n, p50, p99, max and mean of durations given in seconds, in milliseconds."""
    ms = [s * 1000.0 for s in seconds]
    return {
        "n": len(ms),
        "p50_ms": round(percentile(ms, 50), 3),
        "p99_ms": round(percentile(ms, 99), 3),
        "max_ms": round(max(ms), 3),
        "mean_ms": round(sum(ms) / len(ms), 3),
    }


# --- processes ----------------------------------------------------------------------------


_STARTED: dict[int, subprocess.Popen[bytes]] = {}
"""Every process the bench started and has not reaped: killed (by pid) on the way out."""


def spawn(
    argv: Sequence[str], log: Path, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Start a child process, output to ``log``; remembered so it is never left behind."""
    with open(log, "ab") as fh:
        proc = subprocess.Popen(list(argv), stdout=fh, stderr=subprocess.STDOUT, env=env)
    _STARTED[proc.pid] = proc
    return proc


SOURCE_PACKAGES = ("controller", "hw", "audio", "mqtt_bridge")
"""The room's own packages."""


def compile_sources(root: Path = REPO) -> None:
    """Byte-compile the room's packages under ``root`` (into their ``__pycache__``), so a room
    starts from bytecode as an installed one does (pip compiles on install).

    A checkout run with ``PYTHONDONTWRITEBYTECODE`` set otherwise compiles every module of its
    own from source at each start: slower, and the compiler's garbage stays in the process's
    memory (about 1 MB of RSS)."""
    dirs = [str(root / p) for p in SOURCE_PACKAGES if (root / p).is_dir()]
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", *dirs],
        check=True,
        timeout=300,
        stdout=subprocess.DEVNULL,
    )


def reap(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 10.0) -> None:
    """Stop one child we started (``sig``, then SIGKILL if it lingers) and forget it."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(sig)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            proc.wait(timeout=10)
    _STARTED.pop(proc.pid, None)


def reap_all() -> None:
    """Kill every child still running (a benchmark that failed half-way)."""
    for proc in list(_STARTED.values()):
        reap(proc, signal.SIGKILL)


@dataclass
class ProcSample:
    """One reading of a process from /proc."""

    cpu_s: float  # utime + stime, seconds
    rss_kb: int
    hwm_kb: int
    threads: int


def proc_sample(pid: int) -> ProcSample:
    """CPU time and memory of ``pid`` now (its own, not its children's)."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
        stat = fh.read()
    fields = stat[stat.rindex(")") + 2 :].split()
    cpu = (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime (fields 14, 15)
    status: dict[str, str] = {}
    with open(f"/proc/{pid}/status", encoding="ascii") as fh:
        for line in fh:
            key, _, value = line.partition(":")
            status[key] = value.strip()
    return ProcSample(
        cpu_s=cpu,
        rss_kb=int(status.get("VmRSS", "0 kB").split()[0]),
        hwm_kb=int(status.get("VmHWM", "0 kB").split()[0]),
        threads=int(status.get("Threads", "0")),
    )


def cpu_percent(before: ProcSample, after: ProcSample, wall_s: float) -> float:
    """CPU used between two samples, in % of one core."""
    return 100.0 * (after.cpu_s - before.cpu_s) / wall_s if wall_s > 0 else 0.0


# --- the broker ---------------------------------------------------------------------------


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_open(port: int) -> bool:
    """Whether something accepts connections on 127.0.0.1:port."""
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


BROKER_EXTRA_CONF = "set_tcp_nodelay true\n"
"""Lines added to every bench broker's configuration: as the shipped mosquitto.conf
(``--broker-nagle`` removes it, to show what Nagle costs)."""


class Broker:
    """One Mosquitto on a free loopback port (anonymous, no persistence), like the tests'."""

    def __init__(self, workdir: Path) -> None:
        if shutil.which("mosquitto") is None:
            raise BenchError("mosquitto is not installed: run `make deps`")
        workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.conf = workdir / "mosquitto.conf"
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
            "log_dest stderr\nlog_type error\nuser root\nmax_queued_messages 100000\n"
            f"{BROKER_EXTRA_CONF}"
        )
        self.log = workdir / "mosquitto.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        """The running broker's pid."""
        if self.proc is None:
            raise BenchError("the broker is not running")
        return self.proc.pid

    def start(self, timeout: float = 10.0) -> float:
        """Start mosquitto; return the perf_counter time it first accepted a connection."""
        self.proc = spawn(["mosquitto", "-c", str(self.conf)], self.log)
        deadline = time.monotonic() + timeout
        while not port_open(self.port):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise BenchError(f"mosquitto did not start: {self.log.read_text()[-2000:]}")
            time.sleep(0.005)
        return time.perf_counter()

    def stop(self) -> None:
        """Stop mosquitto (SIGTERM, then SIGKILL)."""
        if self.proc is not None:
            reap(self.proc)
        self.proc = None


# --- sd_notify ----------------------------------------------------------------------------


class NotifyListener:
    """The systemd side of sd_notify: an AF_UNIX datagram socket that notes when READY=1 came."""

    def __init__(self, path: Path) -> None:
        self.path = path
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.bind(str(path))
        self._sock.settimeout(0.2)
        self._lock = threading.Lock()
        self._ready: list[float] = []
        self._cond = threading.Condition(self._lock)
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="bench-notify", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._closed:
            try:
                data = self._sock.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            t = time.perf_counter()
            if b"READY=1" in data.split(b"\n"):
                with self._cond:
                    self._ready.append(t)
                    self._cond.notify_all()

    def wait_ready(self, after: float, timeout: float) -> float:
        """The perf_counter time of the first READY=1 received after ``after``."""
        with self._cond:
            ok = self._cond.wait_for(lambda: any(t >= after for t in self._ready), timeout)
            if not ok:
                raise BenchError(f"no READY=1 within {timeout} s")
            return min(t for t in self._ready if t >= after)

    def close(self) -> None:
        """Stop listening and remove the socket."""
        self._closed = True
        self._sock.close()
        self._thread.join(1.0)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


# --- the room process ---------------------------------------------------------------------

ALARM_TOML = '[alarms]\nspo2_critical = {limit = 88, priority = "high", delay_s = 0}\n'
"""The alarm benchmarks' setting: a crossing raises at once (no condition delay)."""


class Room:
    """``python -m controller --simulate`` with its own config, data directory and log."""

    def __init__(
        self,
        workdir: Path,
        port: int,
        room_id: str,
        *,
        time_scale: float = 1.0,
        extra_toml: str = "",
        notify: Path | None = None,
        launch: list[str] | None = None,
        cpus: list[int] | None = None,
    ) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.workdir = workdir
        self.launch = launch or [sys.executable, "-m", "controller"]
        """How ``python -m controller`` is run (``bench.threads.launcher`` names its threads)."""
        self.cpus = cpus
        """The cores it is pinned to (``taskset``), or None."""
        self.room_id = room_id
        self.root = f"clinic/rooms/{room_id}"
        self.time_scale = time_scale
        self.config = workdir / "roomd.toml"
        self.config.write_text(
            f'[room]\nid = "{room_id}"\nallow_unsynced_clock = true\n'
            f'[mqtt]\nhost = "127.0.0.1"\nport = {port}\nkeepalive_s = 5\n{extra_toml}'
        )
        self.data_dir = workdir / "data"
        self.log = workdir / "roomd.log"
        self.notify = notify
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        """The running daemon's pid."""
        if self.proc is None:
            raise BenchError(f"{self.room_id} is not running")
        return self.proc.pid

    def start(self) -> float:
        """Spawn the daemon; return the perf_counter time just before the fork."""
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        env.pop("NOTIFY_SOCKET", None)
        if self.notify is not None:
            env["NOTIFY_SOCKET"] = str(self.notify)
        pin = ["taskset", "-c", ",".join(map(str, self.cpus))] if self.cpus is not None else []
        argv = [
            *pin,
            *self.launch,
            "--simulate",
            "--time-scale",
            str(self.time_scale),
            "--config",
            str(self.config),
            "--data-dir",
            str(self.data_dir),
        ]
        t = time.perf_counter()
        self.proc = spawn(argv, self.log, env)
        return t

    def kill9(self) -> None:
        """Crash it: SIGKILL, no clean-up (the bench then removes its simulator's pty dirs)."""
        if self.proc is not None:
            leftovers = sim_dirs(self.proc.pid)
            reap(self.proc, signal.SIGKILL)
            for d in leftovers:
                shutil.rmtree(d, ignore_errors=True)

    def stop(self) -> None:
        """A clean stop (SIGTERM), SIGKILL if it does not go."""
        if self.proc is not None:
            reap(self.proc)
        self.proc = None

    def alive(self) -> bool:
        """Whether the daemon runs."""
        return self.proc is not None and self.proc.poll() is None

    def tail(self, chars: int = 1500) -> str:
        """The end of its log, for error messages."""
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""


def sim_dirs(pid: int) -> list[str]:
    """The ``roomd-sim-*`` pty directories of the simulated devices in process ``pid``."""
    ptys: set[str] = set()
    with contextlib.suppress(OSError):
        for entry in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                ptys.add(os.readlink(f"/proc/{pid}/fd/{entry}"))
    return [
        os.path.dirname(link)
        for link in glob.glob(os.path.join(tempfile.gettempdir(), "roomd-sim-*", "*"))
        if os.path.realpath(link) in ptys
    ]


# --- paho clients -------------------------------------------------------------------------

Matcher = Callable[[str, bytes], Any]


_SYS_PIDFD_GETFD = 438
_TIOCGPTN = 0x80045430


class OximeterLine:
    """Writes monitor lines straight onto the simulated oximeter's serial line.

    The simulated monitor lives in the daemon's process, behind a pty whose master only that
    process holds; ``pidfd_getfd(2)`` (Linux ≥ 5.6, same user or CAP_SYS_PTRACE) gives us a
    duplicate of that master, so a line written here is read by the real driver exactly like
    one from the simulator (which keeps writing its own once per sample period).
    """

    def __init__(self, pid: int) -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        targets = {os.path.realpath(link): link for link in glob.glob("/tmp/roomd-sim-*/oximeter")}
        pidfd = os.pidfd_open(pid)
        self.fd: int | None = None
        try:
            for entry in os.listdir(f"/proc/{pid}/fd"):
                try:
                    if os.readlink(f"/proc/{pid}/fd/{entry}") not in ("/dev/ptmx", "/dev/pts/ptmx"):
                        continue
                except OSError:
                    continue
                fd = libc.syscall(_SYS_PIDFD_GETFD, pidfd, int(entry), 0)
                if fd < 0:
                    err = ctypes.get_errno()
                    raise BenchError(f"pidfd_getfd failed: {os.strerror(err)}")
                number = struct.unpack("I", fcntl.ioctl(fd, _TIOCGPTN, b"\0\0\0\0"))[0]
                if f"/dev/pts/{number}" in targets:
                    self.fd = fd
                    break
                os.close(fd)
        finally:
            os.close(pidfd)
        if self.fd is None:
            raise BenchError(f"no simulated oximeter pty found in process {pid}")

    def write(self, spo2: int, hr: int = 80) -> None:
        """One Masimo ASCII 1 line with these values (a whole line per write: never torn)."""
        stamp = time.strftime("%m/%d/%y %H:%M:%S", time.gmtime())
        line = (
            f"{stamp} SN=0000084590 SPO2={spo2:03d}% BPM={hr:03d} PI=03.20% SPCO=--.-% "
            f"SPMET=--.-% DESAT=-- PIDELTA=+-- ALARM=0000 EXC=000000\r\n"
        )
        assert self.fd is not None
        os.write(self.fd, line.encode())

    def close(self) -> None:
        """Close our duplicate (the daemon's own stays open)."""
        if self.fd is not None:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.fd = None


# --- small things -------------------------------------------------------------------------


def bare_paho_script(port: int, seconds: float) -> str:
    """A ``python -c`` program: one bare paho client, connected, idle (the RSS reference)."""
    return (
        "import time, paho.mqtt.client as m\n"
        "c = m.Client(m.CallbackAPIVersion.VERSION2, protocol=m.MQTTv5)\n"
        f"c.connect('127.0.0.1', {port}); c.loop_start(); time.sleep({seconds})\n"
    )


def deps_floor_script(port: int, seconds: float) -> str:
    """A ``python -c`` program: the room's own libraries imported and used once (paho
    connected, one pydantic model validated, a gpiozero device on mock pins, SQLite, TLS,
    pyserial), then idle: the memory floor the room's code stands on."""
    return (
        "import json, logging, sqlite3, ssl, time, tomllib, serial\n"
        "import paho.mqtt.client as m, pydantic\n"
        "from gpiozero import Device, LED\n"
        "from gpiozero.pins.mock import MockFactory\n"
        "class M(pydantic.BaseModel):\n    x: int\n"
        "M.model_validate_json('{\"x\": 1}')\n"
        "Device.pin_factory = MockFactory(); led = LED(17)\n"
        "db = sqlite3.connect(':memory:'); ctx = ssl.create_default_context()\n"
        "c = m.Client(m.CallbackAPIVersion.VERSION2, protocol=m.MQTTv5)\n"
        f"c.connect('127.0.0.1', {port}); c.loop_start(); time.sleep({seconds})\n"
    )


def echo_script(port: int, req: str, rep: str) -> str:
    """A ``python -c`` program: a bare paho client that republishes every request (QoS 1)."""
    return (
        "import sys, paho.mqtt.client as m\n"
        "c = m.Client(m.CallbackAPIVersion.VERSION2, protocol=m.MQTTv5)\n"
        f"c.on_connect = lambda c, u, f, r, p: c.subscribe('{req}', 1)\n"
        f"c.on_message = lambda c, u, msg: c.publish('{rep}', msg.payload, 1)\n"
        f"c.connect('127.0.0.1', {port}); c.loop_forever()\n"
    )


def python_argv(code: str) -> list[str]:
    """``python -c code`` with this interpreter."""
    return [sys.executable, "-c", code]
