"""Vitals devices on serial ports: pulse oximeters and the NIBP module.

``make_oximeter`` and ``make_nibp`` build the configured driver; the daemon calls ``start()``
on it and ``close()`` at shutdown. Drivers report only through the ``emit`` they are given.
"""

from __future__ import annotations

from typing import Any

from controller.config import NibpSection, OximeterSection
from controller.ports import Clock, Emit
from hw.vitals.common import OximeterDriver
from hw.vitals.masimo import MasimoAscii
from hw.vitals.nonin import NoninAscii, NoninDf2, NoninDf7
from hw.vitals.suntech import SuntechNibp

OXIMETER_DRIVERS: dict[str, type[OximeterDriver[Any]]] = {
    "masimo_ascii": MasimoAscii,
    "nonin_ascii": NoninAscii,
    "nonin_df2": NoninDf2,
    "nonin_df7": NoninDf7,
}
"""Config ``[hardware.oximeter] driver`` name → driver class."""


def make_oximeter(
    section: OximeterSection,
    emit: Emit,
    clock: Clock,
    *,
    port: str | None = None,
    **kwargs: Any,
) -> OximeterDriver[Any] | None:
    """The configured oximeter driver (not started), or ``None`` when no port is set.

    ``port`` overrides the section's (the simulator's pty under ``--simulate``).
    """
    path = port if port is not None else section.port
    if not path:
        return None
    return OXIMETER_DRIVERS[section.driver](path, section.baud, emit, clock, **kwargs)


def make_nibp(
    section: NibpSection,
    emit: Emit,
    clock: Clock,
    *,
    port: str | None = None,
    **kwargs: Any,
) -> SuntechNibp | None:
    """The configured NIBP driver (not started); ``None`` for ``manual`` or no port."""
    path = port if port is not None else section.port
    if section.driver == "manual" or not path:
        return None
    return SuntechNibp(path, section.baud, emit, clock, **kwargs)


__all__ = [
    "OXIMETER_DRIVERS",
    "MasimoAscii",
    "NoninAscii",
    "NoninDf2",
    "NoninDf7",
    "OximeterDriver",
    "SuntechNibp",
    "make_nibp",
    "make_oximeter",
]
