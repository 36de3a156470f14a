"""What every light driver provides: an output that turns channel duties into light, built
by name from ``[hardware.lighting] driver`` and the driver's own keys."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from hw.drivers import DriverTable
from hw.lighting.curve import Layout, layout_for


class LightOutput(Protocol):
    """Hardware that turns channel duties into light. Faults raise ``OSError``."""

    layout: Layout
    refresh_s: float | None

    def open(self) -> None:
        """Make the output usable (again)."""

    def write(self, duties: Sequence[float]) -> None:
        """Set every channel's duty (0..1)."""

    def read_back(self) -> list[float] | None:
        """The duties the hardware holds now, or ``None`` if it cannot tell."""

    def close(self) -> None:
        """Release the output."""


class NullOutput:
    """No lights configured (e.g. DMX without a port): accepts and drops every write."""

    layout: Layout = "mono"
    refresh_s: float | None = None

    def open(self) -> None:
        """Nothing to open."""

    def write(self, duties: Sequence[float]) -> None:
        """Drop the write."""

    def read_back(self) -> list[float] | None:
        """Nothing to read."""
        return None

    def close(self) -> None:
        """Nothing to close."""


class Absent(Exception):
    """The driver's settings name no hardware to drive (e.g. DMX without a port)."""


@dataclass(frozen=True)
class OutputOptions:
    """What the daemon (or a test) hands every light driver: it takes what it needs."""

    pin_factory: Any = None
    """gpiozero's pin factory (a MockFactory under ``--simulate``)."""
    serial_factory: Callable[[str], Any] | None = None
    """Opens a serial port by name (a simulated adapter's pty)."""


BuildOutput = Callable[[Any, OutputOptions], LightOutput]
"""Build a driver's output from its settings (its registered model); may raise ``Absent``."""

LIGHTS: DriverTable[BuildOutput] = DriverTable("lighting")


def makes_a_light(channels: list[int]) -> list[int]:
    """``channels`` if there are 1, 3 (RGB) or 4 (RGBW) of them (a settings validator)."""
    layout_for(len(channels))
    return channels
