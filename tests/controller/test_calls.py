"""The patient call through the room: placing, escalating, acknowledging, clearing, the buzzer."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from audio.fake import FakeAudioPlayer
from controller.calls import Calls
from controller.errors import InvalidState
from controller.events import LinkDown, LinkUp
from controller.models import Command
from hw.fake import FakeCallButton
from tests.controller.bench import Bench
from tests.controller.harness import Harness

ESCALATE_S = 30  # [protocol] call_escalate_s default
REMINDER_S = 180  # [protocol] call_reminder_s default


def press(h: Harness) -> None:
    h.button.press()
    h.drain()


def in_session(h: Harness) -> None:
    h.plan()
    h.ok("start_session")


def test_defaults_are_the_ones_these_tests_use(room: Harness) -> None:
    assert room.config.protocol.call_escalate_s == ESCALATE_S
    assert room.config.protocol.call_reminder_s == REMINDER_S


def test_press_places_a_call_at_once(room: Harness) -> None:
    in_session(room)
    press(room)
    assert room.events("call_placed") == [{}]
    assert room.room.calls.state == "placed"
    assert room.ok("status")["call"] == {"state": "placed"}
    assert room.button.lamp == "pulse"
    assert room.audio.ducked is True
    assert ("duck", (True,)) in room.audio.calls
    assert ("cue", ()) in room.audio.calls


def test_press_works_without_a_session(room: Harness) -> None:
    press(room)
    assert room.events("call_placed") == [{}]
    assert room.button.lamp == "pulse"


def test_second_press_while_open_places_no_second_call(room: Harness) -> None:
    press(room)
    cues = room.audio.calls.count(("cue", ()))
    press(room)
    room.run(5)
    press(room)
    assert len(room.events("call_placed")) == 1
    assert room.audio.calls.count(("cue", ())) == cues


def test_escalates_after_call_escalate_s_and_again_until_acknowledged(room: Harness) -> None:
    press(room)
    room.run(ESCALATE_S - 1, step=1)
    assert room.events("call_escalated") == []
    room.run(1, step=1)
    assert len(room.events("call_escalated")) == 1
    assert room.room.calls.state == "escalated"
    room.run(ESCALATE_S - 1, step=1)
    assert len(room.events("call_escalated")) == 1
    room.run(1, step=1)
    assert len(room.events("call_escalated")) == 2
    room.run(ESCALATE_S * 3)
    assert len(room.events("call_escalated")) == 5
    assert len(room.events("call_placed")) == 1


def test_call_ack_makes_the_lamp_steady_and_stops_escalation(room: Harness) -> None:
    press(room)
    room.run(ESCALATE_S)
    assert len(room.events("call_escalated")) == 1
    assert room.ok("call_ack") == {"call": "acknowledged"}
    assert room.events("call_acknowledged") == [{"by": "dr-lee"}]
    assert room.button.lamp == "steady"
    assert room.room.calls.state == "acknowledged"
    room.run(REMINDER_S - 5)
    assert len(room.events("call_escalated")) == 1


def test_acknowledged_call_not_cleared_comes_back_as_a_reminder(room: Harness) -> None:
    press(room)
    room.ok("call_ack")
    room.run(REMINDER_S - 1, step=1)
    assert len(room.events("call_placed")) == 1
    room.run(1, step=1)
    assert room.events("call_placed") == [{}, {"reminder": True}]
    assert room.room.calls.state == "placed"
    assert room.button.lamp == "pulse"
    # The reminder escalates like a new call.
    room.run(ESCALATE_S)
    assert len(room.events("call_escalated")) == 1


def test_ack_of_an_escalated_call(room: Harness) -> None:
    press(room)
    room.run(ESCALATE_S)
    assert room.room.calls.state == "escalated"
    room.ok("call_ack")
    assert room.room.calls.state == "acknowledged"


def test_hold_at_the_bedside_clears_the_call(room: Harness) -> None:
    in_session(room)
    press(room)
    room.button.hold()
    room.drain()
    assert room.events("call_cleared") == [{"by": "bedside", "where": "bedside"}]
    assert room.room.calls.state == "idle"
    assert room.button.lamp == "off"
    assert room.audio.ducked is False
    assert room.audio.calls[-1] == ("duck", (False,))
    # Nothing left to escalate or remind.
    room.run(REMINDER_S + ESCALATE_S)
    assert room.events("call_escalated") == []
    assert len(room.events("call_placed")) == 1


def test_hold_clears_an_acknowledged_call_and_its_reminder(room: Harness) -> None:
    press(room)
    room.ok("call_ack")
    room.button.hold()
    room.drain()
    assert room.room.calls.state == "idle"
    room.run(REMINDER_S * 2)
    assert len(room.events("call_placed")) == 1


def test_call_clear_from_the_tablet(room: Harness) -> None:
    press(room)
    assert room.ok("call_clear") == {"call": "idle"}
    assert room.events("call_cleared") == [{"by": "dr-lee", "where": "tablet"}]
    assert room.button.lamp == "off"
    assert room.audio.ducked is False


def test_call_ack_with_no_call_is_invalid_state(room: Harness) -> None:
    reply = room.cmd("call_ack")
    assert not reply.ok
    assert reply.error is not None and reply.error.code == "invalid_state"
    assert room.events("call_acknowledged") == []
    assert room.events("command_rejected")[-1]["code"] == "invalid_state"


def test_call_clear_with_no_call_is_invalid_state(room: Harness) -> None:
    reply = room.cmd("call_clear")
    assert reply.error is not None and reply.error.code == "invalid_state"
    assert room.events("call_cleared") == []


def test_call_ack_twice_is_invalid_state(room: Harness) -> None:
    press(room)
    room.ok("call_ack")
    reply = room.cmd("call_ack")
    assert reply.error is not None and reply.error.code == "invalid_state"


def test_a_new_call_after_clearing(room: Harness) -> None:
    press(room)
    room.ok("call_clear")
    press(room)
    assert room.events("call_placed") == [{}, {}]
    assert room.button.lamp == "pulse"


# --- local annunciation ---------------------------------------------------------------------


def test_online_room_does_not_buzz_for_a_call(room: Harness) -> None:
    press(room)
    room.run(ESCALATE_S)
    assert room.buzzer.pattern == "off"
    assert "call" not in room.buzzer.history


def test_link_down_open_call_buzzes_then_high_alarm_then_back_online(room: Harness) -> None:
    in_session(room)
    room.run(5)
    room.deliver(LinkDown())
    assert room.buzzer.pattern == "off"
    press(room)
    assert room.buzzer.pattern == "call"

    critical = int(room.config.alarms.spo2_critical.limit) - 5
    delay = room.config.alarms.spo2_critical.delay_s
    room.run(delay + 1, step=1, spo2=critical)
    assert any(a.priority == "high" for a in room.room.alarms.current())
    assert room.buzzer.pattern == "high"

    room.deliver(LinkUp())
    assert room.buzzer.pattern == "off"


def test_acknowledged_call_stops_the_local_buzzer(room: Harness) -> None:
    room.deliver(LinkDown())
    press(room)
    assert room.buzzer.pattern == "call"
    room.ok("call_ack")
    assert room.buzzer.pattern == "off"


def test_bedside_clear_stops_the_local_buzzer(room: Harness) -> None:
    room.deliver(LinkDown())
    press(room)
    room.button.hold()
    room.drain()
    assert room.buzzer.pattern == "off"


# --- the Calls part alone -------------------------------------------------------------------


class CallBench:
    """Calls on a bench, with the fake call button's lamp and the fake player."""

    def __init__(self, data_dir: Path, *, devices: bool = True) -> None:
        self.b = b = Bench(data_dir)
        self.lamp = FakeCallButton(b.inbox.append)
        self.audio = FakeAudioPlayer(b.inbox.append)
        self.calls = Calls(
            log=b.log, timers=b.timers, session=b.facts,
            lamp=self.lamp if devices else None, audio=self.audio if devices else None,
        )  # fmt: skip
        b.folds.append(self.calls.apply)

    def fire(self) -> list[str]:
        return self.b.fire(self.calls.timer_table())

    def cmd(self) -> Command:
        return Command(request_id="r", by="rn-kim")


@pytest.fixture
def cb(tmp_path: Path) -> Iterator[CallBench]:
    c = CallBench(tmp_path)
    yield c
    c.b.close()


def test_part_place_pulses_ducks_cues_and_arms_escalation(cb: CallBench) -> None:
    cb.calls.place()
    assert cb.b.events("call_placed") == [{}]
    assert (cb.calls.state, cb.calls.open, cb.calls.waiting) == ("placed", True, True)
    assert cb.lamp.lamp_history == ["pulse"]
    assert cb.audio.calls == [("duck", (True,)), ("cue", ())]
    assert cb.b.timers.remaining("call_escalate") == ESCALATE_S


def test_part_one_open_call_at_a_time(cb: CallBench) -> None:
    cb.calls.place()
    cb.calls.place()
    assert len(cb.b.events("call_placed")) == 1
    assert cb.lamp.lamp_history == ["pulse"]


def test_part_escalation_repeats_until_acknowledged(cb: CallBench) -> None:
    cb.calls.place()
    cb.b.clock.advance(ESCALATE_S)
    assert cb.fire() == ["call_escalate"]
    assert cb.calls.state == "escalated" and cb.calls.waiting
    assert cb.b.timers.remaining("call_escalate") == ESCALATE_S
    cb.calls.acknowledge(cb.cmd())
    assert not cb.b.timers.pending("call_escalate")
    assert cb.b.timers.remaining("call_reminder") == REMINDER_S
    assert cb.calls.state == "acknowledged" and cb.calls.open and not cb.calls.waiting
    assert cb.lamp.lamp == "steady"


def test_part_the_plans_call_timings(tmp_path: Path) -> None:
    c = CallBench(tmp_path)
    c.b.start_session(protocol={"call_escalate_s": 12, "call_reminder_s": 60})
    c.calls.place()
    assert c.b.timers.remaining("call_escalate") == 12
    c.calls.acknowledge(c.cmd())
    assert c.b.timers.remaining("call_reminder") == 60
    c.b.close()


def test_part_a_reminder_is_a_new_call(cb: CallBench) -> None:
    cb.calls.place()
    cb.calls.acknowledge(cb.cmd())
    cb.b.clock.advance(REMINDER_S)
    assert cb.fire() == ["call_reminder"]
    assert cb.b.events("call_placed") == [{}, {"reminder": True}]
    assert cb.calls.state == "placed"
    assert cb.lamp.lamp == "pulse"
    assert not cb.b.timers.pending("call_reminder")
    assert cb.b.timers.remaining("call_escalate") == ESCALATE_S


def test_part_clear_ends_the_call_and_its_timers(cb: CallBench) -> None:
    cb.calls.place()
    cb.calls.clear("rn-kim", "tablet")
    assert cb.b.events("call_cleared") == [{"by": "rn-kim", "where": "tablet"}]
    assert cb.calls.state == "idle"
    assert cb.lamp.lamp == "off" and cb.audio.calls[-1] == ("duck", (False,))
    assert not cb.b.timers.pending("call_escalate") and not cb.b.timers.pending("call_reminder")
    cb.calls.clear("rn-kim", "tablet")
    assert len(cb.b.events("call_cleared")) == 1, "nothing open: nothing to clear"


def test_part_commands_refuse_without_a_call(cb: CallBench) -> None:
    with pytest.raises(InvalidState, match="no call waiting \\(call is idle\\)"):
        cb.calls.acknowledge(cb.cmd())
    with pytest.raises(InvalidState, match=r"^Can't call_clear: there is no open call$"):
        cb.calls.clear_command(cb.cmd())
    cb.calls.place()
    cb.calls.acknowledge(cb.cmd())
    with pytest.raises(InvalidState, match="call is acknowledged"):
        cb.calls.acknowledge(cb.cmd())
    assert cb.calls.clear_command(cb.cmd()) == {"call": "idle"}
    assert cb.b.types() == ["call_placed", "call_acknowledged", "call_cleared"]


def test_part_a_replayed_reminder_leaves_no_reminder_pending(cb: CallBench) -> None:
    # After a restart the journal is folded again: the reminder's call_placed must undo the
    # reminder timer the acknowledgement before it set, or the call would come back twice.
    cb.b.log.emit("call_placed", {})
    cb.b.log.emit("call_acknowledged", {"by": "rn-kim"})
    cb.b.log.emit("call_placed", {"reminder": True})
    assert not cb.b.timers.pending("call_reminder")
    assert cb.b.timers.remaining("call_escalate") == ESCALATE_S


@pytest.mark.parametrize(
    ("events", "lamp"),
    [([], "off"), (["call_placed"], "pulse"), (["call_escalated"], "pulse"),
     (["call_placed", "call_acknowledged"], "steady")],
)  # fmt: skip
def test_part_restore_shows_the_lamp_for_the_state(
    cb: CallBench, events: list[str], lamp: str
) -> None:
    for type_ in events:
        cb.b.log.emit(type_, {"by": "x"})
    cb.calls.restore()
    assert cb.lamp.lamp_history == [lamp]


def test_part_without_lamp_or_player(tmp_path: Path) -> None:
    c = CallBench(tmp_path, devices=False)
    c.calls.place()
    c.calls.acknowledge(c.cmd())
    c.calls.clear("x", "tablet")
    c.calls.restore()
    assert c.b.types() == ["call_placed", "call_acknowledged", "call_cleared"]
    c.b.close()
