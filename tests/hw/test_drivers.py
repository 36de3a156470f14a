"""Driver tables: adding a driver registers it with the core; a package loads every module."""

from __future__ import annotations

import sys
import types
from collections.abc import Iterator
from pathlib import Path

import pytest

from controller import drivers
from controller.drivers import DriverSettings, UnknownDriver
from hw.drivers import DriverTable, load_package


class Speed(DriverSettings):
    rpm: int = 60


@pytest.fixture
def table() -> Iterator[DriverTable[str]]:
    t: DriverTable[str] = DriverTable("test_fans")
    yield t
    for name in t.names():
        t.remove(name)


def test_adding_a_driver_registers_its_name_and_settings_with_the_core(
    table: DriverTable[str],
) -> None:
    table.add("quiet", "builds a quiet fan", Speed)
    table.add("loud", "builds a loud fan")
    assert table["quiet"] == "builds a quiet fan"
    assert table.names() == drivers.names("test_fans") == ("loud", "quiet")
    assert drivers.settings_model("test_fans", "quiet") is Speed
    table.remove("loud")
    assert drivers.names("test_fans") == ("quiet",)


def test_an_unknown_driver_names_the_ones_there_are(table: DriverTable[str]) -> None:
    table.add("quiet", "q")
    with pytest.raises(UnknownDriver, match=r"did you mean 'quiet'.*test_fans drivers are quiet"):
        table["quite"]


def test_load_package_imports_every_module_dropped_in(tmp_path: Path) -> None:
    package = tmp_path / "fans"
    package.mkdir()
    for name in ("first", "second"):
        (package / f"{name}.py").write_text(f"LOADED = {name!r}\n")
    module = types.ModuleType("fans")
    module.__path__ = [str(package)]
    sys.modules["fans"] = module
    try:
        load_package(module)
        assert sys.modules["fans.first"].LOADED == "first"
        assert sys.modules["fans.second"].LOADED == "second"
    finally:
        for name in ("fans", "fans.first", "fans.second"):
            sys.modules.pop(name, None)
