"""The operating-system side: clock synchronisation watch and journald log lines."""

from __future__ import annotations


def test_clock_watch_reports_only_changes() -> None:
    from controller.events import ClockSync
    from controller.system import ClockWatch

    answers = iter([None, None, False, False, True])
    got: list[object] = []
    watch = ClockWatch(got.append, check=lambda: next(answers))
    for _ in range(5):
        watch.poll()
    assert got == [ClockSync(None), ClockSync(False), ClockSync(True)]


def test_journald_lines_carry_the_priority_for_journalctl() -> None:
    import logging

    from controller.system import JournaldFormatter

    fmt = JournaldFormatter("%(name)s: %(message)s")
    record = logging.LogRecord("roomd.link", logging.WARNING, __file__, 1, "lost\nagain", (), None)
    assert fmt.format(record) == "<4>roomd.link: lost\n<4>  again"
    record = logging.LogRecord("roomd", logging.INFO, __file__, 1, "ready", (), None)
    assert fmt.format(record) == "<6>roomd: ready"


def test_clock_synchronised_reads_timedatectl(monkeypatch) -> None:
    import subprocess

    from controller import system

    monkeypatch.setattr(system.Path, "exists", lambda self: False)

    def fake_run(cmd, **kw):  # type: ignore[no-untyped-def]
        return subprocess.CompletedProcess(cmd, 0, stdout="no\n", stderr="")

    monkeypatch.setattr(system.subprocess, "run", fake_run)
    assert system.clock_synchronised() is False

    def missing(cmd, **kw):  # type: ignore[no-untyped-def]
        raise FileNotFoundError("timedatectl")

    monkeypatch.setattr(system.subprocess, "run", missing)
    assert system.clock_synchronised() is None
