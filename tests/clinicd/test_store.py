"""The archive's SQLite file (a real file): exactly once, contiguity, sessions, notes, outbox."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path

from mqtt_bridge.clinicd.store import Store
from tests.clinicd.support import T0, event, session_events


def test_each_room_seq_is_stored_once_and_survives_reopening(tmp_path: Path) -> None:
    db = tmp_path / "a" / "archive.sqlite"
    store = Store(db)
    e1, e2 = event(1, "session_configured"), event(2, "session_started", plan={})
    assert store.add_events("room-3", [e1, e2]) == [e1, e2]
    assert store.add_events("room-3", [e2, e1]) == []
    assert store.add_events("room-5", [e1]) == [e1]  # the same seq in another room is new
    store.close()
    again = Store(db)
    assert [e.seq for e in again.events_of("room-3")] == [1, 2]
    assert again.events_of("room-3")[1] == e2
    with sqlite3.connect(db) as c:
        assert c.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert c.execute("SELECT count(*) FROM events").fetchone()[0] == 3
    again.close()


def test_synchronous_is_full(tmp_path: Path) -> None:
    store = Store(tmp_path / "x.sqlite")
    assert store._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


def test_complete_through_follows_the_contiguous_part(tmp_path: Path) -> None:
    store = Store(tmp_path / "x.sqlite")
    store.add_events("room-3", [event(1, "a"), event(2, "b"), event(5, "c")])
    room = store.room("room-3")
    assert room is not None and (room.complete_through, room.last_seq) == (2, 5)
    store.add_events("room-3", [event(3, "x"), event(4, "y")])
    assert store.room("room-3").complete_through == 5  # type: ignore[union-attr]
    # A room first seen mid-journal is not complete until the room answers for 1..
    store.add_events("room-9", [event(40, "z")])
    assert store.room("room-9").complete_through == 0  # type: ignore[union-attr]
    # The room answered: it has nothing before 40 (a recovered journal skipped them).
    store.confirm_through("room-9", 39)
    assert store.room("room-9").complete_through == 40  # type: ignore[union-attr]
    assert store.room("room-0") is None
    assert [r.room_id for r in store.rooms()] == ["room-3", "room-9"]
    assert store.room("room-3").last_event_at == "2026-01-05T09:00:00.000Z"  # type: ignore[union-attr]


def test_sessions_are_indexed_by_patient_and_time(tmp_path: Path) -> None:
    store = Store(tmp_path / "x.sqlite")
    store.add_events("room-5", session_events("s2", 2, first_seq=1, days=4))
    store.add_events("room-3", session_events("s1", 1, first_seq=1))
    store.add_events("room-3", session_events("other", 1, first_seq=20, patient_ref="P-2"))
    assert store.sessions_of("P-1") == ["s1", "s2"]
    assert store.session_room("s2") == "room-5"
    assert next(e.type for e in store.session_events("s1")) == "session_started"
    assert store.sessions_of("P-9") == []


def test_notes_are_wanted_after_the_end_and_kept(tmp_path: Path) -> None:
    store = Store(tmp_path / "x.sqlite")
    store.add_events("room-3", session_events("s1", 1)[:3])
    assert store.notes_wanted() == []  # not ended, nothing noted
    store.add_events("room-3", [event(4, "note_recorded", "s1", note_id="n1", kind="intentions")])
    assert store.notes_wanted() == [("room-3", "s1")]
    store.put_notes("s1", [{"note_id": "n1", "kind": "intentions", "by": "dr-a",
                            "ts": "2026-01-05T09:01:00.000Z", "text": "to rest"}])  # fmt: skip
    assert store.notes_wanted() == []
    assert store.notes_of("s1")[0]["text"] == "to rest"
    store.add_events("room-3", [event(5, "session_ended", "s1", reason="discharged")])
    assert store.notes_wanted("room-3") == [("room-3", "s1")]  # asked again after the end
    store.mark_notes("s1", "unsupported")
    assert store.notes_wanted() == [] and store.notes_state("s1") == "unsupported"
    store.retry_unsupported_notes("room-3")
    assert store.notes_wanted() == [("room-3", "s1")]


def _three_ended_sessions(store: Store) -> None:
    seq = 1
    for sid in ("s1", "s2", "s3"):
        events = session_events(sid, sid[1], first_seq=seq)
        store.add_events("room-3", events)
        seq = events[-1].seq + 1


def test_the_sessions_to_send_come_a_limited_number_at_a_time(tmp_path: Path) -> None:
    store = Store(tmp_path / "x.sqlite")
    _three_ended_sessions(store)
    assert len(store.sessions_to_send()) == 3
    first = store.sessions_to_send(2)
    assert len(first) == 2
    for room_id, session_id in first:
        store.enqueue_message(session_id, room_id, "MSH|...", T0)
    rest = store.sessions_to_send(2)
    assert len(rest) == 1 and rest[0] not in first
    # The look never walks the events or every session: two partial indexes answer it.
    with sqlite3.connect(tmp_path / "x.sqlite") as c:
        names = {r[0] for r in c.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    assert {"sessions_hl7_due", "events_session_ended"} <= names


def test_an_archive_of_an_earlier_clinicd_is_migrated_once(tmp_path: Path) -> None:
    """An archive written before ``hl7_queued`` existed: opening it adds the column, marks
    the sessions already in the outbox, and queues only the others."""
    db = tmp_path / "old.sqlite"
    store = Store(db)
    _three_ended_sessions(store)
    store.enqueue_message("s1", "room-3", "MSH|old", T0)
    store.close()
    with sqlite3.connect(db) as c:  # back to the earlier schema
        c.execute("DROP INDEX sessions_hl7_due")
        c.execute("ALTER TABLE sessions DROP COLUMN hl7_queued")
    store = Store(db)
    assert sorted(s for _, s in store.sessions_to_send()) == ["s2", "s3"]
    kept = store.message("s1")
    assert kept is not None and kept.message == "MSH|old"
    store.close()
    again = Store(db)  # and a second open changes nothing
    assert sorted(s for _, s in again.sessions_to_send()) == ["s2", "s3"]
    again.close()


def test_outbox_waits_for_the_whole_session_and_keeps_attempts(tmp_path: Path) -> None:
    store = Store(tmp_path / "x.sqlite")
    events = session_events("s1", 1)
    store.add_events("room-3", events[:2] + events[-1:])  # session_ended, but a gap before it
    assert store.sessions_to_send() == []
    store.add_events("room-3", events)
    assert store.sessions_to_send() == [("room-3", "s1")]
    assert store.enqueue_message("s1", "room-3", "MSH|...", T0)
    assert not store.enqueue_message("s1", "room-3", "MSH|other", T0)
    assert store.sessions_to_send() == []
    assert [r.session_id for r in store.due_messages(T0)] == ["s1"]
    later = T0 + timedelta(seconds=30)
    store.message_result(
        "s1", state="refused", ack_code="AE", error="bad PID", next_try_at=later, now=T0
    )
    assert store.due_messages(T0) == []
    row = store.message("s1")
    assert row is not None and (row.state, row.attempts, row.ack_code) == ("refused", 1, "AE")
    assert row.message == "MSH|..."
    store.message_result(
        "s1", state="accepted", ack_code="AA", error=None, next_try_at=later, now=later
    )
    assert store.due_messages(later + timedelta(days=1)) == []


def test_a_batch_is_one_transaction_committed_at_its_end(tmp_path: Path) -> None:
    db = tmp_path / "x.sqlite"
    store = Store(db)
    other = sqlite3.connect(db)
    count = "SELECT count(*) FROM events"
    with store.batch():
        store.add_events("room-3", [event(1, "a"), event(2, "b")])
        store.add_events("room-5", [event(1, "a")])
        store.confirm_through("room-5", 0)
        assert other.execute(count).fetchone()[0] == 0  # nothing committed yet
    assert other.execute(count).fetchone()[0] == 3
    try:
        with store.batch():
            store.add_events("room-3", [event(3, "c")])
            raise RuntimeError("the worker failed mid-batch")
    except RuntimeError:
        pass
    assert [e.seq for e in store.events_of("room-3")] == [1, 2]  # all of it, or nothing
    assert store.room("room-3").complete_through == 2  # type: ignore[union-attr]


def test_a_page_with_repeats_stores_each_seq_once_in_order(tmp_path: Path) -> None:
    store = Store(tmp_path / "x.sqlite")
    store.add_events("room-3", [event(2, "b")])
    e1, e2, e3 = event(1, "a"), event(2, "b"), event(3, "c")
    assert store.add_events("room-3", [e3, e1, e2, e3]) == [e1, e3]
    assert [e.seq for e in store.events_of("room-3")] == [1, 2, 3]
    assert store.room("room-3").complete_through == 3  # type: ignore[union-attr]
    assert store.add_events("room-3", []) == []


def test_a_kept_summary_is_stale_once_its_session_has_another_event(tmp_path: Path) -> None:
    store = Store(tmp_path / "x.sqlite")
    events = session_events("s1", 1)
    store.add_events("room-3", events[:-1])
    assert store.unsummarized() == []  # not ended: summarised only when asked
    store.add_events("room-3", events[-1:])
    assert store.unsummarized() == ["s1"] == store.unsummarized(["s1", "s9"])
    assert store.unsummarized(["s9"]) == []
    store.keep_summary("s1", len(events), {"events": len(events)})
    assert store.unsummarized() == []
    assert store.kept_summary("s1") == {"events": len(events)}
    # Another process kept one from fewer events than are stored now: not used.
    store.keep_summary("s1", len(events) - 1, {"events": len(events) - 1})
    assert store.kept_summary("s1") is None
    store.keep_summary("s1", len(events), {"events": len(events)})
    late = event(len(events) + 1, "report_ready", "s1", path="/x", summary={})
    store.add_events("room-3", [late])  # a late event drops it: summarised again when idle
    assert store.kept_summary("s1") is None and store.unsummarized() == ["s1"]
