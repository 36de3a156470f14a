"""The real ``roomd`` against real storage faults (issue 14, faults 1, 2, 3, 5, 7).

- a full tmpfs at start-up, a read-only remount, a journal the daemon's user may not open:
  roomd refuses to start, names the file and the cause, leaves the file where it is;
- committed events lost with the ``-wal`` while roomd was down: their seqs are never given
  again and ``journal_recovered`` says which were lost;
- libfiu (``fiu-run -x`` / ``fiu-ctrl``) makes ``fdatasync`` fail with EIO and ``pwrite``
  with ENOSPC under the running daemon: it stays up, says so to systemd (STATUS on a real
  NOTIFY_SOCKET) and journals the held events in order once the fault is lifted.

Each journal is made first by the real Room on fakes (the harness) mid-infusion, so roomd
starts by resuming a running session. No broker: the link retries in the background.
"""

from __future__ import annotations

import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from controller.clock import FakeClock
from tests.controller.harness import Harness
from tests.faults.diskkit import fill, fiu_ctrl, free, need_fiu, need_root, remount, small_tmpfs
from tests.faults.faultkit import wait_until
from tests.support.broker import free_port
from tests.support.daemon import RoomProcess

JOURNAL = "journal.sqlite"


def session_journal(data_dir: Path) -> int:
    """A journal mid-infusion, as a room that was running left it; its last seq."""
    h = Harness(data_dir, clock=FakeClock(start=datetime.now(UTC)))
    h.to_infusion_running()
    last = h.journal.last_seq
    h.close()
    return last


def rows(db: Path) -> list[tuple[int, str, str]]:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    try:
        return list(con.execute("SELECT seq, type, data FROM events ORDER BY seq"))
    finally:
        con.close()


class Roomd(RoomProcess):
    """The real daemon on ``data_dir``, optionally under a prefix (``fiu-run -x``,
    ``setpriv``), with a NOTIFY_SOCKET the test reads."""

    def __init__(self, workdir: Path, data_dir: Path, prefix: tuple[str, ...] = ()) -> None:
        super().__init__(workdir, free_port(), room_id="room-storage", time_scale=10.0)
        self.config.chmod(0o644)
        self.data_dir = data_dir
        self.prefix = prefix
        self.notify_path = workdir / "notify"
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.notify.bind(str(self.notify_path))
        self.notify.setblocking(False)
        self.notify_path.chmod(0o777)
        self.said: list[str] = []

    def start(self) -> None:
        """Start it under its prefix; what it says to systemd is gathered from now on."""
        self.statuses()
        self.said = []
        cmd = [*self.prefix, sys.executable, "-m", "controller", "--simulate"]
        cmd += ["--time-scale", str(self.time_scale), "--config", str(self.config)]
        cmd += ["--data-dir", str(self.data_dir)]
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "NOTIFY_SOCKET": str(self.notify_path)}
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)

    def statuses(self) -> list[str]:
        """Every STATUS= it sent so far in this run."""
        while True:
            try:
                self.said.append(self.notify.recv(4096).decode())
            except BlockingIOError:
                return [s for s in self.said if s.startswith("STATUS=")]

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Until it says READY=1 (bounded)."""
        wait_until(lambda: self.statuses() and "READY=1" in self.said, timeout, "READY=1")

    def exit_code(self, timeout: float = 30.0) -> int:
        """Its exit code, once it has exited (bounded)."""
        assert self.proc is not None
        return self.proc.wait(timeout=timeout)

    def close(self) -> None:
        """Gone, and its socket closed."""
        self.stop()
        self.notify.close()


@pytest.fixture
def roomd(tmp_path: Path) -> Iterator[list[Roomd]]:
    made: list[Roomd] = []
    yield made
    for r in made:
        r.close()


def kept(data_dir: Path) -> dict[str, bytes]:
    """What holds the record: the journal, a -wal with frames in it, the seq mark (an empty
    -wal and the -shm index hold nothing; SQLite may tidy them away)."""
    out = {}
    for p in data_dir.iterdir():
        if p.name.startswith(JOURNAL) and not p.name.endswith("-shm") and p.stat().st_size:
            out[p.name] = p.read_bytes()
    return out


def refusal(r: Roomd, data_dir: Path, cause: str) -> str:
    """roomd exits 1 naming the file and ``cause``, sets nothing aside, changes nothing."""
    before = kept(data_dir)
    r.start()
    assert r.exit_code() == 1, r.logtext()
    text = r.logtext()
    assert "Traceback" not in text, text
    assert f"cannot start: journal {data_dir / JOURNAL}: {cause}" in text, text
    assert not [p for p in data_dir.iterdir() if "damaged" in p.name]
    assert kept(data_dir) == before  # left exactly where it was
    return text


def test_a_full_disk_at_start_up_refuses_and_keeps_the_sound_journal(
    tmp_path: Path, roomd: list[Roomd]
) -> None:
    with small_tmpfs(tmp_path / "disk", "4m") as disk:
        last = session_journal(disk)
        fill(disk)
        r = Roomd(tmp_path, disk)
        roomd.append(r)
        text = refusal(r, disk, "the disk is full")
        assert "free space" in text
        free(disk)
        r.start()  # space is back: the same journal, the session resumed, no seq reused
        r.wait_ready()
        assert r.terminate() == 0
        events = rows(disk / JOURNAL)
        assert [s for s, _, _ in events] == list(range(1, len(events) + 1))
        assert events[last][1] == "session_resumed"


def test_a_read_only_file_system_refuses_with_its_cause(tmp_path: Path, roomd: list[Roomd]) -> None:
    with small_tmpfs(tmp_path / "disk", "4m") as disk:
        session_journal(disk)
        remount(disk, "ro")
        r = Roomd(tmp_path, disk)
        roomd.append(r)
        try:
            refusal(r, disk, "the file system is read-only")
        finally:
            remount(disk, "rw")


def test_a_journal_the_daemon_may_not_open_refuses_with_permission_denied(
    roomd: list[Roomd],
) -> None:
    need_root()  # to start roomd as another user (nobody) on root's journal
    # pytest's tmp folders are root's alone: nobody must reach the config and the log.
    top = Path(tempfile.mkdtemp(prefix="roomd-perm-"))
    try:
        top.chmod(0o755)
        data = top / "data"
        session_journal(data)
        data.chmod(0o755)
        for p in data.iterdir():
            p.chmod(0o600)
        r = Roomd(top, data, prefix=("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"))
        roomd.append(r)
        r.log.touch(mode=0o666)
        r.log.chmod(0o666)
        refusal(r, data, "permission denied")
    finally:
        shutil.rmtree(top, ignore_errors=True)


def test_a_lost_wal_never_reuses_a_seq_and_is_reported(tmp_path: Path, roomd: list[Roomd]) -> None:
    data = tmp_path / "data"
    session_journal(data)
    r = Roomd(tmp_path, data)
    roomd.append(r)
    r.start()
    r.wait_ready()
    mark = data / f"{JOURNAL}.seq"
    wait_until(lambda: int(mark.read_text()) > 0, 10, "the mark")
    time.sleep(1.0)  # vitals batches and events land in the -wal
    r.kill9()  # a power cut...
    highest = int(mark.read_text())
    (data / f"{JOURNAL}-wal").unlink()  # ...and the -wal is gone
    (data / f"{JOURNAL}-shm").unlink(missing_ok=True)
    kept = max(s for s, _, _ in rows(data / JOURNAL))
    assert kept < highest, "the test needs events that lived only in the -wal"
    r.start()
    r.wait_ready()
    assert r.terminate() == 0
    events = rows(data / JOURNAL)
    after = [(s, t, d) for s, t, d in events if s > kept]
    assert after[0][0] == highest + 1, "a lost seq was given again"
    recovered = [d for _, t, d in after if t == "journal_recovered"]
    assert recovered and f"[{kept + 1},{highest}]" in recovered[0].replace(" ", "")
    assert any(t == "alarm_raised" and "journal_recovered" in d for _, t, d in after)


@pytest.mark.parametrize(
    ("point", "errno_", "kind"),
    [("posix/io/sync/fdatasync", 5, "I/O error"), ("posix/io/rw/pwrite", 28, "disk is full")],
    ids=["fdatasync-EIO", "pwrite-ENOSPC"],
)
def test_libfiu_write_faults_under_the_running_daemon(
    tmp_path: Path, roomd: list[Roomd], point: str, errno_: int, kind: str
) -> None:
    need_fiu()
    data = tmp_path / "data"
    last = session_journal(data)
    r = Roomd(tmp_path, data, prefix=("fiu-run", "-x", "-f", str(tmp_path / "fiu")))
    roomd.append(r)
    r.start()
    r.wait_ready()
    assert r.proc is not None
    pid = r.proc.pid
    fiu_ctrl(pid, tmp_path / "fiu", f"enable name={point},failinfo={errno_}")
    wait_until(lambda: any("STORAGE FAULT" in s for s in r.statuses()), 10, "STATUS fault")
    fault = next(s for s in r.statuses() if "STORAGE FAULT" in s)
    assert kind in fault and str(data / JOURNAL) in fault
    time.sleep(2.0)  # the room goes on while its events wait
    assert r.proc.poll() is None, r.logtext()
    fiu_ctrl(pid, tmp_path / "fiu", f"disable name={point}")
    wait_until(
        lambda: r.statuses()[-1].endswith(": infusion") or r.statuses()[-1].endswith(": debrief"),
        10,
        "STATUS back to the phase",
    )
    assert r.terminate() == 0
    events = rows(data / JOURNAL)
    assert [s for s, _, _ in events] == list(range(1, len(events) + 1))
    types = [t for _, t, _ in events[last:]]
    assert types.index("storage_fault") < types.index("storage_restored")
