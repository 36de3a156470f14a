"""The fake and stand-in music players report tracks like the real one."""

from __future__ import annotations

import pytest

from audio.fake import FakeAudioPlayer, FakeLibrary
from controller.events import AudioFailed, PlaylistEnded, TrackEnded, TrackStarted

BOTH = ("headphones", "speakers")


def test_playlist_timeline_and_end() -> None:
    got: list[object] = []
    player = FakeAudioPlayer(got.append)
    player.play(["a", "b"])
    player.finish_track(100.0)
    player.finish()
    assert got == [
        TrackStarted("a", BOTH),
        TrackEnded("a", 100.0),
        TrackStarted("b", BOTH),
        TrackEnded("b", 300.0),
        PlaylistEnded(),
    ]
    assert not player.playing


def test_resume_starts_at_the_given_track() -> None:
    got: list[object] = []
    player = FakeAudioPlayer(got.append)
    player.play(["a", "b", "c"], start_index=2, offset_s=40.0)
    assert got == [TrackStarted("c", BOTH)]
    assert player.calls[-1] == ("play", (["a", "b", "c"], 2, 40.0))


def test_duck_volume_and_failure() -> None:
    got: list[object] = []
    player = FakeAudioPlayer(got.append)
    player.duck(True)
    player.set_volume("speakers", 0.2)
    player.fail("speakers", "gone")
    assert player.ducked and player.volumes == {"speakers": 0.2}
    assert got == [AudioFailed("speakers", "gone")]


def test_library_refuses_missing_tracks_by_name() -> None:
    library = FakeLibrary(missing=["b.ogg"])
    assert library.resolve("a.ogg") == ["a.ogg"]
    with pytest.raises(ValueError, match=r"b\.ogg"):
        library.resolve(["a.ogg", "b.ogg"])
