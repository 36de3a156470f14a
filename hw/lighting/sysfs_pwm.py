"""Kernel hardware PWM channels under ``/sys/class/pwm``: the ``sysfs_pwm`` light driver."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, Field, NonNegativeInt

from controller.drivers import DriverSettings
from hw.lighting.curve import Layout, layout_for
from hw.lighting.output import LIGHTS, OutputOptions, makes_a_light


class SysfsPwmSettings(DriverSettings):
    """``sysfs_pwm``: the PWM chip and its channels (one, or RGB / RGBW in that order)."""

    pwm_chip: str = "/sys/class/pwm/pwmchip0"
    channels: Annotated[list[NonNegativeInt], AfterValidator(makes_a_light)] = Field(
        default_factory=lambda: [0]
    )


class SysfsPwmOutput:
    """Kernel hardware PWM channels under ``/sys/class/pwm/pwmchipN`` (``chip``).

    Hardware PWM has no software jitter, so it holds the dimmest levels steady. The channels
    stay enabled at their duty when roomd stops, and a restart reads them back.
    """

    refresh_s: float | None = None

    def __init__(
        self,
        chip: str | Path,
        channels: Sequence[int],
        *,
        period_ns: int = 400_000,
        export_timeout_s: float = 2.0,
    ) -> None:
        self.chip = Path(chip)
        self.channels = list(channels)
        self.layout: Layout = layout_for(len(self.channels))
        # 2.5 kHz: above the IEEE 1789 no-effect flicker limit for full-depth modulation.
        self.period_ns = period_ns
        self.export_timeout_s = export_timeout_s

    @staticmethod
    def _read_int(path: Path) -> int:
        try:
            return int(path.read_text().strip() or 0)
        except ValueError:
            return 0

    def open(self) -> None:
        """Export and configure each channel, keeping the duty it already has."""
        for ch in self.channels:
            d = self.chip / f"pwm{ch}"
            if not d.is_dir():
                (self.chip / "export").write_text(f"{ch}\n")
                # The kernel creates pwmN asynchronously and udev then fixes its permissions.
                deadline = time.monotonic() + self.export_timeout_s
                while not (d / "duty_cycle").exists():
                    if time.monotonic() >= deadline:
                        raise OSError(f"{d} did not appear after export")
                    time.sleep(0.005)
            period = self._read_int(d / "period")
            if period != self.period_ns:
                duty = self._read_int(d / "duty_cycle")
                fraction = duty / period if period > 0 else 0.0
                if duty > self.period_ns:  # the kernel refuses a period shorter than the duty
                    (d / "duty_cycle").write_text("0\n")
                (d / "period").write_text(f"{self.period_ns}\n")
                (d / "duty_cycle").write_text(f"{round(fraction * self.period_ns)}\n")
            if (d / "enable").read_text().strip() != "1":
                (d / "enable").write_text("1\n")

    def write(self, duties: Sequence[float]) -> None:
        """Set each channel's duty cycle in nanoseconds."""
        for ch, duty in zip(self.channels, duties, strict=True):
            ns = round(max(0.0, min(1.0, duty)) * self.period_ns)
            (self.chip / f"pwm{ch}" / "duty_cycle").write_text(f"{ns}\n")

    def read_back(self) -> list[float] | None:
        """Each channel's duty as a fraction of its period."""
        out = []
        for ch in self.channels:
            d = self.chip / f"pwm{ch}"
            period = self._read_int(d / "period")
            on = (d / "enable").read_text().strip() == "1"
            out.append(self._read_int(d / "duty_cycle") / period if on and period else 0.0)
        return out

    def close(self) -> None:
        """Leave the channels as they are: the room stays lit across a restart."""


def _build(settings: SysfsPwmSettings, options: OutputOptions) -> SysfsPwmOutput:
    return SysfsPwmOutput(settings.pwm_chip, settings.channels)


LIGHTS.add("sysfs_pwm", _build, SysfsPwmSettings)
