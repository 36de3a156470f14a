"""Storage errors say what happened; the seq high-water mark outside the WAL."""

from __future__ import annotations

import errno
import sqlite3
from pathlib import Path

import pytest

from controller.storage import (
    JournalDamaged,
    SeqMark,
    StorageError,
    StorageFull,
    StorageIOError,
    StoragePermission,
    StorageReadOnly,
    classify,
)


def sqlite_error(code: int, name: str) -> sqlite3.Error:
    """An error as SQLite raises it (code and name are set by the sqlite3 module)."""
    exc = sqlite3.OperationalError(name.lower())
    exc.sqlite_errorcode = code  # type: ignore[attr-defined]
    exc.sqlite_errorname = name  # type: ignore[attr-defined]
    return exc


@pytest.mark.parametrize(
    ("code", "name", "kind"),
    [
        (13, "SQLITE_FULL", StorageFull),
        (1034, "SQLITE_IOERR_FSYNC", StorageIOError),
        (778, "SQLITE_IOERR_WRITE", StorageIOError),
        (8, "SQLITE_READONLY", StorageReadOnly),
        (3, "SQLITE_PERM", StoragePermission),
        (11, "SQLITE_CORRUPT", JournalDamaged),
        (26, "SQLITE_NOTADB", JournalDamaged),
    ],
)
def test_sqlite_codes_become_typed_errors(
    tmp_path: Path, code: int, name: str, kind: type[StorageError]
) -> None:
    path = tmp_path / "journal.sqlite"
    error = classify(sqlite_error(code, name), path)
    assert type(error) is kind
    assert str(path) in str(error) and name in str(error)
    assert error.hint  # what to do about it


@pytest.mark.parametrize(
    ("number", "kind"),
    [
        (errno.ENOSPC, StorageFull),
        (errno.EDQUOT, StorageFull),
        (errno.EROFS, StorageReadOnly),
        (errno.EACCES, StoragePermission),
        (errno.EIO, StorageIOError),
    ],
)
def test_os_errors_become_typed_errors(
    tmp_path: Path, number: int, kind: type[StorageError]
) -> None:
    error = classify(OSError(number, "x"), tmp_path / "journal.sqlite")
    assert type(error) is kind


def test_only_damage_is_damage() -> None:
    kinds = {c.kind for c in (StorageFull, StorageIOError, StorageReadOnly, StoragePermission)}
    assert "damaged" not in kinds and JournalDamaged.kind == "damaged"


def test_the_mark_round_trips_in_place(tmp_path: Path) -> None:
    mark = SeqMark(tmp_path / "journal.sqlite.seq")
    assert mark.read() is None
    for seq in (1, 2, 12345678901):
        mark.write(seq)
        assert mark.read() == seq
    mark.write(7)  # shorter: the fixed width leaves no old digit behind
    assert mark.read() == 7
    assert (tmp_path / "journal.sqlite.seq").stat().st_size == SeqMark.WIDTH + 1
    mark.close()
    assert SeqMark(tmp_path / "journal.sqlite.seq").read() == 7


def test_a_mark_that_cannot_be_written_is_a_typed_error(tmp_path: Path) -> None:
    mark = SeqMark(tmp_path / "missing-folder" / "journal.sqlite.seq")
    with pytest.raises(StorageIOError):
        mark.write(3)
