"""The oximeter and NIBP drivers by name: what ``[hardware.oximeter]`` and ``[hardware.nibp]``
``driver`` may say. Each driver module adds itself here when it is imported."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from controller.drivers import DriverSettings
from controller.ports import Clock, Nibp
from hw.drivers import DriverTable
from hw.vitals.common import OximeterDriver, OxReading


class OxEncoder(Protocol):
    """A simulated monitor's output: the inverse of its driver's parser."""

    def __call__(self, reading: OxReading, now: datetime) -> bytes:
        """One second of output showing ``reading`` at wall-clock time ``now``."""
        ...


@dataclass(frozen=True)
class OximeterEntry:
    """An oximeter driver and how to simulate its monitor (``None``: it cannot be)."""

    driver: type[OximeterDriver[Any]]
    encoder: Callable[[], OxEncoder] | None


class SimulatedDevice(Protocol):
    """A simulated serial device behind a pty (see ``hw.simulator``)."""

    @property
    def port_path(self) -> str:
        """The path its driver opens."""
        ...

    def incident(self, kind: str) -> None:
        """Apply a scripted incident."""
        ...

    def close(self) -> None:
        """Stop it and remove its pty."""
        ...


class NibpDriver(Nibp, Protocol):
    """An NIBP module's driver: the core's ``Nibp`` port, started and closed by the daemon."""

    def start(self) -> None:
        """Open the port and start reading."""
        ...

    def close(self) -> None:
        """Stop reading and close the port."""
        ...


@dataclass(frozen=True)
class NibpEntry:
    """An NIBP driver (``None``: no commandable module) and its simulated module, if any."""

    driver: Callable[..., NibpDriver] | None
    simulator: Callable[[Clock, Any], SimulatedDevice] | None


OXIMETERS: DriverTable[OximeterEntry] = DriverTable("oximeter")
NIBPS: DriverTable[NibpEntry] = DriverTable("nibp")


def add_oximeter(
    name: str,
    driver: type[OximeterDriver[Any]],
    *,
    encoder: Callable[[], OxEncoder] | None,
    settings: type[DriverSettings] | None = None,
) -> None:
    """Offer oximeter driver ``name``; ``encoder`` must be given (``None`` says: no simulator)."""
    OXIMETERS.add(name, OximeterEntry(driver, encoder), settings)


def add_nibp(
    name: str,
    driver: Callable[..., NibpDriver] | None,
    *,
    simulator: Callable[[Clock, Any], SimulatedDevice] | None,
    settings: type[DriverSettings] | None = None,
) -> None:
    """Offer NIBP driver ``name``; ``simulator`` must be given (``None``: no simulated module)."""
    NIBPS.add(name, NibpEntry(driver, simulator), settings)
