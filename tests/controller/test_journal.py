"""The journal on real SQLite files: seq, durability settings, outbox, replies, vitals, meta."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from controller.errors import JournalError
from controller.journal import VITALS_BATCH, Journal, open_journal
from controller.storage import JournalDamaged, StorageFull

T0 = datetime(2026, 1, 5, 9, 0, 0, 250_000, tzinfo=UTC)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "journal.sqlite"


@pytest.fixture
def journal(path: Path) -> Iterator[Journal]:
    j = Journal(path)
    yield j
    j.close()


def reader(path: Path) -> sqlite3.Connection:
    """A second connection, as another process would open the file."""
    return sqlite3.connect(path, isolation_level=None)


def count(path: Path, table: str) -> int:
    db = reader(path)
    try:
        return int(db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])
    finally:
        db.close()


def fill(j: Journal, n: int, session_id: str | None = "s-1", start: int = 0) -> None:
    for i in range(start, start + n):
        j.append(T0 + timedelta(seconds=i), session_id, "thing_happened", {"i": i})


# --- seq ------------------------------------------------------------------------------------


def test_seq_starts_at_1_and_strictly_increases(journal: Journal) -> None:
    assert journal.last_seq == 0
    first = journal.append(T0, None, "session_configured", {"plan": {"a": 1}})
    assert first.seq == 1
    seqs = [journal.append(T0, "s-1", "x", {}).seq for _ in range(20)]
    assert seqs == list(range(2, 22))
    assert journal.last_seq == 21


def test_seq_continues_after_reopen(path: Path) -> None:
    j = Journal(path)
    fill(j, 5)
    j.close()
    j = Journal(path)
    try:
        assert j.last_seq == 5
        assert j.append(T0, None, "after_restart", {}).seq == 6
    finally:
        j.close()


def test_event_round_trips(journal: Journal) -> None:
    data = {"from": "idle", "to": "check_in", "by": "dr-lee", "n": [1, 2.5, None]}
    written = journal.append(T0, "s-9", "phase_changed", data)
    (read,) = journal.events_since(written.seq, 1)
    assert read.seq == written.seq
    assert read.type == "phase_changed"
    assert read.session_id == "s-9"
    assert read.data == data
    assert read.ts == T0.replace(microsecond=250_000)


def test_data_directory_is_created(tmp_path: Path) -> None:
    deep = tmp_path / "a" / "b" / "journal.sqlite"
    j = Journal(deep)
    j.close()
    assert deep.is_file()


# --- durability settings --------------------------------------------------------------------


def test_wal_mode_and_synchronous_full(journal: Journal, path: Path) -> None:
    # synchronous is per connection: ask the journal's own connection.
    assert journal._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert journal._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    # WAL is a property of the file: another connection sees it too.
    db = reader(path)
    try:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        db.close()


def test_integrity_check_ok(journal: Journal) -> None:
    fill(journal, 3)
    assert journal.integrity_check() == "ok"


# --- the outbox -----------------------------------------------------------------------------


def test_undelivered_mark_delivered_and_count(journal: Journal) -> None:
    fill(journal, 6)
    assert journal.count_undelivered() == 6
    assert [e.seq for e in journal.undelivered()] == [1, 2, 3, 4, 5, 6]
    for seq in (1, 2, 4):
        journal.mark_delivered(seq)
    assert journal.count_undelivered() == 3
    assert [e.seq for e in journal.undelivered()] == [3, 5, 6]
    assert [e.seq for e in journal.undelivered(limit=2)] == [3, 5]
    journal.mark_delivered(4)  # again: harmless
    assert journal.count_undelivered() == 3


def test_delivery_marks_survive_reopen(path: Path) -> None:
    j = Journal(path)
    fill(j, 4)
    j.mark_delivered(1)
    j.mark_delivered(3)
    j.close()
    j = Journal(path)
    try:
        assert [e.seq for e in j.undelivered()] == [2, 4]
    finally:
        j.close()


# --- reading back ---------------------------------------------------------------------------


def test_events_since_pages(journal: Journal) -> None:
    fill(journal, 25)
    pages = []
    since = 1
    while True:
        page = journal.events_since(since, limit=10)
        if not page:
            break
        pages.append([e.seq for e in page])
        since = page[-1].seq + 1
    assert pages == [list(range(1, 11)), list(range(11, 21)), list(range(21, 26))]
    assert [e.seq for e in journal.events_since(0, 3)] == [1, 2, 3]
    assert [e.seq for e in journal.events_since(24)] == [24, 25]
    assert journal.events_since(26) == []


def test_session_events(journal: Journal) -> None:
    fill(journal, 3, "s-1")
    fill(journal, 2, None, start=3)
    fill(journal, 4, "s-2", start=5)
    fill(journal, 1, "s-1", start=9)
    s1 = journal.session_events("s-1")
    assert [e.seq for e in s1] == [1, 2, 3, 10]
    assert all(e.session_id == "s-1" for e in s1)
    assert [e.seq for e in journal.session_events("s-2")] == [6, 7, 8, 9]
    assert journal.session_events("s-3") == []


def test_last_event_of_types(journal: Journal) -> None:
    journal.append(T0, "s-1", "session_started", {})
    journal.append(T0, "s-1", "phase_changed", {"to": "a"})
    journal.append(T0, "s-1", "session_ended", {})
    journal.append(T0, "s-1", "phase_changed", {"to": "b"})
    last = journal.last_event("session_started", "session_ended")
    assert last is not None and last.seq == 3
    changed = journal.last_event("phase_changed")
    assert changed is not None and changed.data == {"to": "b"}
    assert journal.last_event("never") is None


# --- replies --------------------------------------------------------------------------------


def test_find_reply_and_record_reply(path: Path) -> None:
    journal = Journal(path)
    assert journal.find_reply("r-1") is None
    first = json.dumps({"request_id": "r-1", "verb": "status", "ok": True, "result": {}})
    journal.record_reply("r-1", first)
    assert journal.find_reply("r-1") == first
    # A second record for the same request_id keeps the first reply.
    journal.record_reply("r-1", json.dumps({"request_id": "r-1", "ok": False}))
    assert journal.find_reply("r-1") == first
    assert journal.find_reply("r-2") is None
    journal.close()
    j = Journal(path)
    try:
        assert j.find_reply("r-1") == first
    finally:
        j.close()


# --- vitals ---------------------------------------------------------------------------------


def sample_json(i: int) -> str:
    return json.dumps({"spo2": 90 + i % 10, "hr": 70})


def test_vitals_are_committed_in_batches(path: Path) -> None:
    journal = Journal(path)
    for i in range(VITALS_BATCH - 1):
        journal.record_vitals(T0 + timedelta(seconds=i), "s-1", "sample", sample_json(i))
    assert count(path, "vitals") == 0  # not committed yet
    journal.record_vitals(T0, "s-1", "sample", sample_json(99))
    assert count(path, "vitals") == VITALS_BATCH  # the batch committed
    for i in range(3):
        journal.record_vitals(T0, "s-1", "sample", sample_json(i))
    assert count(path, "vitals") == VITALS_BATCH
    journal.close()
    assert count(path, "vitals") == VITALS_BATCH + 3  # close commits the rest


def test_event_commits_pending_vitals_and_reader_sees_it_at_once(
    journal: Journal, path: Path
) -> None:
    for i in range(3):
        journal.record_vitals(T0, "s-1", "sample", sample_json(i))
    assert count(path, "events") == 0
    event = journal.append(T0, "s-1", "nibp_result", {"sys": 120})
    db = reader(path)
    try:
        rows = db.execute("SELECT seq, type FROM events").fetchall()
        assert rows == [(event.seq, "nibp_result")]
        assert db.execute("SELECT COUNT(*) FROM vitals").fetchone()[0] == 3
        # Each further event is visible to the same reader as soon as append returns.
        journal.append(T0, "s-1", "x", {})
        assert db.execute("SELECT MAX(seq) FROM events").fetchone()[0] == event.seq + 1
    finally:
        db.close()


def test_vitals_read_back_in_order_per_session(journal: Journal, path: Path) -> None:
    journal.record_vitals(T0, "s-1", "sample", sample_json(1))
    journal.record_vitals(T0 + timedelta(seconds=1), "s-2", "sample", sample_json(2))
    journal.record_vitals(T0 + timedelta(seconds=2), "s-1", "nibp", '{"sys":120}')
    rows = journal.vitals("s-1")
    assert [r[1] for r in rows] == ["sample", "nibp"]
    assert rows[0][2] == sample_json(1)
    assert rows[1][0] == "2026-01-05T09:00:02.250Z"
    assert len(journal.vitals("s-2")) == 1
    assert count(path, "vitals") == 3  # reading committed the pending rows


def test_vitals_survive_close_and_reopen(path: Path) -> None:
    j = Journal(path)
    for i in range(4):
        j.record_vitals(T0, "s-1", "sample", sample_json(i))
    j.close()
    j = Journal(path)
    try:
        assert [r[2] for r in j.vitals("s-1")] == [sample_json(i) for i in range(4)]
    finally:
        j.close()


# --- meta -----------------------------------------------------------------------------------


def test_meta_get_set(path: Path) -> None:
    j = Journal(path)
    assert j.get_meta("time_anchor") is None
    j.set_meta("time_anchor", "60|a|b")
    assert j.get_meta("time_anchor") == "60|a|b"
    j.set_meta("time_anchor", "30|c|d")
    assert j.get_meta("time_anchor") == "30|c|d"
    j.set_meta("other", "x")
    j.close()
    j = Journal(path)
    try:
        assert j.get_meta("time_anchor") == "30|c|d"
        assert j.get_meta("other") == "x"
    finally:
        j.close()


def test_a_note_is_named_after_the_event_that_announces_it(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal.sqlite")
    journal.append(T0, "s-1", "session_started", {})
    note_id = journal.add_note(T0, "s-1", "checkin", "dr-lee", "arrived calm")
    event = journal.append(T0, "s-1", "note_recorded", {"note_id": note_id})
    assert note_id == f"n-{event.seq}"
    assert [n["text"] for n in journal.notes("s-1")] == ["arrived calm"]
    assert journal.notes("s-2") == []
    journal.close()
    reopened = Journal(tmp_path / "journal.sqlite")
    assert [n["note_id"] for n in reopened.notes("s-1")] == [note_id]
    reopened.close()


# --- damage ---------------------------------------------------------------------------------


def test_damaged_file_raises_journal_error_saying_to_keep_it(path: Path) -> None:
    j = Journal(path)
    fill(j, 20)
    j.close()
    with open(path, "r+b") as fh:
        fh.write(b"\xde\xad\xbe\xef garbage over the header " * 4)
    with pytest.raises(JournalError) as info:
        Journal(path)
    message = str(info.value)
    assert str(path) in message
    assert "keep it" in message
    assert isinstance(info.value, RuntimeError)


def test_file_that_is_not_a_database_raises_journal_error(path: Path) -> None:
    path.parent.mkdir(parents=True)
    path.write_bytes(b"this is a text file, not a journal\n" * 200)
    with pytest.raises(JournalError) as info:
        Journal(path)
    assert "keep it" in str(info.value)


# --- recovery of a damaged journal ----------------------------------------------------------


NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


def test_open_journal_on_a_sound_file_recovers_nothing(path: Path) -> None:
    j, recovery = open_journal(path, NOW)
    assert recovery is None
    j.close()


def test_damaged_header_is_kept_aside_and_numbering_jumps_past_any_count(path: Path) -> None:
    j = Journal(path)
    fill(j, 20)
    j.close()
    with open(path, "r+b") as fh:
        fh.write(b"\xde\xad\xbe\xef garbage over the header " * 4)
    Path(f"{path}.seq").unlink()  # the high-water mark lost too: nothing at all to go by
    j, recovery = open_journal(path, NOW)
    assert recovery is not None
    aside = Path(recovery.damaged_file)
    assert aside.exists() and aside.name.startswith("journal.sqlite.damaged-20260301T120000Z")
    assert recovery.last_seq is None  # nothing readable: the floor is the time in ms
    assert recovery.first_seq == int(NOW.timestamp() * 1000)
    event = j.append(NOW, None, "x", {})
    assert event.seq == recovery.first_seq
    j.close()
    again = Journal(path)  # the floor survives a restart
    assert again.append(NOW, None, "y", {}).seq == recovery.first_seq + 1
    again.close()


def test_damaged_pages_keep_the_readable_last_seq(path: Path) -> None:
    j = Journal(path)
    fill(j, 200)
    j.close()
    size = path.stat().st_size
    with open(path, "r+b") as fh:  # damage the middle of the file, not the header
        fh.seek(size // 2)
        fh.write(b"\x00\xff" * 2048)
    try:
        j, recovery = open_journal(path, NOW)
    except JournalError:
        pytest.fail("a damaged journal must be set aside, not stop the room")
    if recovery is None:
        j.close()
        pytest.fail("the damage was not detected by the integrity check")
    assert j.append(NOW, None, "after", {}).seq == recovery.first_seq
    assert recovery.first_seq > 200
    j.close()


# --- storage faults (issue 14) --------------------------------------------------------------


def crash_copy(path: Path, dest: Path) -> Path:
    """The journal's files as a power cut would leave them (file, -wal, mark; no close)."""
    dest.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", ".seq"):
        src = Path(f"{path}{suffix}")
        if src.exists():
            (dest / f"journal.sqlite{suffix}").write_bytes(src.read_bytes())
    return dest / "journal.sqlite"


def crashed_with_a_wal(path: Path, dest: Path, in_file: int, in_wal: int) -> Path:
    """A copy of a journal whose first ``in_file`` events are in the main file and the next
    ``in_wal`` only in its -wal, as a power cut leaves it."""
    j = Journal(path)
    fill(j, in_file)
    j.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    fill(j, in_wal, start=in_file)
    copy = crash_copy(path, dest)
    j.close()
    return copy


def test_a_lost_wal_never_lets_a_seq_be_given_again(path: Path, tmp_path: Path) -> None:
    copy = crashed_with_a_wal(path, tmp_path / "crashed", 5, 4)
    Path(f"{copy}-wal").unlink()  # removed between runs (or cut by a bad card)
    again = Journal(copy)
    try:
        assert [e.seq for e in again.events_since(1)] == [1, 2, 3, 4, 5]
        assert again.lost == (6, 9)
        assert again.append(T0, None, "after", {}).seq == 10
    finally:
        again.close()
    third = Journal(copy)  # the floor is kept: a loss is reported once
    try:
        assert third.lost is None
        assert third.append(T0, None, "later", {}).seq == 11
    finally:
        third.close()


def test_a_cut_wal_is_a_loss_too(path: Path, tmp_path: Path) -> None:
    copy = crashed_with_a_wal(path, tmp_path / "crashed", 3, 6)
    wal = Path(f"{copy}-wal")
    wal.write_bytes(wal.read_bytes()[: wal.stat().st_size // 2])
    again = Journal(copy)
    try:
        assert again.lost is not None and again.lost[1] == 9
        assert again.append(T0, None, "after", {}).seq == 10
    finally:
        again.close()


def test_a_clean_restart_loses_nothing(path: Path) -> None:
    j = Journal(path)
    fill(j, 7)
    j.close()
    j = Journal(path)
    try:
        assert j.lost is None
        assert j.last_seq == 7
    finally:
        j.close()


def test_one_corrupt_byte_in_an_event_is_damage_and_is_set_aside(path: Path) -> None:
    j = Journal(path)
    fill(j, 30)
    j.close()
    db = reader(path)
    # What a flipped bit on the card does: the page is sound, the JSON inside it is not.
    db.execute("UPDATE events SET data = '{\"i\": 1' WHERE seq = 17")
    db.close()
    with pytest.raises(JournalDamaged, match="event 17 does not parse"):
        Journal(path)
    j, recovery = open_journal(path, NOW)
    try:
        assert recovery is not None and "event 17" in recovery.reason
        assert Path(recovery.damaged_file).exists()
        assert recovery.first_seq == 31
        assert j.append(NOW, None, "after", {}).seq == 31
    finally:
        j.close()


def test_a_row_that_does_not_parse_at_read_time_is_damage(journal: Journal) -> None:
    fill(journal, 3)
    journal.db.execute("UPDATE events SET ts = 'not a time' WHERE seq = 2")
    with pytest.raises(JournalDamaged, match="event 2"):
        journal.events_since(1)


def test_a_fault_that_is_not_damage_leaves_the_file_where_it_is(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    j = Journal(path)
    fill(j, 4)
    j.close()

    # The one stand-in here: a full disk as SQLite reports it (tests/faults fills a real one).
    error = sqlite3.OperationalError("database or disk is full")
    error.sqlite_errorcode = 13  # type: ignore[attr-defined]
    error.sqlite_errorname = "SQLITE_FULL"  # type: ignore[attr-defined]
    monkeypatch.setattr(
        "controller.journal.Journal._open", lambda self, sync: (_ for _ in ()).throw(error)
    )
    with pytest.raises(StorageFull) as info:
        open_journal(path, NOW)
    assert str(path) in str(info.value) and "free space" in str(info.value)
    assert sorted(p.name for p in path.parent.iterdir() if "damaged" in p.name) == []


def test_vitals_index_and_retention(path: Path) -> None:
    j = Journal(path)
    plan = j.db.execute(
        "EXPLAIN QUERY PLAN SELECT ts FROM vitals WHERE session_id = ? ORDER BY id", ("s",)
    ).fetchall()
    assert "vitals_session" in str(plan)
    old, recent, running = "s-old", "s-recent", "s-running"
    for sid, day in ((old, 0), (recent, 40), (running, 0)):
        t = T0 + timedelta(days=day)
        j.append(t, sid, "session_started", {})
        for i in range(5):
            j.record_vitals(t + timedelta(seconds=i), sid, "sample", sample_json(i))
        if sid != running:
            j.append(t + timedelta(hours=2), sid, "session_ended", {})
    assert j.prune(T0 + timedelta(days=45)) == 5  # default retention: 30 days
    assert j.vitals(old) == []
    assert len(j.vitals(recent)) == 5
    assert len(j.vitals(running)) == 5  # an unfinished session's are never pruned
    assert len(j.session_events(old)) == 2  # events are the record: never pruned
    j.close()


def test_journal_settings_are_checked_by_name() -> None:
    from controller.config import parse_config
    from controller.errors import ConfigError

    config = parse_config({"room": {"id": "r"}, "journal": {"retention_days": 7}})
    assert config.journal.retention_days == 7 and config.journal.warn_free_mb == 200
    with pytest.raises(ConfigError) as info:
        parse_config({"room": {"id": "r"}, "journal": {"warn_free_mb": 40, "alarm_free_mb": 50}})
    assert any(
        "journal.alarm_free_mb" in p and "below warn_free_mb" in p for p in info.value.problems
    )
