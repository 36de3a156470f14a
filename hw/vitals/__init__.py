"""Vitals devices on serial ports: pulse oximeters and the NIBP module.

Importing this package imports every module in it, and each driver module registers its
drivers (``hw.vitals.registry``): a new protocol is one new module here. ``make_oximeter``
and ``make_nibp`` build the configured driver; the daemon calls ``start()`` on it and
``close()`` at shutdown. Drivers report only through the ``emit`` they are given.
"""

from __future__ import annotations

import sys
from typing import Any

from controller.config import NibpSection, OximeterSection
from controller.ports import Clock, Emit
from hw.drivers import load_package
from hw.vitals.common import OximeterDriver
from hw.vitals.registry import NIBPS, OXIMETERS, NibpDriver

load_package(sys.modules[__name__])


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
    driver = OXIMETERS[section.driver].driver
    return driver(path, section.baud, emit, clock, settings=section.driver_settings(), **kwargs)


def make_nibp(
    section: NibpSection,
    emit: Emit,
    clock: Clock,
    *,
    port: str | None = None,
    **kwargs: Any,
) -> NibpDriver | None:
    """The configured NIBP driver (not started); ``None`` for ``manual`` or no port."""
    path = port if port is not None else section.port
    driver = NIBPS[section.driver].driver
    if driver is None or not path:
        return None
    return driver(path, section.baud, emit, clock, settings=section.driver_settings(), **kwargs)


__all__ = ["NIBPS", "OXIMETERS", "OximeterDriver", "make_nibp", "make_oximeter"]
