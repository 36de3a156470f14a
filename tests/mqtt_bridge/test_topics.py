"""Every topic of the contract, built from the prefix and the room id, in one place."""

from __future__ import annotations

import pytest

from mqtt_bridge.topics import Topics

CASES = [("clinic", "room-3"), ("site-a/clinic", "r1"), ("x", "0")]


@pytest.mark.parametrize(("prefix", "room"), CASES)
def test_room_outputs_and_inputs_are_under_the_root(prefix: str, room: str) -> None:
    t = Topics(prefix, room)
    root = f"{prefix}/rooms/{room}"
    assert t.prefix == prefix and t.room_id == room
    assert t.root == root
    assert t.status == f"{root}/status"
    assert t.state == f"{root}/state"
    assert t.events == f"{root}/events"
    assert t.vitals == f"{root}/vitals"
    assert t.nibp == f"{root}/vitals/nibp"
    assert t.alarms == f"{root}/alarms"
    assert t.plan == f"{root}/plan"
    assert t.replies == f"{root}/replies"


@pytest.mark.parametrize(("prefix", "room"), CASES)
def test_command_and_sim_topics_and_their_subscriptions(prefix: str, room: str) -> None:
    t = Topics(prefix, room)
    root = f"{prefix}/rooms/{room}"
    for verb in ("advance", "start_session", "events", "status", "alarm_silence"):
        assert t.cmd(verb) == f"{root}/cmd/{verb}"
    for action in ("press_call", "release_call", "hold_call", "incident", "finish_playlist"):
        assert t.sim_action(action) == f"{root}/sim/{action}"
    assert t.commands == f"{root}/cmd/+"
    assert t.sim == f"{root}/sim/+"


def test_every_topic_is_distinct() -> None:
    t = Topics("clinic", "room-3")
    topics = [
        t.status,
        t.state,
        t.events,
        t.vitals,
        t.nibp,
        t.alarms,
        t.plan,
        t.replies,
        t.cmd("advance"),
        t.sim_action("press_call"),
    ]
    assert len(set(topics)) == len(topics)


def test_all_rooms_subscription() -> None:
    assert Topics.all_rooms("clinic", "state") == "clinic/rooms/+/state"
    assert Topics.all_rooms("a/b", "vitals/nibp") == "a/b/rooms/+/vitals/nibp"


@pytest.mark.parametrize("verb", ["advance", "start_session", "events", "status", "confirm"])
def test_verb_of_this_rooms_command(verb: str) -> None:
    t = Topics("clinic", "room-3")
    assert t.verb_of(t.cmd(verb)) == verb
    assert t.verb_of(f"clinic/rooms/room-3/cmd/{verb}") == verb


@pytest.mark.parametrize("action", ["press_call", "hold_call", "incident", "finish_playlist"])
def test_sim_of_this_rooms_action(action: str) -> None:
    t = Topics("clinic", "room-3")
    assert t.sim_of(t.sim_action(action)) == action
    assert t.sim_of(f"clinic/rooms/room-3/sim/{action}") == action


@pytest.mark.parametrize(
    "topic",
    [
        "clinic/rooms/room-4/cmd/advance",  # another room
        "clinic/rooms/room-30/cmd/advance",  # a room whose id starts with ours
        "clinic/rooms/room/cmd/advance",  # a room whose id is a prefix of ours
        "other/rooms/room-3/cmd/advance",  # another prefix
        "clinic/rooms/room-3/sim/press_call",  # a sim action is not a command
        "clinic/rooms/room-3/replies",
        "clinic/rooms/room-3/plan",
        "clinic/rooms/room-3/status",
        "clinic/rooms/room-3/cmdx/advance",
        "x/clinic/rooms/room-3/cmd/advance",  # ours only as a suffix
        "",
    ],
)
def test_verb_of_anything_else_is_none(topic: str) -> None:
    assert Topics("clinic", "room-3").verb_of(topic) is None


@pytest.mark.parametrize(
    "topic",
    [
        "clinic/rooms/room-4/sim/press_call",
        "clinic/rooms/room-30/sim/press_call",
        "clinic/rooms/room/sim/press_call",
        "other/rooms/room-3/sim/press_call",
        "clinic/rooms/room-3/cmd/advance",  # a command is not a sim action
        "clinic/rooms/room-3/events",
        "clinic/rooms/room-3/simulate/press_call",
        "x/clinic/rooms/room-3/sim/press_call",
        "",
    ],
)
def test_sim_of_anything_else_is_none(topic: str) -> None:
    assert Topics("clinic", "room-3").sim_of(topic) is None


def test_two_rooms_do_not_claim_each_others_commands() -> None:
    a, b = Topics("clinic", "room-1"), Topics("clinic", "room-10")
    assert a.verb_of(b.cmd("advance")) is None
    assert b.verb_of(a.cmd("advance")) is None
    assert a.sim_of(b.sim_action("incident")) is None
    assert b.sim_of(a.sim_action("incident")) is None


def test_the_attributed_command_path_names_its_user() -> None:
    t = Topics("clinic", "room-3")
    assert t.cmd("advance", "dr-lee") == "clinic/rooms/room-3/cmd/advance/by/dr-lee"
    assert t.cmd("advance") == "clinic/rooms/room-3/cmd/advance"
    assert t.attributed_commands == "clinic/rooms/room-3/cmd/+/by/+"
    assert t.command_of("clinic/rooms/room-3/cmd/advance/by/dr-lee") == ("advance", "dr-lee")
    assert t.command_of("clinic/rooms/room-3/cmd/advance") == ("advance", None)
    assert t.verb_of("clinic/rooms/room-3/cmd/advance/by/dr-lee") == "advance"


@pytest.mark.parametrize(
    "leaf",
    ["advance/by", "advance/by/", "advance/of/dr-lee", "advance/by/dr-lee/x", "/by/dr-lee", "a/b"],
)
def test_other_depths_under_cmd_are_no_command(leaf: str) -> None:
    t = Topics("clinic", "room-3")
    assert t.command_of(f"clinic/rooms/room-3/cmd/{leaf}") is None
    assert t.command_of("clinic/rooms/room-4/cmd/advance/by/dr-lee") is None
