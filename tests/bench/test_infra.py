"""The bench's footing: a room run from bytecode compiled beforehand, as an installed room."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from bench.infra import compile_sources


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
