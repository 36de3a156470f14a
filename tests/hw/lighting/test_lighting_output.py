"""Light drivers by name: the core and the adapters agree, and a new light driver is one
dropped-in module the config can name."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import hw.lighting
from controller import drivers
from controller.config import parse_config
from hw.drivers import load_package
from hw.lighting import LIGHTS, make_lighting
from hw.lighting.curve import lightness_to_duty
from hw.lighting.output import NullOutput, makes_a_light


def test_the_core_and_the_adapters_agree_on_the_names() -> None:
    assert LIGHTS.names() == drivers.names("lighting") == ("dmx", "pwm", "rgb", "sysfs_pwm")


def test_a_light_is_one_three_or_four_channels() -> None:
    assert makes_a_light([7, 8, 9]) == [7, 8, 9]
    with pytest.raises(ValueError, match="got 2"):
        makes_a_light([1, 2])


def test_the_null_output_takes_every_write_and_knows_nothing() -> None:
    out = NullOutput()
    out.open()
    out.write([0.5])
    assert out.read_back() is None


RECORDER = '''
    """A light that records its duties (a stand-in for a new light driver)."""

    from __future__ import annotations

    from collections.abc import Sequence

    from controller.drivers import DriverSettings
    from hw.lighting.output import LIGHTS, OutputOptions

    WRITTEN: list[list[float]] = []


    class RecorderSettings(DriverSettings):
        gain: float = 1.0


    class RecorderOutput:
        layout = "mono"
        refresh_s = None

        def __init__(self, gain: float) -> None:
            self.gain = gain

        def open(self) -> None:
            pass

        def write(self, duties: Sequence[float]) -> None:
            WRITTEN.append([d * self.gain for d in duties])

        def read_back(self) -> list[float] | None:
            return None

        def close(self) -> None:
            pass


    def build(settings: RecorderSettings, options: OutputOptions) -> RecorderOutput:
        return RecorderOutput(settings.gain)


    LIGHTS.add("recorder", build, RecorderSettings)
'''


@pytest.fixture
def recorder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """``recorder.py`` dropped into hw/lighting/ (a directory added to the package's path)."""
    (tmp_path / "recorder.py").write_text(textwrap.dedent(RECORDER))
    monkeypatch.setattr(hw.lighting, "__path__", [*hw.lighting.__path__, str(tmp_path)])
    load_package(hw.lighting)
    yield sys.modules["hw.lighting.recorder"]
    LIGHTS.remove("recorder")
    sys.modules.pop("hw.lighting.recorder", None)


def test_a_new_light_driver_is_one_module(recorder: Any, room_clock: Any, emitted: Any) -> None:
    config = parse_config(
        {"room": {"id": "r"}, "hardware": {"lighting": {"driver": "recorder", "gain": 0.5}}}
    )
    lights = make_lighting(config.hardware.lighting, emitted, clock=room_clock, start=False)
    try:
        lights.set_scene("x", 1.0, None, 0)
        lights.step(room_clock.monotonic())
        assert recorder.WRITTEN[-1] == [pytest.approx(0.5 * lightness_to_duty(1.0))]
        assert emitted.statuses("lighting") == ["ok"]
    finally:
        lights.close()
