"""Every MQTT topic of the contract, built in one place."""

from __future__ import annotations

VERB_WILDCARD = "+"
BY = "by"
"""The level of ``cmd/<verb>/by/<user>`` before the sender's broker user name."""


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
        self.attributed_commands = f"{self.root}/cmd/{VERB_WILDCARD}/{BY}/{VERB_WILDCARD}"
        self.sim = f"{self.root}/sim/{VERB_WILDCARD}"

    def cmd(self, verb: str, user: str | None = None) -> str:
        """The topic a command ``verb`` is sent on: ``cmd/<verb>/by/<user>`` for a broker
        ``user`` (the clinic ACL lets each clinician write only there), else ``cmd/<verb>``."""
        base = f"{self.root}/cmd/{verb}"
        return f"{base}/{BY}/{user}" if user else base

    def sim_action(self, action: str) -> str:
        """The topic of a simulation action (only under ``--simulate``)."""
        return f"{self.root}/sim/{action}"

    def verb_of(self, topic: str) -> str | None:
        """The verb of a ``cmd/<verb>`` or ``cmd/<verb>/by/<user>`` topic of this room."""
        found = self.command_of(topic)
        return found[0] if found else None

    def command_of(self, topic: str) -> tuple[str, str | None] | None:
        """(verb, broker user or None) of a command topic of this room, else None.

        ``cmd/<verb>`` carries no proven sender; ``cmd/<verb>/by/<user>`` names the broker
        user the ACL let publish there. Any other depth is not a command topic.
        """
        head = f"{self.root}/cmd/"
        if not topic.startswith(head):
            return None
        parts = topic[len(head) :].split("/")
        if len(parts) == 1:
            return parts[0], None
        if len(parts) == 3 and parts[1] == BY and parts[0] and parts[2]:
            return parts[0], parts[2]
        return None

    def sim_of(self, topic: str) -> str | None:
        """The action of a ``sim/<action>`` topic of this room, else None."""
        head = f"{self.root}/sim/"
        return topic[len(head) :] if topic.startswith(head) else None

    @staticmethod
    def all_rooms(prefix: str, leaf: str) -> str:
        """A subscription to ``leaf`` of every room under ``prefix``."""
        return f"{prefix}/rooms/+/{leaf}"
