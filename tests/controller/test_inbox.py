"""The inbox: arrival order, with emergencies and acknowledgements ahead of a flood."""

from __future__ import annotations

import queue
import threading

import pytest

from controller.events import CommandReceived, LinkUp, Shutdown
from controller.inbox import URGENT_VERBS, Inbox


def cmd(verb: str, n: int = 0) -> CommandReceived:
    return CommandReceived(verb, f'{{"request_id": "r{n}"}}'.encode())


def drain(inbox: Inbox) -> list[object]:
    out = []
    while inbox.qsize():
        out.append(inbox.get(timeout=0))
    return out


def test_messages_come_out_in_arrival_order() -> None:
    inbox = Inbox()
    messages = [cmd("advance", 1), LinkUp(), cmd("lights", 2), Shutdown()]
    for m in messages:
        inbox.put(m)
    assert drain(inbox) == messages


@pytest.mark.parametrize("verb", sorted(URGENT_VERBS))
def test_an_urgent_command_overtakes_a_flood(verb: str) -> None:
    inbox = Inbox()
    flood = [cmd("bogus", n) for n in range(3000)]
    for m in flood:
        inbox.put(m)
    urgent = cmd(verb, 9999)
    inbox.put(urgent)
    assert inbox.get(timeout=0) == urgent
    assert drain(inbox) == flood


def test_urgent_commands_keep_their_own_order() -> None:
    inbox = Inbox()
    inbox.put(cmd("advance", 0))
    inbox.put(cmd("emergency", 1))
    inbox.put(cmd("alarm_ack", 2))
    assert [m.payload for m in drain(inbox)] == [  # type: ignore[attr-defined]
        b'{"request_id": "r1"}',
        b'{"request_id": "r2"}',
        b'{"request_id": "r0"}',
    ]


def test_an_empty_inbox_times_out() -> None:
    with pytest.raises(queue.Empty):
        Inbox().get(timeout=0.01)


def test_a_message_from_another_thread_wakes_a_waiting_get() -> None:
    inbox = Inbox()
    sender = threading.Timer(0.05, inbox.put, args=(LinkUp(),))
    sender.start()
    try:
        assert inbox.get(timeout=5.0) == LinkUp()
    finally:
        sender.cancel()
