"""The ``sysfs_pwm`` driver: kernel PWM channels in a temp dir standing in for sysfs."""

from __future__ import annotations

import os
import select
import threading
from pathlib import Path
from typing import Any

import pytest

from controller.config import LightingSection
from hw.lighting import make_lighting
from hw.lighting.curve import lightness_to_duty
from hw.lighting.fader import Lighting
from hw.lighting.sysfs_pwm import SysfsPwmOutput

WAIT = 5.0


class FakeKernel:
    """A pwmchip directory whose ``export`` is a FIFO: writing N creates ``pwmN/``."""

    def __init__(self, root: Path) -> None:
        self.chip = root / "pwmchip0"
        self.chip.mkdir()
        (self.chip / "npwm").write_text("2\n")
        os.mkfifo(self.chip / "export")
        self.exported: list[int] = []
        self._stop_r, self._stop_w = os.pipe()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def channel(self, n: int, period: int = 0, duty: int = 0, enable: int = 0) -> Path:
        tmp = self.chip / f".pwm{n}"
        tmp.mkdir()
        for name, value in (("period", period), ("duty_cycle", duty), ("enable", enable)):
            (tmp / name).write_text(f"{value}\n")
        return tmp.rename(self.chip / f"pwm{n}")  # all attributes appear at once, as in sysfs

    def _serve(self) -> None:
        # Non-blocking open: a reader is there before any writer, and stop() can end it.
        fd = os.open(self.chip / "export", os.O_RDONLY | os.O_NONBLOCK)
        data = b""
        try:
            while True:
                ready, _, _ = select.select([fd, self._stop_r], [], [])
                if self._stop_r in ready:
                    return
                chunk = os.read(fd, 64)
                if not chunk:  # the writer closed: the export is complete
                    break
                data += chunk
        finally:
            os.close(fd)
        self.exported.append(int(data))
        self.channel(int(data))

    def stop(self) -> None:
        os.write(self._stop_w, b"x")
        self._thread.join(WAIT)
        os.close(self._stop_r)
        os.close(self._stop_w)


@pytest.fixture
def kernel(tmp_path: Path) -> Any:
    k = FakeKernel(tmp_path)
    yield k
    k.stop()


def read(path: Path) -> str:
    return path.read_text().strip()


def test_sysfs_pwm_exports_configures_and_writes(
    kernel: Any, room_clock: Any, emitted: Any
) -> None:
    section = LightingSection(driver="sysfs_pwm", pwm_chip=str(kernel.chip), channels=[0])
    lights = make_lighting(section, emitted, clock=room_clock, start=False)
    pwm0 = kernel.chip / "pwm0"
    assert kernel.exported == [0]
    assert (read(pwm0 / "period"), read(pwm0 / "enable")) == ("400000", "1")
    lights.set_scene("x", 0.5, None, 0)
    lights.step(room_clock.monotonic())
    assert read(pwm0 / "duty_cycle") == str(round(lightness_to_duty(0.5) * 400_000))
    lights.set_scene("y", 0.001, None, 0)
    lights.step(room_clock.monotonic())
    # 0.1 % lightness is 44 ns of a 400 µs period: hardware PWM still resolves it.
    assert read(pwm0 / "duty_cycle") == "44"
    lights.close()
    assert read(pwm0 / "enable") == "1"  # the room stays lit across a restart
    assert emitted.statuses("lighting") == ["ok"]


def test_sysfs_pwm_reads_back_and_fades_from_there(kernel: Any, room_clock: Any) -> None:
    # No export: the channel survives from a previous run.
    kernel.channel(0, period=1_000_000, duty=500_000, enable=1)
    out = SysfsPwmOutput(kernel.chip, [0])
    lights = Lighting(out, lambda _m: None, clock=room_clock, start=False)
    assert read(kernel.chip / "pwm0" / "period") == "400000"
    assert read(kernel.chip / "pwm0" / "duty_cycle") == "200000"  # same fraction, new period
    lights.set_scene("down", 0.0, None, 10.0)
    lights.step(room_clock.monotonic())
    # The fade starts where the light was (≈ 76 % lightness), not from black.
    assert int(read(kernel.chip / "pwm0" / "duty_cycle")) == pytest.approx(200_000, rel=0.001)


def test_sysfs_pwm_missing_chip_is_lost_not_raised(tmp_path: Path, emitted: Any) -> None:
    lights = Lighting(SysfsPwmOutput(tmp_path / "nochip", [0]), emitted, start=False)
    lights.set_scene("x", 1.0, None, 0)  # must not raise
    assert emitted.statuses("lighting") == ["lost"]
