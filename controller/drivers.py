"""The drivers the adapters offer, by kind and name: what a config may name.

The core lists no driver. Each driver module registers itself when it is imported
(``register("oximeter", "nonin_df2")``), with the model of its own settings if it has any
beyond the keys its section shares; ``controller.config`` looks names and models up here.
The composition root makes sure the adapters are loaded before a config is read: it hands
the registry a loader (``use_loader``), called once, before the first look-up.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable

from pydantic import BaseModel, ConfigDict


class DriverSettings(BaseModel):
    """A driver's own settings (none by default): frozen, unknown keys refused."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class UnknownDriver(LookupError):
    """A driver name nobody registered; the message says which names exist."""


_registry: dict[str, dict[str, type[DriverSettings]]] = {}
_loader: Callable[[], None] | None = None


def use_loader(load: Callable[[], None]) -> None:
    """Have ``load`` (which imports the adapters) run once, before the next look-up."""
    global _loader
    _loader = load


def _load() -> None:
    global _loader
    load, _loader = _loader, None
    if load is not None:
        load()


def register(kind: str, name: str, settings_model: type[DriverSettings] | None = None) -> None:
    """Offer driver ``name`` of ``kind`` (a ``[hardware.<kind>]`` section), with its settings."""
    model = settings_model or DriverSettings
    if not issubclass(model, DriverSettings):
        raise TypeError(f"{kind} driver {name!r}: settings must subclass DriverSettings")
    drivers = _registry.setdefault(kind, {})
    if name in drivers:
        raise ValueError(f"{kind} driver {name!r} is registered twice")
    drivers[name] = model


def unregister(kind: str, name: str) -> None:
    """Withdraw a driver (a test's throwaway one)."""
    _registry.get(kind, {}).pop(name, None)


def names(kind: str) -> tuple[str, ...]:
    """The registered driver names of ``kind``, sorted."""
    _load()
    return tuple(sorted(_registry.get(kind, {})))


def settings_model(kind: str, name: str) -> type[DriverSettings]:
    """The model of driver ``name``'s own settings; ``UnknownDriver`` says which names exist."""
    known = names(kind)
    if name not in known:
        raise UnknownDriver(unknown_message(kind, name, known))
    return _registry[kind][name]


def unknown_message(kind: str, name: str, known: tuple[str, ...]) -> str:
    """Why ``name`` is not a driver of ``kind``: a close name, and every name there is."""
    if not known:
        # Only a program that reads a config without loading the adapters gets here.
        return f"no {kind} drivers are registered (the hardware adapters were not loaded)"
    close = difflib.get_close_matches(name, known, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return f"unknown {kind} driver{hint}; {kind} drivers are {', '.join(known)}"
