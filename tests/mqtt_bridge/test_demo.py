"""``make demo``'s module: a smoke test only (the whole demo takes about a minute)."""

from __future__ import annotations

import inspect
import socket

from mqtt_bridge import demo


def test_free_port_is_a_bindable_loopback_port() -> None:
    port = demo.free_port()
    assert isinstance(port, int) and 1024 <= port <= 65535
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))
        s.listen()
        assert s.getsockname()[1] == port


def test_demo_pieces_exist() -> None:
    assert inspect.isclass(demo.Demo)
    for name in ("pump", "cmd", "wait", "sim"):
        assert callable(getattr(demo.Demo, name))
    assert callable(demo.script)
    assert list(inspect.signature(demo.script).parameters) == ["d"]
    assert callable(demo.main)


def test_demo_plan_is_a_valid_session_plan() -> None:
    from controller.models import SessionPlan
    from mqtt_bridge.topics import Topics

    plan = SessionPlan.model_validate(demo.PLAN)
    assert plan.music_mode == "music" and len(plan.playlist) == 6
    assert Topics("clinic", demo.ROOM).root == demo.ROOT
