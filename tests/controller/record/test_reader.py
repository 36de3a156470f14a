"""The read-only view of the journal: what the core committed, from another connection."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from controller.journal import Journal
from controller.record.reader import JournalReader

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def test_reads_what_the_journal_committed(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal.sqlite")
    journal.append(T0, "s-1", "session_started", {"plan": {"session_id": "s-1"}})
    journal.append(T0, None, "lighting_changed", {"level": 10})
    journal.append(T0, "s-2", "session_started", {"x": [1, "ü"]})
    journal.record_vitals(T0, "s-1", "sample", '{"spo2": 97}')
    with JournalReader(journal.path) as reader:
        # Vitals are committed in batches, with the next event: not yet visible here.
        assert reader.vitals("s-1") == []
        journal.append(T0, "s-1", "session_ended", {"reason": "test"})
        assert reader.session_events("s-1") == journal.session_events("s-1")
        assert reader.session_events("s-2") == journal.session_events("s-2")
        assert reader.vitals("s-1") == journal.vitals("s-1") != []
        assert reader.session_events("nobody") == [] and reader.vitals("nobody") == []
    journal.close()


def test_never_writes(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal.sqlite")
    journal.append(T0, "s-1", "session_started", {})
    reader = JournalReader(journal.path)
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        reader._db.execute("DELETE FROM events")
    reader.close()
    assert len(journal.session_events("s-1")) == 1
    journal.close()
    with pytest.raises(sqlite3.OperationalError):
        JournalReader(tmp_path / "missing.sqlite")
    assert not (tmp_path / "missing.sqlite").exists()


def test_reads_the_notes_and_none_from_a_journal_without_them(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal.sqlite")
    first = journal.add_note(T0, "s-1", "intentions", "dr-lee", "to rest")
    journal.append(T0, "s-1", "note_recorded", {"note_id": first})
    journal.add_note(T0, "s-2", "debrief", "dr-kim", "another session")
    with JournalReader(journal.path) as reader:
        assert reader.notes("s-1") == journal.notes("s-1")
        assert reader.notes("s-1") == [
            {
                "note_id": first,
                "kind": "intentions",
                "by": "dr-lee",
                "ts": "2026-01-05T09:00:00.000Z",
                "text": "to rest",
            }
        ]
    journal.close()
    with sqlite3.connect(tmp_path / "journal.sqlite") as db:
        db.execute("DROP TABLE notes")  # as a journal from before notes were kept
    with JournalReader(tmp_path / "journal.sqlite") as reader:
        assert reader.notes("s-1") == []
