"""The room's outputs alone: the lights, the music, and the local buzzer."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from audio.fake import FakeAudioPlayer, FakeLibrary
from controller.calls import Calls
from controller.errors import DeviceUnavailable, InvalidPayload, InvalidState
from controller.models import Command
from controller.models import Lights as LightsCommand
from controller.models import Music as MusicCommand
from controller.outputs import PREVIEW_PHASES, Annunciation, Lights, Music
from controller.phases import PHASES
from controller.plans import Plans
from hw.fake import FakeAnnunciator, FakeCallButton, FakeLighting
from tests.controller.bench import Bench
from tests.controller.harness import ALL_OK

TRACKS = ["a.ogg", "b.ogg", "c.ogg"]


class Outputs:
    """Lights, music and the buzzer on a bench, each on its fake device."""

    def __init__(
        self,
        data_dir: Path,
        *,
        devices: dict[str, str] | None = None,
        lighting: bool = True,
        audio: bool = True,
        library: FakeLibrary | None = None,
    ) -> None:
        self.b = b = Bench(data_dir, devices=ALL_OK if devices is None else devices)
        self.lighting = FakeLighting()
        self.audio = FakeAudioPlayer(b.inbox.append)
        self.buzzer = FakeAnnunciator()
        self.lamp = FakeCallButton(b.inbox.append)
        self.plans = Plans(
            config=b.config, journal=b.journal, log=b.log, session=b.facts,
            library=library or FakeLibrary(),
        )  # fmt: skip
        self.lights = Lights(
            config=b.config, log=b.log, session=b.facts, health=b.health,
            lighting=self.lighting if lighting else None,
        )  # fmt: skip
        self.music = Music(
            config=b.config, clock=b.clock, log=b.log, session=b.facts, health=b.health,
            plans=self.plans, audio=self.audio if audio else None,
        )  # fmt: skip
        self.calls = Calls(log=b.log, timers=b.timers, session=b.facts, lamp=self.lamp, audio=None)
        self.buzz = Annunciation(
            log=b.log, alarms=b.alarms, calls=self.calls, annunciator=self.buzzer
        )
        b.folds += [self.lights.apply, self.music.apply, self.calls.apply]

    def lights_cmd(self, **args: Any) -> dict[str, Any]:
        return self.lights.command(LightsCommand(request_id="r", by="rn-kim", **args))

    def music_cmd(self, action: str, **args: Any) -> dict[str, Any]:
        return self.music.command(MusicCommand(request_id="r", by="rn-kim", action=action, **args))

    def playing(self, tracks: Sequence[str] = TRACKS) -> None:
        """A session with ``tracks`` whose music was started."""
        self.b.start_session(tracks=list(tracks))
        self.music.start("dr-lee")

    def track_started(self, track: str) -> None:
        self.music.on_track_started(track, ("headphones", "speakers"))


@pytest.fixture
def out(tmp_path: Path) -> Iterator[Outputs]:
    o = Outputs(tmp_path)
    yield o
    o.b.close()


def refused(out: Outputs, error: type[Exception], match: str, run: Any) -> None:
    """``run`` raises ``error`` matching ``match`` and journals nothing."""
    before = out.b.journal.last_seq
    with pytest.raises(error, match=re.escape(match)):
        run()
    assert out.b.journal.last_seq == before


# --- lights -------------------------------------------------------------------------------------


def test_show_sets_the_configured_scene_and_records_it(out: Outputs) -> None:
    scene = out.b.config.hardware.lighting.scenes["infusion"]
    out.lights.show("infusion", "dr-lee")
    assert out.lighting.calls == [("infusion", scene.level, scene.colour, scene.fade_s)]
    assert out.b.events("lighting_changed") == [
        {"scene": "infusion", "level": scene.level, "fade_s": scene.fade_s, "by": "dr-lee"}
    ]
    assert (out.lights.scene, out.lights.level) == ("infusion", scene.level)


def test_show_with_a_fade_of_its_own(out: Outputs) -> None:
    out.lights.show("emergency", "dr-lee", fade_s=0.0)
    assert out.lighting.calls[-1][3] == 0.0
    out.lights.show("debrief", "dr-lee", fade_s=2.5)
    assert out.lighting.calls[-1][3] == 2.5


def test_show_phase_shows_the_phases_scene(out: Outputs) -> None:
    out.lights.show_phase("pre_infusion", "dr-lee")
    assert out.lighting.calls[-1][0] == "pre_infusion"
    assert out.lights.scene == "pre_infusion"


def test_an_emergency_holds_the_lights(out: Outputs) -> None:
    out.b.start_session()
    out.b.log.emit("emergency", {"reason": "r", "by": "x"})
    out.lights.show("emergency", "x", fade_s=0)
    out.lights.show_phase("integration", "dr-lee")
    assert out.lighting.calls[-1][0] == "emergency"
    assert out.lights.scene == "emergency"
    # The session's end lifts it (the facts reset).
    out.b.log.emit("session_ended", {"reason": "r", "by": "x"})
    out.lights.show_phase("check_in", "x")
    assert out.lights.scene == "check_in"


def test_without_lights_the_scene_is_still_recorded(tmp_path: Path) -> None:
    out = Outputs(tmp_path, lighting=False)
    out.lights.show("discharge", "x")
    assert out.lights.scene == "discharge"
    out.lights.restore()  # no lights: nothing to do, no error
    out.b.close()


def test_lights_command_a_scene(out: Outputs) -> None:
    scene = out.b.config.hardware.lighting.scenes["debrief"]
    assert out.lights_cmd(scene="debrief") == {"scene": "debrief", "level": scene.level}
    assert out.lighting.calls[-1] == ("debrief", scene.level, scene.colour, scene.fade_s)
    assert out.b.events("lighting_changed")[-1]["by"] == "rn-kim"


def test_lights_command_a_level_keeps_the_phases_colour(out: Outputs) -> None:
    out.b.start_session()
    base = out.b.config.hardware.lighting.scenes["check_in"]
    assert out.lights_cmd(level=0.9, fade_s=3) == {"scene": "manual", "level": 0.9}
    assert out.lighting.calls[-1] == ("manual", 0.9, base.colour, 3)
    assert (out.lights.scene, out.lights.level) == ("manual", 0.9)


def test_lights_command_errors(out: Outputs) -> None:
    scenes = ", ".join(out.b.config.hardware.lighting.scenes)
    refused(
        out,
        InvalidPayload,
        f"field 'scene': unknown scene 'disco'; scenes are {scenes}",
        lambda: out.lights_cmd(scene="disco"),
    )
    refused(out, InvalidPayload, "'scene' or 'level'", lambda: out.lights_cmd())
    assert out.lighting.calls == []


def test_lost_lights_are_device_unavailable(tmp_path: Path) -> None:
    out = Outputs(tmp_path, devices={**ALL_OK, "lighting": "lost"})
    refused(out, DeviceUnavailable, "lights", lambda: out.lights_cmd(level=0.5))
    assert out.lighting.calls == []
    out.b.close()


def test_no_lights_is_device_unavailable(tmp_path: Path) -> None:
    out = Outputs(tmp_path, lighting=False)
    refused(out, DeviceUnavailable, "lights", lambda: out.lights_cmd(scene="idle"))
    out.b.close()


def test_restore_shows_the_recorded_scene_at_once(out: Outputs) -> None:
    scenes = out.b.config.hardware.lighting.scenes
    out.lights.show("infusion", "x")
    out.lights.restore()
    assert out.lighting.calls[-1] == (
        "infusion",
        scenes["infusion"].level,
        scenes["infusion"].colour,
        0.0,
    )
    out.b.start_session()
    out.b.enter("debrief")
    out.lights_cmd(level=0.2)
    out.lights.restore()
    assert out.lighting.calls[-1] == ("manual", 0.2, scenes["debrief"].colour, 0.0)


def test_a_new_room_restores_idle_at_level_zero(out: Outputs) -> None:
    out.lights.restore()
    assert out.lighting.calls == [
        ("idle", 0.0, out.b.config.hardware.lighting.scenes["idle"].colour, 0.0)
    ]


# --- music --------------------------------------------------------------------------------------


def test_start_plays_the_sessions_tracks(out: Outputs) -> None:
    out.playing()
    assert out.audio.calls == [("play", (TRACKS, 0, 0.0))]
    assert out.b.events("music_started") == [{"playlist": TRACKS, "by": "dr-lee"}]
    assert out.music.playing and out.music.started


def test_stop_records_only_what_played(out: Outputs) -> None:
    out.b.start_session(tracks=TRACKS)
    out.music.stop("phase_changed")
    assert out.audio.calls == [("stop", (True,))], "the player is told anyway"
    assert out.b.events("music_stopped") == []
    out.music.start("x")
    out.music.stop("emergency", fade=False, by="dr-lee")
    assert out.audio.calls[-1] == ("stop", (False,))
    assert out.b.events("music_stopped") == [{"reason": "emergency", "by": "dr-lee"}]
    assert not out.music.playing and out.music.track is None


@pytest.mark.parametrize(
    ("action", "event"),
    [("pause", "music_paused"), ("resume", "music_resumed"), ("skip", "music_skipped")],
)
def test_transport_actions_while_playing(out: Outputs, action: str, event: str) -> None:
    out.playing()
    assert out.music_cmd(action) == {"action": action}
    assert out.audio.calls[-1] == (action, ())
    assert out.b.events(event) == [{"by": "rn-kim"}]


@pytest.mark.parametrize("action", ["pause", "resume", "skip"])
def test_transport_actions_refused_when_nothing_plays(out: Outputs, action: str) -> None:
    out.b.start_session(tracks=TRACKS)
    refused(
        out, InvalidState, f"Can't {action}: no music is playing", lambda: out.music_cmd(action)
    )
    assert out.audio.calls == []


def test_play_and_its_refusals(out: Outputs) -> None:
    out.b.start_session(tracks=[])
    refused(out, InvalidState, "no playlist", lambda: out.music_cmd("play"))
    out.b.start_session(session_id="s-002", tracks=TRACKS)
    out.music_cmd("play")
    assert out.b.events("music_started") == [{"playlist": TRACKS, "by": "rn-kim"}]
    refused(out, InvalidState, "already playing", lambda: out.music_cmd("play"))


def test_stop_command(out: Outputs) -> None:
    out.playing()
    out.music_cmd("stop")
    assert out.b.events("music_stopped") == [{"reason": "stopped", "by": "rn-kim"}]


@pytest.mark.parametrize("phase", PREVIEW_PHASES)
def test_preview_in_the_preview_phases(out: Outputs, phase: str) -> None:
    out.b.start_session()
    out.b.enter(phase)  # type: ignore[arg-type]
    out.music_cmd("preview", track="a.ogg", offset_s=12)
    preview_s = out.b.config.audio.preview_s
    assert out.audio.calls == [("preview", ("a.ogg", 12, preview_s))]
    assert out.b.events("preview_started") == [
        {"track": "a.ogg", "offset_s": 12, "duration_s": preview_s}
    ]


@pytest.mark.parametrize("phase", [p for p in PHASES if p not in PREVIEW_PHASES])
def test_preview_refused_outside_them(out: Outputs, phase: str) -> None:
    out.b.start_session()
    out.b.enter(phase)  # type: ignore[arg-type]
    refused(
        out,
        InvalidState,
        f"Can't preview music while in {phase}",
        lambda: out.music_cmd("preview", track="a.ogg"),
    )
    assert out.audio.calls == []


def test_preview_resolves_the_track_through_plans(tmp_path: Path) -> None:
    class Shelf(FakeLibrary):
        def resolve(self, playlist: Sequence[str] | str) -> list[str]:
            return [f"/music/{t}" for t in super().resolve(playlist)]

    out = Outputs(tmp_path, library=Shelf(missing=["gone.ogg"]))
    out.b.start_session()
    out.music_cmd("preview", track="a.ogg", duration_s=5)
    assert out.audio.calls == [("preview", ("/music/a.ogg", None, 5))]
    assert out.b.events("preview_started")[-1]["track"] == "a.ogg"
    refused(
        out,
        InvalidPayload,
        "field 'track': missing music file 'gone.ogg'",
        lambda: out.music_cmd("preview", track="gone.ogg"),
    )
    refused(out, InvalidPayload, "field 'track'", lambda: out.music_cmd("preview"))
    assert len(out.audio.calls) == 1
    out.b.close()


@pytest.mark.parametrize(
    ("output", "headphones", "speakers"),
    [("headphones", 0.25, 0.4), ("speakers", 0.6, 0.25), ("both", 0.25, 0.25)],
)
def test_volume(out: Outputs, output: str, headphones: float, speakers: float) -> None:
    audio = out.b.config.audio
    assert (out.music.headphones_volume, out.music.speakers_volume) == (
        audio.headphones_volume,
        audio.speakers_volume,
    )
    assert (audio.headphones_volume, audio.speakers_volume) == (0.6, 0.4)
    out.music_cmd("volume", output=output, level=0.25)
    assert out.audio.calls == [("set_volume", (output, 0.25))]
    assert out.b.events("volume_changed") == [{"output": output, "level": 0.25, "by": "rn-kim"}]
    assert (out.music.headphones_volume, out.music.speakers_volume) == (headphones, speakers)


def test_volume_needs_a_level(out: Outputs) -> None:
    refused(out, InvalidPayload, "field 'level'", lambda: out.music_cmd("volume"))


def test_volumes_return_to_the_configured_ones_with_a_new_session(out: Outputs) -> None:
    out.b.start_session()
    out.music_cmd("volume", output="both", level=0.1)
    out.b.start_session(session_id="s-002")
    assert out.music.headphones_volume == out.b.config.audio.headphones_volume


@pytest.mark.parametrize(("devices", "audio"), [({**ALL_OK, "audio": "lost"}, True), (None, False)])
def test_music_without_audio_is_device_unavailable(
    tmp_path: Path, devices: dict[str, str] | None, audio: bool
) -> None:
    out = Outputs(tmp_path, devices=devices, audio=audio)
    out.b.start_session()
    refused(out, DeviceUnavailable, "no audio output", lambda: out.music_cmd("play"))
    out.b.close()


def test_without_a_player_start_does_nothing(tmp_path: Path) -> None:
    out = Outputs(tmp_path, audio=False)
    out.playing()
    assert out.b.events("music_started") == []
    assert not out.music.playing
    out.b.close()


def test_tracks_are_followed_by_name(out: Outputs) -> None:
    out.playing()
    out.track_started("a.ogg")
    assert (out.music.track, out.music.track_index) == ("a.ogg", 0)
    out.b.clock.advance(200)
    out.music.on_track_ended("a.ogg", 200.0)
    assert out.music.track is None
    assert out.b.events("track_ended") == [{"track": "a.ogg", "played_s": 200.0}]
    out.track_started("c.ogg")  # b.ogg was skipped
    assert (out.music.track, out.music.track_index) == ("c.ogg", 2)
    assert out.b.events("track_started")[-1] == {
        "track": "c.ogg",
        "outputs": ["headphones", "speakers"],
    }


def test_the_same_name_later_in_the_playlist_is_the_next_one(out: Outputs) -> None:
    out.playing(["x.ogg", "y.ogg", "x.ogg"])
    out.track_started("x.ogg")
    out.track_started("y.ogg")
    out.track_started("x.ogg")
    assert out.music.track_index == 2


def test_a_track_not_in_the_playlist_counts_as_the_next(out: Outputs) -> None:
    out.playing()
    out.track_started("a.ogg")
    out.track_started("guidance/breathing.ogg")
    assert out.music.track_index == 1


def test_position_and_restore_after_a_resume(out: Outputs) -> None:
    out.playing()
    assert out.music.position() == (0, 0.0)
    out.track_started("a.ogg")
    out.b.clock.advance(300)
    out.track_started("b.ogg")
    out.b.clock.advance(42)
    assert out.music.position() == (1, 42.0)
    # The restarted player reports the same track again: it keeps its first start.
    out.audio.calls.clear()
    out.music.restore()
    assert out.audio.calls == [("play", (TRACKS, 1, 42.0))]
    out.track_started("b.ogg")
    out.b.clock.advance(8)
    assert out.music.position() == (1, 50.0)


def test_restore_plays_nothing_when_nothing_played(out: Outputs) -> None:
    out.b.start_session(tracks=TRACKS)
    out.music.restore()
    out.playing()
    out.music.stop("stopped")
    out.audio.calls.clear()
    out.music.restore()
    assert out.audio.calls == []


def test_restore_plays_nothing_past_the_playlist(out: Outputs) -> None:
    out.playing(["a.ogg"])
    out.track_started("a.ogg")
    out.track_started("extra.ogg")  # index 1: past a one-track playlist
    out.audio.calls.clear()
    out.music.restore()
    assert out.audio.calls == []


def test_playlist_ended_stops_the_music_once(out: Outputs) -> None:
    out.music.on_playlist_ended()
    assert out.b.events("music_stopped") == []
    out.playing()
    out.music.on_playlist_ended()
    out.music.on_playlist_ended()
    assert out.b.events("music_stopped") == [{"reason": "playlist_ended"}]
    assert out.music.playlist_ended and not out.music.playing
    out.music.start("x")
    assert not out.music.playlist_ended, "a new start plays the list again"


def test_a_new_session_forgets_the_last_ones_music(out: Outputs) -> None:
    out.playing()
    out.track_started("b.ogg")
    out.b.log.emit("session_ended", {"reason": "r", "by": "x"})
    assert (out.music.playing, out.music.started, out.music.track) == (False, False, None)
    assert out.music.position() == (0, 0.0)


# --- annunciation -------------------------------------------------------------------------------


def _alarm(out: Outputs, code: str, priority: str) -> None:
    out.b.alarms.raise_now(code, kind="technical", priority=priority, message=code)  # type: ignore[arg-type]


def test_online_nothing_sounds(out: Outputs) -> None:
    _alarm(out, "emergency", "high")
    out.calls.place()
    out.buzz.update()
    assert out.buzzer.history == []
    assert out.buzz.pattern == "off"


@pytest.mark.parametrize("priority", ["medium", "low"])
def test_offline_an_alarm_sounds_at_its_priority(out: Outputs, priority: str) -> None:
    out.b.log.link_down()
    _alarm(out, "x", priority)
    out.buzz.update()
    assert out.buzzer.history == [priority]


def test_offline_high_before_a_call_before_medium(out: Outputs) -> None:
    out.b.log.link_down()
    _alarm(out, "nibp_failed", "low")
    _alarm(out, "sensor_off", "medium")
    out.calls.place()
    out.buzz.update()
    assert out.buzzer.pattern == "call"
    _alarm(out, "spo2_critical", "high")
    out.buzz.update()
    assert out.buzzer.pattern == "high"
    out.b.alarms.clear("spo2_critical")
    out.buzz.update()
    assert out.buzzer.pattern == "call"
    out.calls.acknowledge(Command(request_id="r", by="x"))
    out.buzz.update()
    assert out.buzzer.pattern == "medium", "an acknowledged call no longer waits"
    out.b.alarms.clear("sensor_off")
    out.buzz.update()
    assert out.buzzer.pattern == "low"
    assert out.buzzer.history == ["call", "high", "call", "medium", "low"]


def test_the_buzzer_is_told_only_of_changes(out: Outputs) -> None:
    out.b.log.link_down()
    _alarm(out, "x", "medium")
    for _ in range(3):
        out.buzz.update()
    assert out.buzzer.history == ["medium"]


def test_reconnecting_silences_the_room(out: Outputs) -> None:
    out.b.log.link_down()
    out.calls.place()
    out.buzz.update()
    out.b.log.link_up([], None)
    out.buzz.update()
    assert out.buzzer.history == ["call", "off"]


def test_silenced_and_acknowledged_alarms_do_not_sound(out: Outputs) -> None:
    out.b.log.link_down()
    _alarm(out, "x", "medium")
    out.b.alarms.silence(60, "rn-kim")
    out.buzz.update()
    assert out.buzzer.history == []
    out.b.clock.advance(61)
    out.buzz.update()
    assert out.buzzer.history == ["medium"]
    out.b.alarms.acknowledge(out.b.alarms.alarms["x"].id, "rn-kim")
    out.buzz.update()
    assert out.buzzer.history == ["medium", "off"]


def test_no_annunciator_no_error(out: Outputs) -> None:
    quiet = Annunciation(log=out.b.log, alarms=out.b.alarms, calls=out.calls, annunciator=None)
    out.b.log.link_down()
    _alarm(out, "x", "high")
    quiet.update()
    assert quiet.pattern == "off"


def test_restarted_track_keeps_its_first_start_time(out: Outputs) -> None:
    out.playing()
    out.track_started("a.ogg")
    first = out.music.track_started_at
    out.b.clock.advance(30)
    out.track_started("a.ogg")
    assert out.music.track_started_at == first
    assert out.music.track_index == 0
    assert first == out.b.clock.now() - timedelta(seconds=30)
