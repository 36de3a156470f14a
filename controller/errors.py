"""The room's exceptions. Each also inherits the matching builtin, as gpiozero's do."""

from __future__ import annotations

from typing import Any


class RoomError(Exception):
    """Base of every error the room raises on purpose."""


class ConfigError(RoomError, ValueError):
    """The configuration file is unreadable or invalid; ``problems`` lists every bad key."""

    def __init__(self, path: str, problems: list[str]) -> None:
        self.path = path
        self.problems = problems
        super().__init__("\n".join(f"{path}: {p}" for p in problems))


class JournalError(RoomError, RuntimeError):
    """The journal cannot be opened or written safely."""


class CommandError(RoomError):
    """A command was refused; ``code`` is one of the contract's error codes."""

    code = "internal"

    def __init__(self, message: str, details: dict[str, Any] | None = None) -> None:
        self.message = message
        self.details = details
        super().__init__(message)


class InvalidPayload(CommandError, ValueError):
    """Not JSON, not an object, too large, or a wrong or missing field."""

    code = "invalid_payload"


class UnknownVerb(CommandError, LookupError):
    """No such command."""

    code = "unknown_verb"


class InvalidState(CommandError, RuntimeError):
    """The command is not allowed in the room's current phase or state."""

    code = "invalid_state"


class GateNotMet(CommandError):
    """A gate's items are not met; ``details['unmet']`` lists them."""

    code = "gate_not_met"


class DeviceUnavailable(CommandError, RuntimeError):
    """The device the command needs is absent or lost."""

    code = "device_unavailable"
