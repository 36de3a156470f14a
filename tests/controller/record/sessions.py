"""A whole music-mode session on the harness, the material of the record's tests."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from tests.controller.harness import Harness

SID = "s-001"
# (minutes after infusion start, sys, dia, hr) of the scheduled blood pressures
SCHEDULED = [(10, 130, 85, 80), (20, 126, 80, 76), (30, 122, 78, 74), (40, 118, 76, 70)]


def finish_nibp(h: Harness, sys: int, dia: int, hr: int) -> None:
    assert h.nibp.measuring, "a blood pressure was due"
    h.nibp.finish(sys, dia, hr)
    h.drain()


def run_music_session(h: Harness) -> None:
    """A whole music-mode session with a desaturation, a call and an override."""
    h.plan()
    h.ok("start_session")
    h.run(120)  # check_in
    h.ok("advance")
    h.run(300)  # integration
    h.ok("advance")
    h.run(180)  # intentions
    h.ok("advance")
    h.ok("confirm", item="readiness")
    h.ok("confirm", item="consent")
    h.ok("nibp_now")
    finish_nibp(h, 124, 79, 72)
    h.run(60)  # pre_infusion
    h.ok("advance")
    h.run(30)
    h.ok("start_infusion", override={"reason": "line checked by anaesthetist"})
    # 0-10 min: a short stretch of high SpO2 and slow pulse
    h.run(200)
    h.run(10, spo2=99, hr=58)
    h.run(390)
    finish_nibp(h, *SCHEDULED[0][1:])
    # 10-20 min: a desaturation, acknowledged 15 s after the alarm was raised
    h.run(300)
    h.run(10, spo2=86)
    assert h.events("alarm_raised")[-1]["alarm"]["code"] == "spo2_critical"
    h.run(15, spo2=86)
    h.ok("alarm_ack", alarm_id=h.events("alarm_raised")[-1]["alarm"]["id"])
    h.run(275)
    finish_nibp(h, *SCHEDULED[1][1:])
    # 20-30 min: the patient calls; acknowledged after 23 s, cleared 40 s later
    h.run(100)
    h.button.press()
    h.drain()
    h.run(23)
    h.ok("call_ack")
    h.run(40)
    h.ok("call_clear")
    h.run(437)
    finish_nibp(h, *SCHEDULED[2][1:])
    # 30-40 min: a fast pulse for a moment
    h.run(300)
    h.run(10, hr=112)
    h.run(290)
    finish_nibp(h, *SCHEDULED[3][1:])
    assert "infusion_completed" in h.types()
    h.run(120)
    h.audio.finish()
    h.drain()
    h.ok("advance")  # debrief; blood pressure still every 10 minutes
    h.run(480)
    finish_nibp(h, 116, 74, 68)
    h.run(420)
    h.ok("advance")  # preparation
    h.run(300)
    h.ok("advance")  # discharge: a blood pressure is requested on entry
    finish_nibp(h, 120, 78, 70)
    h.run(60)
    h.ready_to_leave()
    h.ok("discharge")


def times_of(session: dict[str, Any], type_: str, **match: Any) -> list[datetime]:
    """When the session's events of ``type_`` (with data matching ``match``) happened."""
    return [
        e.ts
        for e in session["events"]
        if e.type == type_ and all(e.data.get(k) == v for k, v in match.items())
    ]
