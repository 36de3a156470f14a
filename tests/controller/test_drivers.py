"""The driver registry: names and settings models by kind, a loader run once, clear refusals."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from controller import drivers
from controller.drivers import DriverSettings, UnknownDriver

KIND = "test_kind"


class Widths(DriverSettings):
    width: int = 3


@pytest.fixture
def registered() -> Iterator[None]:
    drivers.register(KIND, "alpha", Widths)
    drivers.register(KIND, "beta")
    yield
    for name in ("alpha", "beta"):
        drivers.unregister(KIND, name)


def test_names_and_settings_models_by_kind(registered: None) -> None:
    assert drivers.names(KIND) == ("alpha", "beta")
    assert drivers.settings_model(KIND, "alpha") is Widths
    assert drivers.settings_model(KIND, "beta") is DriverSettings  # no keys of its own
    drivers.unregister(KIND, "beta")
    assert drivers.names(KIND) == ("alpha",)


def test_an_unknown_name_says_which_names_exist(registered: None) -> None:
    with pytest.raises(UnknownDriver) as info:
        drivers.settings_model(KIND, "alfa")
    assert str(info.value) == (
        "unknown test_kind driver (did you mean 'alpha'?); test_kind drivers are alpha, beta"
    )
    with pytest.raises(UnknownDriver, match="no empty_kind drivers are registered"):
        drivers.settings_model("empty_kind", "alpha")


def test_a_name_registered_twice_or_bad_settings_are_refused(registered: None) -> None:
    with pytest.raises(ValueError, match="test_kind driver 'alpha' is registered twice"):
        drivers.register(KIND, "alpha")
    with pytest.raises(TypeError, match="settings must subclass DriverSettings"):
        drivers.register(KIND, "gamma", int)  # type: ignore[arg-type]
    assert drivers.names(KIND) == ("alpha", "beta")


def test_the_loader_runs_once_before_the_first_look_up(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(drivers, "_loader", None)
    calls: list[str] = []

    def load() -> None:
        calls.append("load")
        drivers.register(KIND, "late")

    drivers.use_loader(load)
    try:
        assert calls == []  # nothing is imported until a name is needed
        assert drivers.names(KIND) == ("late",)
        assert drivers.settings_model(KIND, "late") is DriverSettings
        assert calls == ["load"]
    finally:
        drivers.unregister(KIND, "late")


def test_driver_settings_are_frozen_and_refuse_unknown_keys() -> None:
    with pytest.raises(ValueError, match="widht\n  Extra inputs are not permitted"):
        Widths.model_validate({"widht": 4})
    widths = Widths()
    with pytest.raises(ValueError):
        widths.width = 5  # type: ignore[misc]
