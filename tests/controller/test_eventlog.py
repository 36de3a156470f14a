"""The event log alone: journal first, fold, publish; the outbox after a reconnect; state."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from controller.clock import FakeClock
from controller.eventlog import EVENTS_REPLY_BUDGET, RESEND_BATCH, EventLog
from controller.journal import Journal
from controller.models import (
    MAX_PAYLOAD_BYTES,
    Alarm,
    Event,
    EventsQuery,
    NibpReading,
    Reply,
    RoomState,
    VitalsSample,
)
from mqtt_bridge.fake import FakeLink

HEARTBEAT_S = 10.0


class Log:
    """An event log on a real journal, the fake link (no acknowledgements) and a fake clock."""

    def __init__(self, data_dir: Path) -> None:
        self.clock = FakeClock()
        self.journal = Journal(data_dir / "journal.sqlite")
        self.link = FakeLink(auto_ack=False)
        self.folded: list[Event] = []
        self.log = EventLog(self.journal, self.clock, self.link, heartbeat_s=HEARTBEAT_S)
        self.session_id: str | None = None
        self.log.wire(self.folded.append, lambda: self.session_id)
        self.states = 0  # how often the state was built
        self.alarm_lists = 0

    def state(self) -> RoomState:
        self.states += 1
        return RoomState(room_id="room-1", updated_at=self.clock.now())

    def alarms(self) -> list[Alarm]:
        self.alarm_lists += 1
        return []

    def publish_state(self) -> None:
        self.log.publish_state(self.state, self.alarms)

    def emit_n(self, n: int, type_: str = "note") -> None:
        for i in range(n):
            self.log.emit(type_, {"i": i})

    def published(self) -> list[int]:
        return [e.seq for e in self.link.events]


@pytest.fixture
def t(tmp_path: Path) -> Iterator[Log]:
    log = Log(tmp_path)
    yield log
    log.journal.close()


def online(t: Log) -> Log:
    t.log.link_up([], None)
    return t


# --- emit -------------------------------------------------------------------------------------


def test_emit_journals_folds_then_publishes(t: Log) -> None:
    online(t)
    seen: list[tuple[bool, int]] = []

    class Watching(FakeLink):
        def publish_event(self, event: Event) -> None:
            in_journal = t.journal.events_since(event.seq, 1) == [event]
            seen.append((in_journal, len(t.folded)))
            super().publish_event(event)

    link = Watching(auto_ack=False)
    t.log._link = link  # the same log, a link that looks at the journal when it publishes
    event = t.log.emit("phase_changed", {"to": "check_in"})
    assert seen == [(True, 1)], "the journal and the fold had the event before the link"
    assert link.events == [event]
    assert t.folded == [event]
    assert event.seq == t.journal.last_seq == 1
    assert event.ts == t.clock.now()


def test_emit_stamps_the_session_id_from_the_provider(t: Log) -> None:
    assert t.log.emit("a", {}).session_id is None
    t.session_id = "s-9"
    assert t.log.emit("b", {}).session_id == "s-9"
    assert t.log.emit("c", {}, session_id="s-10").session_id == "s-10"
    assert [e.session_id for e in t.journal.events_since(1)] == [None, "s-9", "s-10"]


def test_listeners_run_after_the_fold(t: Log) -> None:
    order: list[str] = []
    t.log.wire(lambda e: order.append(f"fold {e.type}"), lambda: None)
    t.log.listeners.append(lambda e: order.append(f"first {e.type}"))
    t.log.listeners.append(lambda e: order.append(f"second {e.type}"))
    t.log.emit("x", {})
    assert order == ["fold x", "first x", "second x"]


def test_an_event_emitted_by_the_fold_is_journaled_in_order(t: Log) -> None:
    online(t)

    def fold(event: Event) -> None:
        if event.type == "cause":
            t.log.emit("effect", {})

    t.log.wire(fold, lambda: None)
    t.log.emit("cause", {})
    assert [(e.seq, e.type) for e in t.journal.events_since(1)] == [(1, "cause"), (2, "effect")]
    assert sorted(t.published()) == [1, 2]


def test_offline_nothing_is_published_and_everything_is_journaled(t: Log) -> None:
    t.emit_n(3)
    t.log.publish_vitals(_sample(t))
    t.publish_state()
    assert t.link.events == [] and t.link.vitals == [] and t.link.states == []
    assert t.journal.count_undelivered() == 3
    assert t.log.online is False


def test_delivered_marks_the_journal(t: Log) -> None:
    online(t)
    t.emit_n(3)
    t.log.delivered(2)
    assert [e.seq for e in t.journal.undelivered()] == [1, 3]


# --- the outbox after a reconnect ---------------------------------------------------------------


def test_link_up_queues_the_backlog_and_send_backlog_resends_it_in_batches(t: Log) -> None:
    total = 2 * RESEND_BATCH + 5
    t.emit_n(total)
    online(t)
    assert t.published() == [], "link_up only queues; the loop sends a batch per turn"
    assert t.log.backlog == 1
    assert t.log.next_deadline() == t.clock.monotonic(), "more to send on the next turn"
    t.log.send_backlog()
    assert t.published() == list(range(1, RESEND_BATCH + 1))
    t.log.send_backlog()
    assert t.published() == list(range(1, 2 * RESEND_BATCH + 1))
    t.log.send_backlog()
    assert t.published() == list(range(1, total + 1))
    assert t.log.backlog is None
    t.log.send_backlog()
    assert len(t.published()) == total, "nothing is sent twice"
    assert t.log.next_deadline() > t.clock.monotonic()


def test_the_backlog_skips_what_the_broker_acknowledged(t: Log) -> None:
    online(t)
    t.emit_n(6)
    for seq in (1, 2, 4):
        t.log.delivered(seq)
    t.log.link_down()
    t.link.events.clear()
    online(t)
    t.log.send_backlog()
    assert t.published() == [3, 5, 6, 7]
    assert t.link.types()[-1] == "link_restored"


def test_link_up_with_nothing_queued_has_no_backlog(t: Log) -> None:
    online(t)
    t.emit_n(2)
    t.log.delivered(1)
    t.log.delivered(2)
    t.log.link_down()
    online(t)
    assert t.log.backlog is None


def test_live_events_wait_behind_the_backlog(t: Log) -> None:
    t.emit_n(RESEND_BATCH + 3)
    online(t)
    t.log.send_backlog()
    t.log.emit("live", {})
    assert t.published() == list(range(1, RESEND_BATCH + 1)), "held until the backlog is out"
    t.log.send_backlog()
    assert t.published() == list(range(1, RESEND_BATCH + 5))
    assert t.link.types()[-1] == "live"
    t.log.emit("after", {})
    assert t.link.types()[-1] == "after", "with the backlog out, events go at once"


def test_link_down_stops_the_backlog_and_a_later_link_up_starts_it_again(t: Log) -> None:
    t.emit_n(RESEND_BATCH + 10)
    online(t)
    t.log.send_backlog()
    t.log.link_down()
    t.log.send_backlog()
    assert len(t.published()) == RESEND_BATCH
    t.link.events.clear()
    online(t)
    t.log.send_backlog()
    # Nothing was acknowledged: everything goes again, from the first seq.
    assert t.published() == list(range(1, RESEND_BATCH + 1))


def test_link_up_republishes_alarms_and_the_latest_nibp(t: Log) -> None:
    alarm = Alarm(
        id="a-1",
        code="spo2_low",
        kind="physiological",
        priority="medium",
        state="active",
        raised_at=t.clock.now(),
        message="SpO2 low",
    )
    reading = NibpReading(ts=t.clock.now(), sys=120, dia=80, map=93, source="fake")
    t.log.link_up([alarm], reading)
    assert t.link.alarms == [[alarm]]
    assert t.link.nibp == [reading]
    t.log.link_down()
    t.log.link_up([], None)
    assert t.link.alarms[-1] == []
    assert t.link.nibp == [reading], "no reading: nothing republished"


def test_link_restored_only_after_a_first_connection_with_the_outage(t: Log) -> None:
    t.clock.advance(30)  # offline since start-up: not an outage of a link that worked
    online(t)
    assert "link_restored" not in _types(t)
    t.emit_n(2)
    t.log.link_down()
    t.clock.advance(12.5)
    t.clock.step_wall(3600)  # the outage is measured on the monotonic clock
    t.log.emit("while_down", {})
    t.link.events.clear()
    online(t)
    restored = [e for e in t.journal.events_since(1) if e.type == "link_restored"]
    assert [e.data for e in restored] == [{"offline_s": 12.5, "queued": 3}]
    # Emitted behind the backlog, it goes out with it, in seq order.
    t.log.send_backlog()
    assert t.published() == [1, 2, 3, 4]
    t.log.link_down()
    online(t)
    assert [e.data["offline_s"] for e in t.journal.events_since(1) if e.type == "link_restored"][
        -1
    ] == 0.0


def test_publish_vitals_only_online(t: Log) -> None:
    t.log.publish_vitals(_sample(t))
    online(t)
    sample = _sample(t)
    t.log.publish_vitals(sample)
    assert t.link.vitals == [sample]


# --- the retained state -------------------------------------------------------------------------


def test_state_is_published_when_changed_or_on_the_heartbeat(t: Log) -> None:
    online(t)
    t.publish_state()
    assert len(t.link.states) == 1
    t.publish_state()
    t.clock.advance(HEARTBEAT_S - 0.5)
    t.publish_state()
    assert len(t.link.states) == 1
    assert t.states == 1, "the state is not even built when nothing is due"
    t.log.storage_turn()  # as every loop turn does: the next free-space probe is 2 s away
    assert t.log.next_deadline() == pytest.approx(t.clock.monotonic() + 0.5)
    t.clock.advance(0.5)
    t.publish_state()
    assert len(t.link.states) == 2, "the heartbeat"
    t.log.emit("note", {})
    t.publish_state()
    assert len(t.link.states) == 3, "an event changed the state"
    t.log.changed()
    t.publish_state()
    assert len(t.link.states) == 4, "something outside the journal changed it"
    t.publish_state()
    assert len(t.link.states) == 4


def test_the_heartbeat_counts_from_the_last_publication(t: Log) -> None:
    online(t)
    t.publish_state()
    t.clock.advance(HEARTBEAT_S / 2)
    t.log.changed()
    t.publish_state()
    t.clock.advance(HEARTBEAT_S / 2)
    t.publish_state()
    assert len(t.link.states) == 2
    t.clock.advance(HEARTBEAT_S / 2)
    t.publish_state()
    assert len(t.link.states) == 3


def test_alarms_are_published_only_after_an_alarm_event(t: Log) -> None:
    online(t)
    assert len(t.link.alarms) == 1  # link_up republishes them
    t.publish_state()
    assert len(t.link.alarms) == 2, "the first state goes with the alarm list"
    t.log.emit("phase_changed", {})
    t.publish_state()
    t.clock.advance(HEARTBEAT_S)
    t.publish_state()
    assert len(t.link.states) == 3
    assert len(t.link.alarms) == 2, "no alarm event: the retained list stands"
    assert t.alarm_lists == 1
    t.log.emit("alarm_raised", {})
    t.publish_state()
    assert len(t.link.alarms) == 3
    t.log.emit("alarm_cleared", {})
    t.publish_state()
    assert len(t.link.alarms) == 4


def test_state_changes_while_offline_go_out_on_reconnect(t: Log) -> None:
    online(t)
    t.publish_state()
    t.log.link_down()
    t.log.emit("alarm_raised", {})
    t.publish_state()
    assert len(t.link.states) == 1
    online(t)
    t.publish_state()
    assert len(t.link.states) == 2
    assert t.link.alarms[-1] == []


# --- the events verb ----------------------------------------------------------------------------


def _query(since: int, limit: int = 1000) -> EventsQuery:
    return EventsQuery(request_id="q", by="t", since_seq=since, limit=limit)


def test_events_page_stays_under_the_budget_and_continues_from_the_last_seq(t: Log) -> None:
    blob = "x" * 3000  # ~3 KB an event: 1000 of them would be far over one reply
    for i in range(60):
        t.log.emit("note", {"i": i, "blob": blob})
    pages: list[list[int]] = []
    since = 1
    while since <= t.journal.last_seq:
        page = t.log.events_page(_query(since))
        seqs = [e["seq"] for e in page["events"]]
        pages.append(seqs)
        body = json.dumps(page["events"], separators=(",", ":"))
        assert len(body) <= EVENTS_REPLY_BUDGET
        reply = Reply(request_id="q", verb="events", ok=True, result=page)
        assert len(reply.to_json()) <= MAX_PAYLOAD_BYTES
        assert page["last_seq"] == 60
        since = seqs[-1] + 1
    assert len(pages) > 1, "the budget split the journal into pages"
    assert [s for p in pages for s in p] == list(range(1, 61)), "no gap, no repeat"
    # Each page but the last is as full as the budget allows: one more event would pass it.
    size = {e.seq: len(e.model_dump_json()) + 1 for e in t.journal.events_since(1)}
    for page_seqs in pages[:-1]:
        used = sum(size[s] for s in page_seqs)
        assert used + size[page_seqs[-1] + 1] > EVENTS_REPLY_BUDGET


def test_events_page_honours_since_and_limit(t: Log) -> None:
    t.emit_n(10)
    page = t.log.events_page(_query(4, limit=3))
    assert [e["seq"] for e in page["events"]] == [4, 5, 6]
    assert page["events"][0]["type"] == "note" and page["events"][0]["data"] == {"i": 3}
    assert page["last_seq"] == 10
    assert t.log.events_page(_query(11))["events"] == []


def test_an_event_larger_than_the_budget_still_comes_alone(t: Log) -> None:
    # emit itself fits events to the broker's limit now; a journal from before (or another
    # writer) may still hold one this big, and the page must still make progress past it.
    t.journal.append(t.clock.now(), None, "big", {"blob": "y" * (EVENTS_REPLY_BUDGET + 10)})
    t.log.emit("small", {})
    page = t.log.events_page(_query(1))
    assert [e["type"] for e in page["events"]] == ["big"], "a page makes progress"


def _types(t: Log) -> list[str]:
    return [e.type for e in t.journal.events_since(1)]


def _sample(t: Log) -> VitalsSample:
    return VitalsSample(ts=t.clock.now(), spo2=97, hr=70, source="fake")
