"""The bench's footing: a room run from bytecode compiled beforehand, as an installed room."""

from __future__ import annotations

import importlib.util
import subprocess
from pathlib import Path

from bench.infra import Broker, compile_sources, deps_floor_script, python_argv


def test_the_rooms_packages_are_compiled_where_the_import_system_looks(tmp_path: Path) -> None:
    sources = [tmp_path / "controller" / "daemon.py", tmp_path / "hw" / "vitals" / "nonin.py"]
    for path in sources:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("X = 1\n")
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "x.py").write_text("Y = 2\n")
    compile_sources(tmp_path)
    for path in sources:
        # The bytecode a room's import finds (and does not compile from source at its start).
        assert Path(importlib.util.cache_from_source(str(path))).is_file(), path
    # Only the room's packages: nothing else in the checkout is compiled.
    assert not Path(importlib.util.cache_from_source(str(tmp_path / "notes" / "x.py"))).exists()


def test_the_libraries_floor_runs_what_it_names_and_connects(tmp_path: Path) -> None:
    """The footprint's floor reference must really import and use the room's libraries (a
    broken script would print a floor of a bare interpreter)."""
    broker = Broker(tmp_path / "broker")
    broker.start()
    try:
        code = deps_floor_script(broker.port, 2.0) + (
            "import sys; mods = ('pydantic_core', 'gpiozero.pins.mock', 'serial', 'ssl')\n"
            "assert all(m in sys.modules for m in mods) and c.is_connected()\n"
        )
        done = subprocess.run(python_argv(code), capture_output=True, text=True, timeout=60)
    finally:
        broker.stop()
    assert done.returncode == 0, done.stderr
