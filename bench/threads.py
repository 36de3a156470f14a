"""Per-thread CPU of a process, read from ``/proc/<pid>/task/*``, and the room's share of it.

Python 3.11 does not give its threads OS names, so a measured room runs under ``launcher()``:
a ``threading.setprofile`` hook copies each ``threading.Thread``'s name into the kernel's
``comm`` (15 bytes) as the thread starts, then removes itself. The
simulated devices' threads are named ``sim-…``; every other thread is the room's own.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass

from bench.infra import CLK_TCK

SIM_PREFIX = "sim-"
"""The thread names of the simulated devices that share the ``--simulate`` room's process."""

_NAMING_PRELUDE = """\
import sys, threading
def _name(name):
    with open(f"/proc/self/task/{threading.get_native_id()}/comm", "w") as fh:
        fh.write(name[:15])
def _name_me(frame, event, arg):
    sys.setprofile(None)
    _name(threading.current_thread().name)
threading.setprofile(_name_me)
_name("roomd-main")
"""
"""Names the OS threads by writing ``/proc/self/task/<tid>/comm`` (no import beyond what
the room loads anyway, so its RSS is not inflated)."""


def launcher(module: str) -> list[str]:
    """``python -c …`` that names the OS threads, then runs ``python -m <module>``'s argv."""
    code = (
        _NAMING_PRELUDE
        + f"import runpy; sys.argv[0] = {module!r}; "
        + f"runpy.run_module({module!r}, run_name='__main__', alter_sys=True)\n"
    )
    return [sys.executable, "-c", code]


@dataclass(frozen=True)
class ThreadTimes:
    """CPU seconds by thread name (threads of one name summed) at one instant."""

    by_name: dict[str, float]

    def room(self) -> float:
        """CPU seconds of the room's own threads (all but the simulators')."""
        return sum(v for k, v in self.by_name.items() if not k.startswith(SIM_PREFIX))

    def sims(self) -> float:
        """CPU seconds of the simulated devices' threads."""
        return sum(v for k, v in self.by_name.items() if k.startswith(SIM_PREFIX))


def thread_times(pid: int) -> ThreadTimes:
    """utime + stime of every live thread of ``pid``, by its ``comm``."""
    out: dict[str, float] = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/stat", encoding="ascii", errors="replace") as fh:
                stat = fh.read()
        except OSError:  # the thread ended between listdir and open
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / CLK_TCK
    return ThreadTimes(out)


def pct_by_name(before: ThreadTimes, after: ThreadTimes, wall_s: float) -> dict[str, float]:
    """% of one core each thread name used between two readings (a thread that ended during
    the window is not counted: it is gone from /proc)."""
    return {
        k: round(100.0 * (v - before.by_name.get(k, 0.0)) / wall_s, 3)
        for k, v in sorted(after.by_name.items())
    }


def share(before: ThreadTimes, after: ThreadTimes, wall_s: float) -> tuple[float, float]:
    """(room %, simulators %) of one core between two readings."""
    return (
        100.0 * (after.room() - before.room()) / wall_s,
        100.0 * (after.sims() - before.sims()) / wall_s,
    )
