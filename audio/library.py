"""The music library: tracks under ``music_dir``, playlists, durations, resume positions.

A *playlist* in a session plan is either a list of paths relative to ``music_dir`` or the name
of a playlist, which is an M3U file (``<name>.m3u`` / ``<name>.m3u8`` in ``music_dir``) or a
folder (``<name>/``: its audio files in natural order, ``2 - …`` before ``10 - …``).

Every track must exist, be a readable regular file, and lie inside ``music_dir`` once ``..``
and symlinks are resolved: a plan cannot make the room read ``/etc/shadow`` or a USB stick
mounted elsewhere. :class:`PlaylistError` names the bad entry; the core turns it into
``plan_rejected``.

Durations are read once at start-up (:meth:`MusicLibrary.scan`): WAV from its header, other
formats by libVLC's parser with a bounded timeout. They let a restarted room resume the
playlist where it was (:func:`position_at`) and place a preview a third of the way in.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import re
import threading
import time
import urllib.parse
import wave
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from controller.errors import RoomError

log = logging.getLogger(__name__)

AUDIO_EXTENSIONS = frozenset(
    {".mp3", ".flac", ".ogg", ".oga", ".opus", ".m4a", ".aac", ".wav", ".wma", ".aiff", ".aif"}
)
PLAYLIST_EXTENSIONS = (".m3u8", ".m3u")
PARSE_TIMEOUT_S = 2.0


class PlaylistError(RoomError, ValueError):
    """A playlist entry is missing, unreadable, outside ``music_dir`` or not understood."""

    def __init__(self, message: str, entry: str | None = None) -> None:
        self.entry = entry
        super().__init__(message)


@dataclass(frozen=True)
class Track:
    """One playable track: ``name`` is relative to ``music_dir`` (what events show)."""

    name: str
    path: str
    duration_s: float | None = None


def _natural_key(name: str) -> list[Any]:
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


def wav_duration(path: str | Path) -> float | None:
    """A WAV file's duration from its header, or ``None`` if it is not a WAV we can read."""
    try:
        with wave.open(str(path), "rb") as w:
            rate = w.getframerate()
            return w.getnframes() / rate if rate else None
    except (wave.Error, EOFError, OSError):
        return None


def vlc_duration(
    path: str | Path, instance: Any, timeout_s: float = PARSE_TIMEOUT_S
) -> float | None:
    """A media file's duration by libVLC's local parser, waiting at most ``timeout_s``."""
    return vlc_meta(path, instance, timeout_s)[0]


def vlc_meta(
    path: str | Path, instance: Any, timeout_s: float = PARSE_TIMEOUT_S
) -> tuple[float | None, str | None]:
    """A media file's duration and its title tag (``None`` when the file has none), by
    libVLC's local parser, waiting at most ``timeout_s``."""
    import vlc  # imported lazily: the package must import on a machine without libVLC

    media = instance.media_new_path(str(path))
    if media is None:
        return None, None
    try:
        media.parse_with_options(vlc.MediaParseFlag.local, int(timeout_s * 1000))
        deadline = time.monotonic() + timeout_s + 0.5
        # Poll rather than wait for MediaParsedChanged: no callback, nothing to hang.
        while media.get_parsed_status().value == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        if media.get_parsed_status().value != 4:  # 4 = done
            return None, None
        ms = media.get_duration()
        title = media.get_meta(vlc.Meta.Title)
        # Without a tag libVLC names the track after its file: that is no title.
        title = title.strip() if title and title != Path(path).name else None
        return (ms / 1000.0 if ms and ms > 0 else None), title or None
    finally:
        media.release()


def probe_duration(path: str | Path, instance: Any, timeout_s: float = 1.0) -> float | None:
    """A file's duration: WAV from its header, anything else by libVLC (``None`` if unknown)."""
    if str(path).lower().endswith(".wav"):
        duration = wav_duration(path)
        if duration is not None:
            return duration
    try:
        return vlc_duration(path, instance, timeout_s)
    except Exception as exc:  # libVLC missing or broken: a duration is a nicety
        log.warning("cannot parse %s with libVLC: %s", path, exc)
        return None


BASE_ARGS = ("--no-video", "--no-lua")


def vlc_options(
    section: Any, instance_args: Sequence[str] | None, null_output: bool
) -> tuple[list[str], dict[str, str]]:
    """libVLC options and the ALSA device per output for an ``[audio]`` section.

    ``vlc_args`` come first, then ``instance_args``. Without an ``--aout`` the output is ALSA
    (the config's device names are ALSA names). ``null_output`` (``--simulate``) sends both
    outputs to ALSA's ``null`` device unless ``vlc_args`` chose an output itself. Devices are
    dropped when the output module is not ALSA.
    """
    args = [*BASE_ARGS, *section.vlc_args, *(instance_args or [])]
    devices = {"headphones": section.headphones_device, "speakers": section.speakers_device}
    if not any(a.startswith("--aout") for a in section.vlc_args):
        if null_output:
            devices = {"headphones": "null", "speakers": "null"}
        if not any(a.startswith("--aout") for a in args):
            args.append("--aout=alsa")
    aouts = [a.split("=", 1)[-1] for a in args if a.startswith("--aout=")]
    if not aouts or aouts[-1] != "alsa":
        devices = {"headphones": "", "speakers": ""}
    return args, devices


def open_output(args: Sequence[str], device: str) -> tuple[Any, Any]:
    """A libVLC instance and media player that play to ALSA ``device`` ("" = default).

    The device is an instance option rather than ``audio_output_device_set()``: libVLC 3
    forgets a player's device when the player is stopped before it ever played.
    """
    import vlc

    options = [*args, f"--alsa-audio-device={device}"] if device else list(args)
    instance = vlc.Instance(options)
    if instance is None:
        raise RuntimeError(f"libVLC refused the options {options}")
    return instance, instance.media_player_new()


def _vsnprintf() -> Any:
    try:
        fn = ctypes.CDLL(ctypes.util.find_library("c") or None).vsnprintf
        fn.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_void_p]
        return fn
    except (OSError, AttributeError):  # no usable libc: report the bare format string
        return None


def watch_errors(instance: Any, on_error: Callable[[str, str], None]) -> Any:
    """Call ``on_error(module, message)`` for each error libVLC logs on ``instance``.

    Runs on libVLC's threads: ``on_error`` must only post and return (no libVLC calls).
    Returns the ctypes callback, which the caller must keep alive until ``log_unset``.
    libVLC hands over a C ``va_list``; libc's ``vsnprintf`` formats it (on x86-64, arm64 and
    armhf a ``va_list`` argument is passed as a pointer, so ``c_void_p`` carries it).
    """
    import vlc

    get_ctx = vlc.dll.libvlc_log_get_context
    get_ctx.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_char_p), ctypes.c_void_p]
    get_ctx.argtypes += [ctypes.c_void_p]
    get_ctx.restype = None
    vsnprintf = _vsnprintf()

    def on_log(_data: Any, level: int, ctx: Any, fmt: bytes, args: Any) -> None:
        if level < 4:  # LIBVLC_ERROR
            return
        try:
            module = ctypes.c_char_p()
            get_ctx(ctx, ctypes.byref(module), None, None)
            text = fmt or b""
            if vsnprintf is not None:
                buf = ctypes.create_string_buffer(256)
                vsnprintf(buf, 256, fmt, args)
                text = buf.value
            on_error(
                (module.value or b"").decode("ascii", "replace"), text.decode("utf-8", "replace")
            )
        except Exception:  # a log line is never worth breaking libVLC's thread
            pass

    callback = vlc.CallbackDecorators.LogCb(on_log)
    instance.log_set(callback, None)
    return callback


def position_at(durations: Sequence[float | None], elapsed_s: float) -> tuple[int, float]:
    """Where ``elapsed_s`` seconds of playback from the start of a playlist land.

    Returns ``(track_index, offset_s)``. ``(len(durations), 0.0)`` means the playlist has
    already finished. A track of unknown duration (``None``) is assumed to hold whatever
    time is left, so resuming lands inside it rather than skipping it.
    """
    remaining = max(0.0, elapsed_s)
    for index, duration in enumerate(durations):
        if duration is None or remaining < duration:
            return index, remaining
        remaining -= duration
    return len(durations), 0.0


class MusicLibrary:
    """The music under ``music_dir``: its tracks (with durations) and playlists."""

    def __init__(
        self,
        music_dir: str | Path,
        *,
        instance: Any = None,
        parse_timeout_s: float = PARSE_TIMEOUT_S,
    ) -> None:
        self.music_dir = Path(music_dir)
        self._instance = instance
        self._own_instance = False
        self._parse_timeout_s = parse_timeout_s
        self._durations: dict[str, float | None] = {}
        self._catalog: dict[str, list[dict[str, Any]]] = {"tracks": [], "playlists": []}
        self._scanning = threading.Lock()

    # --- start-up ---------------------------------------------------------------------------

    def scan(self) -> dict[str, float | None]:
        """Read every audio file's duration and title under ``music_dir``, and the named
        playlists (at start-up, and again on ``rescan``)."""
        root = self._root(must_exist=False)
        if root is None:
            log.warning("music_dir %s does not exist: no music", self.music_dir)
            self._durations, self._catalog = {}, {"tracks": [], "playlists": []}
            return {}
        found: dict[str, float | None] = {}
        tracks: list[dict[str, Any]] = []
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort(key=_natural_key)
            for filename in sorted(filenames, key=_natural_key):
                if Path(filename).suffix.lower() in AUDIO_EXTENSIONS:
                    full = Path(dirpath) / filename
                    name = full.relative_to(root).as_posix()
                    duration, title = self.probe_meta(full)
                    found[name] = duration
                    tracks.append({"path": name, "title": title or full.stem})
                    tracks[-1]["duration_s"] = None if duration is None else round(duration, 3)
        self._durations = found
        unknown = [name for name, d in found.items() if d is None]
        if unknown:
            log.warning("no duration for %d track(s), e.g. %s", len(unknown), unknown[0])
        # One assignment: a reader on another thread sees the old catalog or the new one.
        self._catalog = {"tracks": tracks, "playlists": self._scan_playlists()}
        return dict(found)

    def catalog(self) -> dict[str, list[dict[str, Any]]]:
        """The ``MusicLibrary`` port: as last scanned, ``tracks`` (``path``, ``title``,
        ``duration_s``) and named ``playlists`` (``name``, ``tracks``, ``duration_s``)."""
        return self._catalog

    def rescan(self) -> bool:
        """The ``MusicLibrary`` port: scan again on a thread of its own (returns at once);
        False when a scan is already under way."""
        if not self._scanning.acquire(blocking=False):
            return False

        def run() -> None:
            try:
                self.scan()
            except Exception:  # a failed rescan keeps the last catalog
                log.exception("rescanning %s failed", self.music_dir)
            finally:
                self._scanning.release()

        threading.Thread(target=run, name="library-scan", daemon=True).start()
        return True

    def wait_scanned(self, timeout_s: float) -> bool:
        """Wait at most ``timeout_s`` for a running rescan; False if it is still running."""
        if not self._scanning.acquire(timeout=timeout_s):
            return False
        self._scanning.release()
        return True

    def probe(self, path: str | Path) -> float | None:
        """One file's duration in seconds (``None`` if it cannot be read in time)."""
        wav = wav_duration(path) if str(path).lower().endswith(".wav") else None
        return wav if wav is not None else probe_duration(path, self._vlc(), self._parse_timeout_s)

    def probe_meta(self, path: str | Path) -> tuple[float | None, str | None]:
        """One file's duration (as ``probe``) and title tag (``None`` without one)."""
        try:
            duration, title = vlc_meta(path, self._vlc(), self._parse_timeout_s)
        except Exception as exc:  # libVLC missing or broken: a WAV header still gives a length
            log.warning("cannot parse %s with libVLC: %s", path, exc)
            duration, title = None, None
        if str(path).lower().endswith(".wav"):
            duration = wav_duration(path) or duration
        return duration, title

    def _scan_playlists(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for name in self.playlists():
            try:
                tracks = self.resolve_playlist(name)
            except PlaylistError as exc:
                log.warning("playlist %s left out of the library: %s", name, exc)
                continue
            durations = [t.duration_s for t in tracks]
            total = None if None in durations else round(sum(d or 0.0 for d in durations), 3)
            out.append({"name": name, "tracks": [t.name for t in tracks], "duration_s": total})
        return out

    def close(self) -> None:
        """Release the libVLC instance used for parsing, if this library made it."""
        if self._own_instance and self._instance is not None:
            self._instance.release()
        self._instance = None
        self._own_instance = False

    # --- queries ----------------------------------------------------------------------------

    @property
    def tracks(self) -> dict[str, float | None]:
        """Every scanned track (relative name → duration in seconds or ``None``)."""
        return dict(self._durations)

    def duration(self, name: str) -> float | None:
        """A track's duration by relative name (probed now if it was not scanned)."""
        if name in self._durations:
            return self._durations[name]
        path = self.music_dir / name
        return self.probe(path) if path.is_file() else None

    def playlists(self) -> list[str]:
        """The names of the playlists: M3U files and folders directly under ``music_dir``."""
        root = self._root(must_exist=False)
        if root is None:
            return []
        names = set()
        for entry in root.iterdir():
            if entry.is_dir() and not entry.name.startswith("."):
                names.add(entry.name)
            elif entry.suffix.lower() in PLAYLIST_EXTENSIONS:
                names.add(entry.stem)
        return sorted(names, key=_natural_key)

    def resolve(self, playlist: Sequence[str] | str) -> list[str]:
        """The ``MusicLibrary`` port: the playlist's track names, each checked."""
        return [track.name for track in self.resolve_playlist(playlist)]

    def resolve_playlist(self, playlist: Sequence[str] | str) -> list[Track]:
        """The tracks of a plan's playlist, each checked; raise PlaylistError naming the bad one."""
        root = self._root(must_exist=True)
        assert root is not None
        if isinstance(playlist, str):
            entries = self._named_playlist(root, playlist)
        else:
            entries = [(entry, root) for entry in playlist]
        if not entries:
            raise PlaylistError("playlist is empty", None)
        return [self._track(root, entry, base) for entry, base in entries]

    # --- internals --------------------------------------------------------------------------

    def _vlc(self) -> Any:
        if self._instance is None:
            import vlc

            self._instance = vlc.Instance(["--no-video", "--quiet", "--no-lua"])
            self._own_instance = True
        return self._instance

    def _root(self, *, must_exist: bool) -> Path | None:
        root = self.music_dir.resolve()
        if not root.is_dir():
            if must_exist:
                raise PlaylistError(f"music_dir {self.music_dir} does not exist", None)
            return None
        return root

    def _named_playlist(self, root: Path, name: str) -> list[tuple[str, Path]]:
        if not name or "/" in name or "\\" in name or name in (".", ".."):
            raise PlaylistError(f"playlist name {name!r} is not a plain name", name)
        for ext in PLAYLIST_EXTENSIONS:
            m3u = root / f"{name}{ext}"
            if m3u.is_file():
                return [(entry, m3u.parent) for entry in parse_m3u(m3u)]
        folder = root / name
        if folder.is_dir():
            files = [
                p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS
            ]
            files.sort(key=lambda p: _natural_key(p.name))
            return [(p.relative_to(root).as_posix(), root) for p in files]
        raise PlaylistError(f"no playlist named {name!r} (no {name}.m3u and no folder)", name)

    def _track(self, root: Path, entry: str, base: Path) -> Track:
        if not entry or "\x00" in entry:
            raise PlaylistError(f"playlist entry {entry!r} is empty or malformed", entry)
        if entry.startswith("file://"):
            entry = urllib.parse.unquote(urllib.parse.urlparse(entry).path)
        elif "://" in entry:
            raise PlaylistError(f"{entry}: only local files can be played", entry)
        candidate = Path(entry)
        if ".." in candidate.parts:
            raise PlaylistError(f"{entry}: '..' is not allowed in a playlist entry", entry)
        full = candidate if candidate.is_absolute() else base / candidate
        real = full.resolve()
        if not real.is_relative_to(root):
            raise PlaylistError(f"{entry}: outside music_dir {self.music_dir}", entry)
        if not real.exists():
            raise PlaylistError(f"{entry}: no such file in music_dir", entry)
        if not real.is_file():
            raise PlaylistError(f"{entry}: not a regular file", entry)
        if not os.access(real, os.R_OK):
            raise PlaylistError(f"{entry}: not readable by the room", entry)
        if real.suffix.lower() not in AUDIO_EXTENSIONS:
            raise PlaylistError(
                f"{entry}: not an audio file ({real.suffix or 'no extension'})", entry
            )
        name = real.relative_to(root).as_posix()
        duration = self._durations[name] if name in self._durations else self.probe(real)
        return Track(name=name, path=str(real), duration_s=duration)


def parse_m3u(path: str | Path) -> list[str]:
    """The entries of an M3U/M3U8 file (comments and ``#EXT`` lines dropped, in order).

    ``.m3u8`` is UTF-8; plain ``.m3u`` is tried as UTF-8, then Latin-1 (what older players
    wrote). Windows backslashes become slashes.
    """
    raw = Path(path).read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        if str(path).lower().endswith(".m3u8"):
            raise PlaylistError(f"{Path(path).name}: not valid UTF-8", str(path)) from None
        text = raw.decode("latin-1")
    entries = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        entries.append(line.replace("\\", "/"))
    return entries
