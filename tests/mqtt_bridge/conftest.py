"""Fixtures of the MQTT bridge tests: the e2e room (real ``roomd --simulate``) is reused here."""

from __future__ import annotations

from tests.e2e.conftest import make_room

__all__ = ["make_room"]
