"""What went wrong with the journal's storage, in words a technician can act on.

Every failure of a journal operation becomes one ``StorageError`` whose class says what
happened: the disk is full, an I/O error, a read-only file system, a permission refused, or
real damage. Only damage may set a journal aside; the others leave the file where it is.
Also here: the seq high-water mark kept outside SQLite's WAL, and the free-space check.
"""

from __future__ import annotations

import errno
import os
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

from controller.errors import JournalError

# SQLite's primary result codes (sqlite3.h), matched on ``sqlite_errorcode & 0xFF``.
_SQLITE_PERM, _SQLITE_READONLY, _SQLITE_IOERR, _SQLITE_CORRUPT = 3, 8, 10, 11
_SQLITE_FULL, _SQLITE_CANTOPEN, _SQLITE_AUTH, _SQLITE_NOTADB = 13, 14, 23, 26


class StorageError(JournalError):
    """A journal operation failed; the subclass (and ``kind``) says how."""

    kind = "io"
    what = "an I/O error"
    hint = "the journal was left where it is; check the storage device (dmesg) and start again"

    def __init__(self, path: str | Path, detail: str) -> None:
        self.path = str(path)
        self.detail = detail
        super().__init__(f"journal {self.path}: {self.what} ({detail})")


class StorageFull(StorageError):
    """No space left on the journal's file system."""

    kind = "full"
    what = "the disk is full"
    hint = "the journal was left where it is; free space on its file system and start again"


class StorageIOError(StorageError):
    """The device reported an I/O error (a failing SD card, a pulled USB disk)."""

    kind = "io"
    what = "an I/O error"


class StorageReadOnly(StorageError):
    """The journal's file system is mounted read-only."""

    kind = "read_only"
    what = "the file system is read-only"
    hint = (
        "the journal was left where it is; remount its file system read-write (a read-only "
        "remount often follows I/O errors: check the card) and start again"
    )


class StoragePermission(StorageError):
    """The daemon's user may not read or write the journal."""

    kind = "permission"
    what = "permission denied"
    hint = (
        "the journal was left where it is; give the daemon's user (roomd) read and write "
        "access to it and its directory, and start again"
    )


class JournalDamaged(StorageError):
    """The file is not a sound journal (SQLite says corrupt, a check failed, a row does not
    parse): the one fault that sets the file aside."""

    kind = "damaged"
    what = "the journal is damaged"
    hint = "move it aside (keep it for the record) and start again with an empty data directory"


_BY_ERRNO: dict[int, type[StorageError]] = {
    errno.ENOSPC: StorageFull,
    errno.EDQUOT: StorageFull,
    errno.EROFS: StorageReadOnly,
    errno.EACCES: StoragePermission,
    errno.EPERM: StoragePermission,
}
_BY_SQLITE: dict[int, type[StorageError]] = {
    _SQLITE_FULL: StorageFull,
    _SQLITE_IOERR: StorageIOError,
    _SQLITE_READONLY: StorageReadOnly,
    _SQLITE_PERM: StoragePermission,
    _SQLITE_AUTH: StoragePermission,
    _SQLITE_CORRUPT: JournalDamaged,
    _SQLITE_NOTADB: JournalDamaged,
}


def classify(exc: BaseException, path: str | Path) -> StorageError:
    """The typed error for an exception raised by SQLite or the OS on ``path``."""
    if isinstance(exc, StorageError):
        return exc
    if isinstance(exc, OSError):
        cls = _BY_ERRNO.get(exc.errno or 0, StorageIOError)
        return cls(path, exc.strerror or str(exc))
    code = getattr(exc, "sqlite_errorcode", None)
    name = getattr(exc, "sqlite_errorname", "") or type(exc).__name__
    detail = f"{name}: {exc}"
    if isinstance(code, int):
        primary = code & 0xFF
        if primary in _BY_SQLITE and not (primary == _SQLITE_IOERR and _fs_cause(path)):
            return _BY_SQLITE[primary](path, detail)
    # SQLite says only "unable to open" or "disk I/O error": the file system says why.
    return (_fs_cause(path) or StorageIOError)(path, detail)


def _fs_cause(path: str | Path) -> type[StorageError] | None:
    """What the file system says about ``path`` when SQLite's code is not specific."""
    p = Path(path)
    folder = p if p.is_dir() else p.parent
    try:
        st = os.statvfs(folder)
    except OSError:
        return None
    if st.f_flag & os.ST_RDONLY:
        return StorageReadOnly
    for target in (p, Path(f"{p}-wal"), folder):
        if target.exists() and not os.access(target, os.R_OK | os.W_OK):
            return StoragePermission
    if st.f_bavail == 0:
        return StorageFull
    return None


@dataclass(frozen=True)
class Space:
    """Free space on the journal's file system, and whether it is mounted read-only."""

    free_bytes: int
    read_only: bool


def free_space(path: str | Path) -> Space:
    """The free space where ``path`` lives (no write: a cheap, frequent check)."""
    st = os.statvfs(Path(path).parent)
    return Space(st.f_bavail * st.f_frsize, bool(st.f_flag & os.ST_RDONLY))


class SeqMark:
    """The highest committed ``seq``, in a small file beside the journal.

    SQLite keeps recent commits in its ``-wal`` file; a ``-wal`` lost or cut between runs
    takes those events with it, and without a mark kept elsewhere their seqs would be given
    again to new events. The mark is overwritten in place (its one block is already
    allocated, so it needs no free space) and written through (``O_DSYNC``) after each commit.
    """

    WIDTH = 20

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._fd: int | None = None

    def read(self) -> int | None:
        """The mark, or None when there is none (a first start, or the file was lost)."""
        try:
            text = self.path.read_text(encoding="ascii").strip()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise classify(exc, self.path) from exc
        return int(text) if text.isdigit() else None

    def write(self, seq: int) -> None:
        """Record ``seq`` as committed; raises a StorageError when it cannot."""
        try:
            if self._fd is None:
                flags = os.O_WRONLY | os.O_CREAT | os.O_DSYNC | os.O_CLOEXEC
                self._fd = os.open(self.path, flags, 0o640)
            line = f"{seq:>{self.WIDTH}}\n".encode("ascii")
            if os.pwrite(self._fd, line, 0) != len(line):
                raise OSError(errno.EIO, "short write")
        except OSError as exc:
            self.close()
            raise classify(exc, self.path) from exc

    def close(self) -> None:
        """Close the file (the mark stays)."""
        if self._fd is not None:
            fd, self._fd = self._fd, None
            with suppress(OSError):  # nothing left to write: the mark was written through
                os.close(fd)
