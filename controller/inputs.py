"""What the devices and the clinic link tell the room: vitals, NIBP, devices, music, plans."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import ValidationError

from controller import events as ev
from controller.core import RoomCore
from controller.errors import CommandError, InvalidPayload
from controller.models import SessionPlan, digest, parse_json_object, reasons_of
from controller.phases import ACTIVE


class RoomInputs(RoomCore):
    """Handlers for adapter messages (everything on the inbox but commands)."""

    # === devices and the link ===========================================================

    def _on_plan(self, msg: ev.PlanReceived) -> None:
        if not msg.payload:
            return  # a cleared retained plan
        plan_digest = digest(msg.payload)
        if plan_digest == self.journal.get_meta("last_plan_digest"):
            return  # the same retained plan again (a reconnect): already handled
        self.journal.set_meta("last_plan_digest", plan_digest)
        try:
            plan = SessionPlan.model_validate(parse_json_object(msg.payload))
            if self.phase in ACTIVE:
                raise ValueError(
                    f"a session ({self.session_id}) is running in this room; end it first"
                )
            tracks = self._resolve_tracks(plan)
        except (CommandError, ValidationError, ValueError) as exc:
            self._emit("plan_rejected", {"reasons": reasons_of(exc)})
            return
        self._emit(
            "session_configured",
            {"plan": plan.model_dump(mode="json"), "tracks": tracks},
            session_id=plan.session_id,
        )

    def _on_link_up(self, msg: ev.LinkUp) -> None:
        self.link_online = True
        queued = self.journal.count_undelivered()
        # What the broker has not acknowledged goes out again, oldest first, a batch per
        # loop turn (tick) so that live events are not held up behind the backlog.
        self._backlog = 1 if queued else None
        self._link.publish_alarms(self.alarms.current())
        if self.latest_nibp is not None:
            self._link.publish_nibp(self.latest_nibp)
        if self._offline_since is not None and self._link_was_up:
            offline = self._clock.monotonic() - self._offline_since
            self._emit("link_restored", {"offline_s": round(offline, 3), "queued": queued})
        self._offline_since = None
        self._link_was_up = True
        self._dirty = True

    def journal_recovered(self, damaged_file: str, last_seq: int | None, reason: str) -> None:
        """Announce that the journal was damaged and a new one started (at start-up)."""
        self._emit(
            "journal_recovered",
            {"damaged_file": damaged_file, "last_seq": last_seq, "reason": reason[:500]},
        )
        self.alarms.raise_now(
            "journal_recovered",
            kind="technical",
            priority="medium",
            message="The room's journal was damaged and set aside: the session before the "
            "restart could not be resumed; check the room and the clinic's records",
        )

    def _on_clock_sync(self, msg: ev.ClockSync) -> None:
        self.clock_synced = msg.synced is not False
        if msg.synced is False:
            self.alarms.raise_now(
                "clock_unsynced",
                kind="technical",
                priority="medium",
                message="The room's clock is not synchronised (NTP): timestamps may be wrong",
            )
        else:
            self.alarms.clear("clock_unsynced")

    def _on_link_down(self, msg: ev.LinkDown) -> None:
        self.link_online = False
        self._backlog = None
        self._offline_since = self._clock.monotonic()
        self._dirty = True

    def _on_vitals(self, msg: ev.VitalsArrived) -> None:
        sample = msg.sample
        self.latest_sample = sample
        self.latest_sample_mono = self._clock.monotonic()
        if sample.spo2 is not None or sample.hr is not None:
            self.last_valid_sample_mono = self._clock.monotonic()
        self.journal.record_vitals(sample.ts, self.session_id, "sample", sample.model_dump_json())
        if self.link_online:
            self._link.publish_vitals(sample)
        if self.phase in ACTIVE:
            self.alarms.check_sample(sample)
            self.alarms.set_condition(
                "sensor_off",
                sample.quality in ("sensor_off", "no_sensor"),
                kind="technical",
                priority="medium",
                message=f"Oximeter: {sample.quality.replace('_', ' ')}",
                delay_s=self.alarm_limits.stale_s,
            )

    def _on_nibp_completed(self, msg: ev.NibpCompleted) -> None:
        r = msg.reading
        self._emit(
            "nibp_result",
            {"sys": r.sys, "dia": r.dia, "map": r.map, "hr": r.hr, "source": r.source},
        )
        self.journal.record_vitals(r.ts, self.session_id, "nibp", r.model_dump_json())
        self._link.publish_nibp(r)
        self.alarms.clear("nibp_failed")
        self.alarms.clear("nibp_overdue")
        if self.phase in ACTIVE:
            self.alarms.check_nibp(r)

    def _on_nibp_failed(self, msg: ev.NibpFailed) -> None:
        self._emit("nibp_failed", {"code": msg.code})
        self.alarms.raise_now(
            "nibp_failed", kind="technical", priority="low", message=f"NIBP failed: {msg.code}"
        )

    def _on_device(self, msg: ev.DeviceChanged) -> None:
        if self.devices.get(msg.device) == msg.status:
            return
        type_ = "device_connected" if msg.status == "ok" else "device_lost"
        self._emit(type_, {"device": msg.device, "status": msg.status, "detail": msg.detail})
        code = f"{msg.device}_lost"
        if msg.status == "lost":
            self.alarms.raise_now(
                code,
                kind="technical",
                priority="medium",
                message=f"{msg.device} lost: {msg.detail}",
            )
        else:
            self.alarms.clear(code)

    def _on_track_started(self, msg: ev.TrackStarted) -> None:
        self._emit("track_started", {"track": msg.track, "outputs": list(msg.outputs)})

    def _on_track_ended(self, msg: ev.TrackEnded) -> None:
        self._emit("track_ended", {"track": msg.track, "played_s": round(msg.played_s, 3)})

    def _on_playlist_ended(self, msg: ev.PlaylistEnded) -> None:
        if self.music_playing:
            self._emit("music_stopped", {"reason": "playlist_ended"})
        self._maybe_debrief_ready()

    def _on_audio_failed(self, msg: ev.AudioFailed) -> None:
        self.alarms.raise_now(
            f"audio_{msg.output}_failed",
            kind="technical",
            priority="low",
            message=f"Audio output {msg.output} failed: {msg.message}",
        )

    def _resolve_tracks(self, plan: SessionPlan) -> list[str]:
        """The guidance track (if the plan asks for one) then the playlist (music mode)."""
        tracks: list[str] = []
        if plan.guidance != "none":
            guidance = self.config.audio.guidance.get(plan.guidance)
            if guidance is None:
                raise InvalidPayload(f"field 'guidance': no '{plan.guidance}' track configured")
            tracks += self._resolve("guidance", [guidance])
        if plan.music_mode == "music":
            tracks += self._resolve("playlist", plan.playlist)
        return tracks

    def _resolve(self, field: str, playlist: Sequence[str] | str) -> list[str]:
        if self._library is None:
            return _as_list(playlist)
        try:
            return self._library.resolve(playlist)
        except ValueError as exc:
            raise InvalidPayload(f"field '{field}': {exc}") from None

    def _resolve_one(self, track: str) -> str:
        if self._library is None:
            return track
        try:
            return self._library.resolve([track])[0]
        except ValueError as exc:
            raise InvalidPayload(f"field 'track': {exc}") from None

    _link_was_up = False


def _as_list(playlist: Sequence[str] | str) -> list[str]:
    return [playlist] if isinstance(playlist, str) else list(playlist)
