"""Session plans: the clinic's plan received on ``plan``, and its tracks found in the library."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import ValidationError

from controller import events as ev
from controller.config import Config
from controller.errors import CommandError, InvalidPayload
from controller.eventlog import EventLog
from controller.fit import ENVELOPE_BYTES, EVENT_BUDGET, encoded_size, summarise
from controller.journal import Journal
from controller.models import SessionPlan, digest, parse_json_object, reasons_of
from controller.ports import MusicLibrary
from controller.state import SessionState


class Plans:
    """Takes the clinic's plan for the next session and resolves plans' tracks."""

    def __init__(
        self,
        *,
        config: Config,
        journal: Journal,
        log: EventLog,
        session: SessionState,
        library: MusicLibrary | None,
    ) -> None:
        self._config = config
        self._journal = journal
        self._log = log
        self._session = session
        self._library = library

    def on_plan(self, msg: ev.PlanReceived) -> None:
        """A (retained) plan arrived: configure the next session, or say why not."""
        if not msg.payload:
            return  # a cleared retained plan
        plan_digest = digest(msg.payload)
        if plan_digest == self._journal.get_meta("last_plan_digest"):
            return  # the same retained plan again (a reconnect): already handled
        self._journal.set_meta("last_plan_digest", plan_digest)
        try:
            plan = SessionPlan.model_validate(parse_json_object(msg.payload))
            if self._session.active:
                raise ValueError(
                    f"a session ({self._session.session_id}) is running in this room; end it first"
                )
            tracks = self.resolve_tracks(plan)
        except (CommandError, ValidationError, ValueError) as exc:
            # One reason per problem, but a bounded list: 1,500 bad playlist entries must not
            # make an event the broker refuses.
            self._log.emit("plan_rejected", {"reasons": summarise(reasons_of(exc))})
            return
        self._log.emit(
            "session_configured",
            {"plan": plan.model_dump(mode="json"), "tracks": tracks},
            session_id=plan.session_id,
        )

    def resolve_tracks(self, plan: SessionPlan) -> list[str]:
        """The guidance track (if the plan asks for one) then the playlist (music mode)."""
        tracks: list[str] = []
        if plan.guidance == "breathing" or plan.guidance == "body_scan":  # not none or clinician
            guidance = self._config.audio.guidance.get(plan.guidance)
            if guidance is None:
                raise InvalidPayload(f"field 'guidance': no '{plan.guidance}' track configured")
            tracks += self._resolve("guidance", [guidance])
        if plan.music_mode == "music":
            tracks += self._resolve("playlist", plan.playlist)
        check_fits(plan, tracks)
        return tracks

    def resolve_one(self, track: str) -> str:
        """One track's playable path, or InvalidPayload naming it."""
        return self._resolve("track", [track])[0]

    def _resolve(self, field: str, playlist: Sequence[str] | str) -> list[str]:
        if self._library is None:
            return [playlist] if isinstance(playlist, str) else list(playlist)
        try:
            return self._library.resolve(playlist)
        except ValueError as exc:
            raise InvalidPayload(f"field '{field}': {exc}") from None


BY_ROOM = 200
"""Room for the ``by`` and ``by_declared`` that ``session_started`` adds to the plan."""


def check_fits(plan: SessionPlan, tracks: list[str]) -> None:
    """InvalidPayload when the events that carry this plan (``session_configured``,
    ``session_started``: the plan and its tracks) would not fit one broker message."""
    size = encoded_size({"plan": plan.model_dump(mode="json"), "tracks": tracks})
    limit = EVENT_BUDGET - ENVELOPE_BYTES - BY_ROOM
    if size > limit:
        raise InvalidPayload(
            f"field 'playlist': the plan and its {len(tracks)} tracks take {size} bytes; "
            f"the limit is {limit}: shorten the playlist",
            {"bytes": size, "limit": limit, "tracks": len(tracks)},
        )
