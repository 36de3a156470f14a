"""FakeLink: records what the room publishes and acknowledges events as a broker would."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from controller.events import EventDelivered
from controller.models import Alarm, Event, NibpReading, Reply, RoomState, VitalsSample
from mqtt_bridge.fake import FakeLink

TS = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)


def ev(seq: int, type_: str = "phase_changed") -> Event:
    return Event(seq=seq, ts=TS, session_id="s-1", type=type_, data={"n": seq})


def test_events_are_recorded_in_order_and_auto_acked_through_emit() -> None:
    inbox: list[Any] = []
    link = FakeLink(inbox.append)
    link.publish_event(ev(1, "session_started"))
    link.publish_event(ev(2, "phase_changed"))
    link.publish_event(ev(3, "confirmed"))
    assert [e.seq for e in link.events] == [1, 2, 3]
    assert link.types() == ["session_started", "phase_changed", "confirmed"]
    assert inbox == [EventDelivered(1), EventDelivered(2), EventDelivered(3)]


def test_auto_ack_can_be_turned_off_and_on() -> None:
    inbox: list[Any] = []
    link = FakeLink(inbox.append, auto_ack=False)
    link.publish_event(ev(1))
    assert inbox == [] and len(link.events) == 1
    link.auto_ack = True
    link.publish_event(ev(2))
    assert inbox == [EventDelivered(2)]


def test_without_emit_events_are_still_recorded() -> None:
    link = FakeLink()
    link.publish_event(ev(5))
    assert link.types() == ["phase_changed"]


def test_only_events_are_acknowledged() -> None:
    inbox: list[Any] = []
    link = FakeLink(inbox.append)
    link.publish_state(RoomState(room_id="r", updated_at=TS))
    link.publish_vitals(VitalsSample(ts=TS, spo2=97, hr=60, source="masimo_ascii"))
    link.publish_nibp(NibpReading(ts=TS, sys=120, dia=80, map=93, source="manual", by="dr"))
    link.publish_alarms([])
    link.publish_reply(Reply(request_id="x", verb="status", ok=True, result={}), None, None)
    assert inbox == []


def test_every_publication_is_recorded() -> None:
    link = FakeLink()
    state = RoomState(room_id="r", phase="check_in", updated_at=TS)
    sample = VitalsSample(ts=TS, spo2=None, hr=80, source="nonin_ascii", quality="searching")
    reading = NibpReading(ts=TS, sys=140, dia=90, map=107, source="suntech")
    alarm = Alarm(
        id="a1",
        code="hr_high",
        kind="physiological",
        priority="medium",
        state="latched",
        raised_at=TS,
        message="HR high",
    )
    reply = Reply(request_id="q", verb="status", ok=True, result={"a": 1})
    link.publish_state(state)
    link.publish_vitals(sample)
    link.publish_nibp(reading)
    alarms = [alarm]
    link.publish_alarms(alarms)
    alarms.clear()  # the fake keeps its own copy of the list
    link.publish_alarms([])
    link.publish_reply(reply, "resp/t", b"corr")
    link.publish_reply(reply, None, None)
    assert link.states == [state]
    assert link.vitals == [sample]
    assert link.nibp == [reading]
    assert link.alarms == [[alarm], []]
    assert link.replies == [(reply, "resp/t", b"corr"), (reply, None, None)]
    assert link.events == [] and link.types() == []
