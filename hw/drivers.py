"""The drivers of one kind an adapter package offers, by name (Klipper's habit: a module
registers itself when it is imported; the rest look it up by the name the config gives).

Adding a driver to a ``DriverTable`` also registers its name and settings model with the
core (``controller.drivers``), so a config may name it. A driver package imports all of its
modules with ``load_package``: a new driver is one new module in the package's directory.
"""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType
from typing import Generic, TypeVar

from controller import drivers
from controller.drivers import DriverSettings, UnknownDriver

T = TypeVar("T")


class DriverTable(Generic[T]):
    """Driver name → the entry that builds it, for one ``kind`` (``[hardware.<kind>]``)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}

    def add(self, name: str, entry: T, settings: type[DriverSettings] | None = None) -> None:
        """Offer driver ``name``, built from ``entry``; ``settings`` models its own keys."""
        drivers.register(self.kind, name, settings)
        self._entries[name] = entry

    def remove(self, name: str) -> None:
        """Withdraw driver ``name`` (a test's throwaway one)."""
        self._entries.pop(name, None)
        drivers.unregister(self.kind, name)

    def __getitem__(self, name: str) -> T:
        """The entry of driver ``name``; ``UnknownDriver`` says which names there are."""
        try:
            return self._entries[name]
        except KeyError:
            raise UnknownDriver(drivers.unknown_message(self.kind, name, self.names())) from None

    def names(self) -> tuple[str, ...]:
        """The drivers offered, sorted."""
        return tuple(sorted(self._entries))


def load_package(package: ModuleType) -> None:
    """Import every module of ``package`` (each driver module registers itself)."""
    for module in pkgutil.iter_modules(package.__path__, f"{package.__name__}."):
        importlib.import_module(module.name)
