"""The room on a real, small tmpfs that fills up mid-infusion (issue 14, fault 1).

In-process: the real Room on fakes (``tests.controller.harness``) with a FakeClock, its journal
on a 4 MB tmpfs filled by a file until ENOSPC. Before the fix, ``record_vitals`` raised a raw
``sqlite3.OperationalError`` that the loop swallowed: SpO2 at 85 % for 50 s raised nothing and
commands got no reply.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from controller import eventlog
from controller.storage import StorageReadOnly
from tests.controller.harness import Harness, make_config
from tests.faults.diskkit import fill, free, remount, small_tmpfs


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Path]:
    with small_tmpfs(tmp_path / "disk", "4m") as where:
        yield where


def alarm_codes(h: Harness) -> list[str]:
    return [a.code for a in h.room.alarms.current()]


def test_disk_full_mid_infusion_keeps_the_room_safe_and_loud(disk: Path) -> None:
    h = Harness(disk)
    h.to_infusion_running()
    before = h.journal.last_seq
    assert fill(disk) > 0
    # Within 5 s, with no event due: the free-space check says so.
    h.run(5, step=1)
    assert "storage_fault" in alarm_codes(h)
    alarm = next(a for a in h.room.alarms.current() if a.code == "storage_fault")
    assert alarm.kind == "technical" and alarm.priority == "high"
    assert "disk is full" in alarm.message
    assert "storage_fault" in h.link.states[-1].alarms  # on the retained state
    assert any("storage_fault" in [a.code for a in alarms] for alarms in h.link.alarms)

    # SpO2 85 % for 50 s: the alarm is raised and shown, the disk notwithstanding.
    h.run(50, step=1, spo2=85)
    assert "spo2_critical" in alarm_codes(h)
    assert "spo2_critical" in h.link.states[-1].alarms

    # Commands get their replies; an emergency runs its outputs at once.
    assert h.ok("status")["phase"] == "infusion"
    again = b'{"request_id": "same-1", "by": "dr-lee"}'
    assert h.send("status", again).ok
    repeated = h.send("status", again)  # its first reply is held in memory: still a duplicate
    assert repeated.error is not None and repeated.error.code == "duplicate"
    reply = h.cmd("emergency", reason="test: desaturation")
    assert reply.ok, reply.error
    assert h.lighting.calls[-1][0] == "emergency"
    assert not h.audio.playing
    assert h.journal.last_seq == before  # nothing journaled meanwhile...
    assert h.room.log.waiting > 0  # ...it waits, in order

    free(disk)
    h.run(3, step=1)
    assert h.room.log.waiting == 0
    assert h.room.log.storage_fault is None
    assert "storage_fault" not in alarm_codes(h)
    seqs = [e.seq for e in h.journal.events_since(1, 100_000)]
    assert seqs == list(range(1, len(seqs) + 1)), "seqs given at commit, none reused or lost"
    types = h.types()[before:]
    assert types[0] == "storage_fault"
    assert types.index("alarm_raised") < types.index("emergency") < types.index("storage_restored")
    restored = h.events("storage_restored")[-1]
    assert restored["kind"] == "full" and restored["dropped"] == 0
    # Every event up to the fault's alarm_cleared waited: storage_restored counts them.
    assert types[restored["committed_late"]] == "alarm_cleared"
    assert restored["committed_late"] == types.index("storage_restored") - 1
    # What waited went out with its real seq, in order.
    published = [e.seq for e in h.link.events if e.seq > before]
    assert published == sorted(published) and 0 not in published
    # The reply held in memory was written too, and so were the vitals.
    rows = h.journal.db.execute("SELECT 1 FROM replies WHERE request_id = 'same-1'").fetchall()
    assert rows == [(1,)]
    assert len(h.journal.vitals("s-001")) >= 58
    h.close()


def test_a_read_only_file_system_at_start_is_said_as_such(disk: Path) -> None:
    h = Harness(disk)
    h.to_pre_infusion()
    h.close()
    remount(disk, "ro")  # what the kernel does to an ext4 card after I/O errors
    try:
        with pytest.raises(StorageReadOnly) as info:
            Harness(disk)
        assert str(disk / "journal.sqlite") in str(info.value)
        assert "remount" in str(info.value)
    finally:
        remount(disk, "rw")
    h = Harness(disk)  # left where it was: the session resumes
    assert h.room.phase == "pre_infusion"
    h.close()


def free_mb(folder: Path) -> float:
    st = os.statvfs(folder)
    return st.f_bavail * st.f_frsize / 1e6


def test_low_space_warns_then_alarms_before_the_disk_is_full(tmp_path: Path) -> None:
    with small_tmpfs(tmp_path / "disk", "16m") as disk:
        config = make_config(journal={"warn_free_mb": 8, "alarm_free_mb": 4})
        h = Harness(disk, config)
        h.run(3, step=1)
        assert not {"storage_low", "storage_critical"} & set(alarm_codes(h))
        ballast = disk / "ballast"
        ballast.write_bytes(b"\0" * int((free_mb(disk) - 6) * 1e6))  # 6 MB left
        h.run(3, step=1)
        assert "storage_low" in alarm_codes(h)
        with open(ballast, "ab") as fh:
            fh.write(b"\0" * int((free_mb(disk) - 2) * 1e6))  # 2 MB left
        h.run(3, step=1)
        assert "storage_critical" in alarm_codes(h)
        assert "storage_low" not in alarm_codes(h)
        assert h.room.log.storage_fault is None  # a warning, not yet a fault
        ballast.unlink()
        h.run(3, step=1)
        assert not {"storage_low", "storage_critical"} & set(alarm_codes(h))
        h.close()


def test_the_queue_is_bounded_and_what_it_drops_is_counted(
    disk: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A smaller bound than the real one (QUEUE_MAX): the same code, a disk-sized test.
    monkeypatch.setattr(eventlog, "QUEUE_MAX", 200)
    h = Harness(disk)
    h.to_infusion_running()
    fill(disk)
    h.run(3, step=1)
    log = h.room.log
    # More events than the queue holds: each is still folded (acts on the room).
    for i in range(200 - log.waiting + 25):
        log.emit("checkin_recorded", {"by": "rn-kim", "note": f"filler {i}"})
    assert log.waiting == 200
    assert log.dropped == 25
    free(disk)
    h.run(3, step=1)
    restored = h.events("storage_restored")[-1]
    assert restored["dropped"] == log.dropped
    h.close()
