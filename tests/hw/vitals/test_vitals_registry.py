"""Oximeter and NIBP drivers by name: every protocol brings its simulated monitor, the core
and the adapters agree on the names, and a new protocol is one dropped-in module."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from conftest import Inbox

import hw.vitals
from controller import drivers
from controller.clock import FakeClock
from controller.config import parse_config
from controller.errors import ConfigError
from controller.events import VitalsArrived
from hw.drivers import load_package
from hw.simulator import SimulatedPatient, simulated_oximeter
from hw.vitals import make_oximeter
from hw.vitals.common import OxReading
from hw.vitals.registry import NIBPS, OXIMETERS

NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def test_the_core_and_the_adapters_agree_on_the_names() -> None:
    assert {"masimo_ascii", "nonin_ascii", "nonin_df2", "nonin_df7"} <= set(OXIMETERS.names())
    assert {"suntech", "manual"} <= set(NIBPS.names())
    assert drivers.names("oximeter") == OXIMETERS.names()
    assert drivers.names("nibp") == NIBPS.names()


@pytest.mark.parametrize("name", OXIMETERS.names())
def test_every_oximeter_driver_reads_its_own_simulated_monitor(name: str) -> None:
    entry = OXIMETERS[name]
    if entry.encoder is None:
        pytest.skip(f"{name} declares no simulated monitor")  # said so when it registered
    parser = entry.driver("/dev/null", 9600, print, FakeClock()).parser  # not started
    encode = entry.encoder()
    [*_, ok] = parser.feed(encode(OxReading(spo2=97, hr=72, pi=3.2, quality="ok"), NOW))
    assert (ok.spo2, ok.hr, ok.quality) == (97, 72, "ok") and ok.pi in (None, 3.2)
    [*_, off] = parser.feed(encode(OxReading(None, None, None, "sensor_off"), NOW))
    assert off.spo2 is None and off.hr is None and off.quality != "ok"
    assert parser.bad_frames == 0


def test_every_nibp_driver_with_a_module_can_be_simulated() -> None:
    for name in NIBPS.names():
        entry = NIBPS[name]
        assert (entry.driver is None) == (entry.simulator is None), name


# --- a new protocol: one module, nothing else touched ----------------------------------------

ACME = '''
    """ACME pulse oximeters: ``<prefix> SPO2 HR`` lines, ``-`` for no value."""

    from __future__ import annotations

    from datetime import datetime

    from controller.drivers import DriverSettings
    from hw.vitals.common import LineParser, OximeterDriver, OxReading
    from hw.vitals.registry import add_oximeter


    class AcmeSettings(DriverSettings):
        prefix: str = "ACME"


    class AcmeSpo2(OximeterDriver[LineParser]):
        source = "acme_spo2"

        def _make_parser(self) -> LineParser:
            assert isinstance(self.settings, AcmeSettings)
            prefix = self.settings.prefix

            def parse(line: str) -> OxReading | None:
                head, _, rest = line.partition(" ")
                values = rest.split()
                if head != prefix or len(values) != 2:
                    return None
                spo2, hr = (None if v == "-" else int(v) for v in values)
                return OxReading(spo2, hr, None, "ok" if spo2 else "sensor_off")

            return LineParser(parse, 64)


    def encode(reading: OxReading, now: datetime) -> bytes:
        spo2, hr = ("-" if v is None else str(v) for v in (reading.spo2, reading.hr))
        return f"ACME {spo2} {hr}\\r\\n".encode()


    add_oximeter("acme_spo2", AcmeSpo2, encoder=lambda: encode, settings=AcmeSettings)
'''


@pytest.fixture
def acme(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """``acme_spo2.py`` dropped into hw/vitals/ (a directory added to the package's path)."""
    (tmp_path / "acme_spo2.py").write_text(textwrap.dedent(ACME))
    monkeypatch.setattr(hw.vitals, "__path__", [*hw.vitals.__path__, str(tmp_path)])
    load_package(hw.vitals)  # what importing hw.vitals does
    yield "acme_spo2"
    OXIMETERS.remove("acme_spo2")
    sys.modules.pop("hw.vitals.acme_spo2", None)


def oximeter_config(section: dict[str, Any]) -> Any:
    return parse_config({"room": {"id": "r"}, "hardware": {"oximeter": section}})


def test_a_new_protocol_is_one_module(acme: str, inbox: Inbox) -> None:
    # The config names it, with its own key, and checks that key.
    section = oximeter_config({"driver": acme, "prefix": "ACME"}).hardware.oximeter
    with pytest.raises(ConfigError, match=r"hardware\.oximeter\.prefx: unknown key .*'prefix'"):
        oximeter_config({"driver": acme, "prefx": "ACME"})
    # The simulator finds its monitor; the real driver reads it through a pty.
    clock = FakeClock()
    sim = simulated_oximeter(acme, clock, SimulatedPatient(clock, seed=4), 0.02)
    assert sim is not None
    driver = make_oximeter(section, inbox.emit, clock, port=sim.port_path)
    assert driver is not None
    try:
        driver.start()
        sample = inbox.wait_for(lambda m: isinstance(m, VitalsArrived)).sample
        assert sample.source == acme and sample.quality == "ok"
        assert sample.spo2 is not None and 96 <= sample.spo2 <= 99
    finally:
        driver.close()
        sim.close()
