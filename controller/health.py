"""The room's own health: which devices are there, the clock, the journal; technical alarms.

A device lost, an unsynchronised clock or a journal that had to be set aside is not the
patient's condition but the room's: each is a technical alarm that clinicians must see.
"""

from __future__ import annotations

from controller import events as ev
from controller.alarms import AlarmEngine
from controller.eventlog import EventLog
from controller.models import Event

DEVICES = ("oximeter", "nibp", "call_button", "lighting", "audio")
"""The devices the room reports in its state (``RoomState.devices``)."""


class Health:
    """Device status, clock sync and journal recovery, with their technical alarms."""

    def __init__(self, log: EventLog, alarms: AlarmEngine, devices: dict[str, str]) -> None:
        self._log = log
        self._alarms = alarms
        self.devices: dict[str, str] = dict.fromkeys(DEVICES, "absent")
        self.devices.update(devices)
        self.clock_synced = True  # until the daemon's clock check says otherwise

    def apply(self, event: Event) -> None:
        """Fold device events into the device status."""
        if event.type in ("device_connected", "device_lost"):
            self.devices[event.data["device"]] = event.data["status"]

    def usable(self, device: str) -> bool:
        """Whether a device is present and not lost."""
        return self.devices.get(device) not in ("absent", "lost")

    def on_device(self, msg: ev.DeviceChanged) -> None:
        """A device was found or lost: record it; a lost device is a technical alarm."""
        if self.devices.get(msg.device) == msg.status:
            return
        type_ = "device_connected" if msg.status == "ok" else "device_lost"
        self._log.emit(type_, {"device": msg.device, "status": msg.status, "detail": msg.detail})
        code = f"{msg.device}_lost"
        if msg.status == "lost":
            self._alarms.raise_now(
                code,
                kind="technical",
                priority="medium",
                message=f"{msg.device} lost: {msg.detail}",
            )
        else:
            self._alarms.clear(code)

    def on_clock_sync(self, msg: ev.ClockSync) -> None:
        """The system clock's sync state: a known-unsynchronised clock is a technical alarm."""
        self.clock_synced = msg.synced is not False
        if msg.synced is False:
            self._alarms.raise_now(
                "clock_unsynced",
                kind="technical",
                priority="medium",
                message="The room's clock is not synchronised (NTP): timestamps may be wrong",
            )
        else:
            self._alarms.clear("clock_unsynced")

    def journal_recovered(self, damaged_file: str, last_seq: int | None, reason: str) -> None:
        """Announce that the journal was damaged and a new one started (at start-up)."""
        self._log.emit(
            "journal_recovered",
            {"damaged_file": damaged_file, "last_seq": last_seq, "reason": reason[:500]},
        )
        self._alarms.raise_now(
            "journal_recovered",
            kind="technical",
            priority="medium",
            message="The room's journal was damaged and set aside: the session before the "
            "restart could not be resumed; check the room and the clinic's records",
        )

    def on_audio_failed(self, msg: ev.AudioFailed) -> None:
        """An audio output failed: a low-priority technical alarm."""
        self._alarms.raise_now(
            f"audio_{msg.output}_failed",
            kind="technical",
            priority="low",
            message=f"Audio output {msg.output} failed: {msg.message}",
        )
