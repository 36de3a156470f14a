"""The room's own health: which devices are there, the clock, the journal; technical alarms.

A device lost, an unsynchronised clock, a journal that had to be set aside or a disk that
refuses writes is not the patient's condition but the room's: each is a technical alarm that
clinicians must see.
"""

from __future__ import annotations

from controller import events as ev
from controller.alarms import AlarmEngine
from controller.eventlog import EventLog, StorageStatus
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
        self.storage: StorageStatus | None = None  # None: nothing to report yet
        log.storage_listeners.append(self.on_storage)

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

    def journal_recovered(
        self,
        damaged_file: str | None,
        last_seq: int | None,
        reason: str,
        lost: tuple[int, int] | None = None,
    ) -> None:
        """Announce that the journal was damaged and a new one started, or that committed
        events were lost with the ``-wal`` file (``lost``: their first and last seq)."""
        data: dict[str, object] = {
            "damaged_file": damaged_file,
            "last_seq": last_seq,
            "reason": reason[:500],
        }
        if lost is not None:
            data["lost_seqs"] = list(lost)
        self._log.emit("journal_recovered", data)
        if lost is not None:
            message = (
                f"The room's journal lost events {lost[0]}-{lost[1]} while the room was down "
                "(its -wal file was removed or cut): the session may not have resumed where it "
                "was; check the room and the clinic's records"
            )
        else:
            message = (
                "The room's journal was damaged and set aside: the session before the "
                "restart could not be resumed; check the room and the clinic's records"
            )
        self._alarms.raise_now(
            "journal_recovered", kind="technical", priority="medium", message=message
        )

    def on_storage(self, status: StorageStatus) -> None:
        """The journal's storage changed: a fault or low space is a technical alarm."""
        was = self.storage.fault if self.storage is not None else None
        self.storage = status
        fault = status.fault
        if fault is not None and (was is None or was.kind != fault.kind):
            self._log.emit(
                "storage_fault",
                {"kind": fault.kind, "file": fault.path, "detail": fault.detail[:500]},
            )
            self._alarms.clear("storage_fault")  # say the new cause, not the first one
            self._alarms.raise_now(
                "storage_fault",
                kind="technical",
                priority="high",
                message=f"The room's record is not being written: {fault.what} ({fault.path}); "
                "monitoring and alarms go on, events wait in memory",
            )
        elif fault is None and was is not None:
            self._alarms.clear("storage_fault")
            self._log.emit(
                "storage_restored",
                {
                    "kind": was.kind,
                    "committed_late": status.committed_late,
                    "dropped": status.dropped,
                    "vitals_dropped": status.vitals_dropped,
                    "writes_dropped": status.writes_dropped,
                },
            )
        self._space_alarm(status)

    def _space_alarm(self, status: StorageStatus) -> None:
        low, critical = status.space == "low", status.space == "critical"
        free = f"{status.free_mb:g} MB" if status.free_mb is not None else "little"
        for code, present, priority in (
            ("storage_low", low, "low"),
            ("storage_critical", critical, "medium"),
        ):
            if present:
                self._alarms.raise_now(
                    code,
                    kind="technical",
                    priority=priority,  # type: ignore[arg-type]
                    message=f"The room's disk is nearly full ({free} free): free space "
                    "before the journal stops",
                )
            else:
                self._alarms.clear(code)

    def on_audio_failed(self, msg: ev.AudioFailed) -> None:
        """An audio output failed: a low-priority technical alarm."""
        self._alarms.raise_now(
            f"audio_{msg.output}_failed",
            kind="technical",
            priority="low",
            message=f"Audio output {msg.output} failed: {msg.message}",
        )
