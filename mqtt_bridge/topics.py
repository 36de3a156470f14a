"""Every MQTT topic of the contract, built in one place."""

from __future__ import annotations

VERB_WILDCARD = "+"


class Topics:
    """The topics of one room: root = ``<prefix>/rooms/<room_id>``."""

    def __init__(self, prefix: str, room_id: str) -> None:
        self.prefix = prefix
        self.room_id = room_id
        self.root = f"{prefix}/rooms/{room_id}"
        self.status = f"{self.root}/status"
        self.state = f"{self.root}/state"
        self.events = f"{self.root}/events"
        self.vitals = f"{self.root}/vitals"
        self.nibp = f"{self.root}/vitals/nibp"
        self.alarms = f"{self.root}/alarms"
        self.plan = f"{self.root}/plan"
        self.replies = f"{self.root}/replies"
        self.commands = f"{self.root}/cmd/{VERB_WILDCARD}"
        self.sim = f"{self.root}/sim/{VERB_WILDCARD}"

    def cmd(self, verb: str) -> str:
        """The topic a command ``verb`` is sent on."""
        return f"{self.root}/cmd/{verb}"

    def sim_action(self, action: str) -> str:
        """The topic of a simulation action (only under ``--simulate``)."""
        return f"{self.root}/sim/{action}"

    def verb_of(self, topic: str) -> str | None:
        """The verb of a ``cmd/<verb>`` topic of this room, else None."""
        head = f"{self.root}/cmd/"
        return topic[len(head) :] if topic.startswith(head) else None

    def sim_of(self, topic: str) -> str | None:
        """The action of a ``sim/<action>`` topic of this room, else None."""
        head = f"{self.root}/sim/"
        return topic[len(head) :] if topic.startswith(head) else None

    @staticmethod
    def all_rooms(prefix: str, leaf: str) -> str:
        """A subscription to ``leaf`` of every room under ``prefix``."""
        return f"{prefix}/rooms/+/{leaf}"
