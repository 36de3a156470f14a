"""The music library: playlists, validation, durations, resume positions."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from audio.library import MusicLibrary, PlaylistError, Track, parse_m3u, position_at
from controller.errors import RoomError

from .conftest import tone_wav


@pytest.fixture
def lib(music: Path) -> Iterator[MusicLibrary]:
    tone_wav(music / "calm.wav", [(440.0, 2.0)])
    (music / "ocean").mkdir()
    for name in ("10 - end.wav", "2 - middle.wav", "1 - start.wav"):
        tone_wav(music / "ocean" / name, [(330.0, 0.5)])
    (music / "ocean" / "cover.jpg").write_bytes(b"\xff\xd8")
    library = MusicLibrary(music)
    yield library
    library.close()


def test_a_list_of_paths_resolves_to_tracks(lib: MusicLibrary, music: Path) -> None:
    tracks = lib.resolve_playlist(["calm.wav", "ocean/2 - middle.wav"])
    assert tracks[0] == Track("calm.wav", str((music / "calm.wav").resolve()), 2.0)
    assert tracks[1].name == "ocean/2 - middle.wav"
    assert tracks[1].duration_s == pytest.approx(0.5)


def test_a_folder_is_a_playlist_in_natural_order(lib: MusicLibrary) -> None:
    names = [t.name for t in lib.resolve_playlist("ocean")]
    assert names == ["ocean/1 - start.wav", "ocean/2 - middle.wav", "ocean/10 - end.wav"]
    assert lib.playlists() == ["ocean"]


def test_an_m3u_playlist(lib: MusicLibrary, music: Path) -> None:
    (music / "evening.m3u").write_bytes(
        "#EXTM3U\r\n#EXTINF:2,Calm\r\ncalm.wav\r\n\r\nocean\\1 - start.wav\r\n"
        f"file://{music.resolve()}/ocean/10%20-%20end.wav\r\n".encode("latin-1")
    )
    names = [t.name for t in lib.resolve_playlist("evening")]
    assert names == ["calm.wav", "ocean/1 - start.wav", "ocean/10 - end.wav"]
    assert "evening" in lib.playlists()


def test_m3u_entries_are_relative_to_the_m3u_and_latin1_is_accepted(tmp_path: Path) -> None:
    m3u = tmp_path / "x.m3u"
    m3u.write_bytes("# comment\nmus\xe9e.wav\n".encode("latin-1"))
    assert parse_m3u(m3u) == ["musée.wav"]


@pytest.mark.parametrize(
    ("entry", "words"),
    [
        ("missing.wav", "no such file"),
        ("../outside.wav", "'..'"),
        ("ocean/../../outside.wav", "'..'"),
        ("/etc/passwd", "outside music_dir"),
        ("ocean", "not a regular file"),
        ("ocean/cover.jpg", "not an audio file"),
        ("http://example.org/a.mp3", "only local files"),
    ],
)
def test_bad_entries_are_refused_by_name(lib: MusicLibrary, entry: str, words: str) -> None:
    with pytest.raises(PlaylistError) as err:
        lib.resolve_playlist(["calm.wav", entry])
    assert words in str(err.value)
    assert err.value.entry == entry
    assert isinstance(err.value, RoomError) and isinstance(err.value, ValueError)


def test_a_symlink_out_of_music_dir_is_refused(
    lib: MusicLibrary, music: Path, tmp_path: Path
) -> None:
    secret = tone_wav(tmp_path / "secret.wav", [(440.0, 0.2)])
    (music / "link.wav").symlink_to(secret)
    with pytest.raises(PlaylistError, match="outside music_dir"):
        lib.resolve_playlist(["link.wav"])


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every file")
def test_an_unreadable_file_is_refused(lib: MusicLibrary, music: Path) -> None:
    (music / "calm.wav").chmod(0)
    with pytest.raises(PlaylistError, match="not readable"):
        lib.resolve_playlist(["calm.wav"])


def test_unknown_and_empty_playlists(lib: MusicLibrary, music: Path, tmp_path: Path) -> None:
    with pytest.raises(PlaylistError, match="no playlist named 'jazz'"):
        lib.resolve_playlist("jazz")
    with pytest.raises(PlaylistError, match="empty"):
        lib.resolve_playlist([])
    with pytest.raises(PlaylistError, match="plain name"):
        lib.resolve_playlist("../etc")
    with pytest.raises(PlaylistError, match="does not exist"):
        MusicLibrary(tmp_path / "nowhere").resolve_playlist(["a.wav"])


def sox_ogg(path: Path, seconds: float, title: str | None = None) -> Path:
    """An Ogg Vorbis tone made by sox, with a title tag when given."""
    tag = ["--comment", f"Title={title}"] if title else []
    subprocess.run(
        [
            "sox",
            "-n",
            "-r",
            "44100",
            "-c",
            "2",
            *tag,
            str(path),
            "synth",
            str(seconds),
            "sine",
            "300",
        ],
        check=True,
        capture_output=True,
    )
    return path


def test_scan_reads_durations_wav_by_header_and_others_by_libvlc(
    lib: MusicLibrary, music: Path
) -> None:
    sox_ogg(music / "rain.ogg", 1.5)
    (music / "broken.mp3").write_bytes(b"not audio at all")
    durations = lib.scan()
    assert durations["calm.wav"] == pytest.approx(2.0)
    assert durations["ocean/10 - end.wav"] == pytest.approx(0.5)
    assert durations["rain.ogg"] == pytest.approx(1.5, abs=0.05)
    assert durations["broken.mp3"] is None
    assert "ocean/cover.jpg" not in durations
    assert lib.duration("rain.ogg") == durations["rain.ogg"]


def test_position_at() -> None:
    durations = [100.0, 200.0, 50.0]
    assert position_at(durations, 0) == (0, 0.0)
    assert position_at(durations, 99.5) == (0, 99.5)
    assert position_at(durations, 100.0) == (1, 0.0)
    assert position_at(durations, 250.0) == (1, 150.0)
    assert position_at(durations, 349.0) == (2, 49.0)
    assert position_at(durations, 350.0) == (3, 0.0)  # finished
    assert position_at([100.0, None, 50.0], 500.0) == (1, 400.0)  # unknown: assume inside
    assert position_at(durations, -5) == (0, 0.0)


def test_the_catalog_has_titles_durations_and_playlists(lib: MusicLibrary, music: Path) -> None:
    sox_ogg(music / "rain.ogg", 1.5, title="Rain on the Roof")
    (music / "evening.m3u").write_text("calm.wav\nrain.ogg\n")
    (music / "broken.m3u").write_text("calm.wav\ngone.ogg\n")
    assert lib.catalog() == {"tracks": [], "playlists": []}, "nothing before the first scan"
    lib.scan()
    catalog = lib.catalog()
    tracks = {t["path"]: t for t in catalog["tracks"]}
    assert tracks["rain.ogg"]["title"] == "Rain on the Roof"  # its tag
    assert tracks["calm.wav"]["title"] == "calm"  # no tag: the file's name
    assert tracks["rain.ogg"]["duration_s"] == pytest.approx(1.5, abs=0.05)
    playlists = {p["name"]: p for p in catalog["playlists"]}
    assert playlists["evening"]["tracks"] == ["calm.wav", "rain.ogg"]
    assert playlists["evening"]["duration_s"] == pytest.approx(3.5, abs=0.05)
    assert playlists["ocean"]["duration_s"] == pytest.approx(1.5)
    assert "broken" not in playlists  # a playlist naming a missing file is left out


def test_rescan_runs_off_the_callers_thread_and_finds_new_files(
    lib: MusicLibrary, music: Path
) -> None:
    lib.scan()
    sox_ogg(music / "later.ogg", 1.0, title="Later")
    assert lib.rescan() is True
    assert lib.wait_scanned(20), "the rescan never finished"
    assert {t["path"]: t["title"] for t in lib.catalog()["tracks"]}["later.ogg"] == "Later"
