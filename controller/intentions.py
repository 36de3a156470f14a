"""The patient's music: the room's library (``library``) and the choice made before the
infusion (``choose``).

The seed lets the patient choose music or none, a playlist and guidance during the first
phases; ``choose`` amends the running session's plan with a ``plan_amended`` event, which
``SessionState`` folds (so a restarted room keeps the choice). A playlist longer or shorter
than ``[protocol] playlist_minutes`` is a warning for the clinician, never a refusal.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from controller.config import Config
from controller.errors import InvalidPayload, InvalidState
from controller.eventlog import EventLog
from controller.models import SessionPlan
from controller.plans import Plans
from controller.ports import MusicLibrary
from controller.state import SessionState

REPLY_BUDGET_BYTES = 60 * 1024
"""A ``library`` page's result stays under this, so the whole reply is under 64 KiB."""
CHOICES = ("music_mode", "playlist", "guidance")


class Intentions:
    """Shows the music library and records the patient's choice for the session."""

    def __init__(
        self,
        *,
        config: Config,
        log: EventLog,
        session: SessionState,
        plans: Plans,
        library: MusicLibrary | None,
    ) -> None:
        self._config = config
        self._log = log
        self._session = session
        self._plans = plans
        self._library = library

    # --- library --------------------------------------------------------------------

    def library(self, cmd: Any) -> dict[str, Any]:
        """``library``: one page of the tracks (guidance marked), the named playlists, and the
        playlist length the protocol expects (``playlist_minutes``, for the tablet's total)."""
        scanning = self._library.rescan() if cmd.rescan and self._library else False
        catalog = self._library.catalog() if self._library else {"tracks": [], "playlists": []}
        guidance = set(self._config.audio.guidance.values())
        tracks = [
            t | {"kind": "guidance" if t["path"] in guidance else "music"}
            for t in catalog["tracks"]
        ]
        page = tracks[cmd.offset : cmd.offset + cmd.limit]
        playlists = list(catalog["playlists"])
        while _size(page, playlists) > REPLY_BUDGET_BYTES and page:
            page = page[: len(page) // 2]  # a page of long names: fewer tracks, same order
        while _size(page, playlists) > REPLY_BUDGET_BYTES and playlists:
            playlists.pop()
        after = cmd.offset + len(page)
        return {
            "tracks": page,
            "playlists": playlists,
            "total": len(tracks),
            "offset": cmd.offset,
            "next_offset": after if after < len(tracks) else None,
            "playlists_total": len(catalog["playlists"]),
            "rescan_started": scanning,
            "playlist_minutes": list(self._session.protocol.playlist_minutes),
        }

    # --- choose ---------------------------------------------------------------------

    def choose(self, cmd: Any) -> dict[str, Any]:
        """``choose``: amend the session's music mode, playlist and guidance."""
        s = self._session
        if s.plan is None:
            raise InvalidState("no session is running (start_session first)")
        changes = {k: getattr(cmd, k) for k in CHOICES if getattr(cmd, k) is not None}
        if not changes:
            raise InvalidPayload(
                "choose needs at least one of 'music_mode', 'playlist', 'guidance'"
            )
        plan = s.plan.model_copy(update=changes)
        if plan.music_mode == "music" and not plan.playlist:
            raise InvalidPayload("field 'playlist': music needs a playlist (paths or a name)")
        self._check_tracks(plan.playlist if plan.music_mode == "music" else [])
        tracks = self._plans.resolve_tracks(plan)
        duration, warnings = self._playlist_duration(plan)
        self._log.emit(
            "plan_amended",
            {
                "changes": changes,
                "tracks": tracks,
                "by": cmd.by,
                "playlist_duration_s": duration,
                "warnings": warnings,
            },
        )
        return {
            "music_mode": plan.music_mode,
            "playlist": plan.playlist,
            "guidance": plan.guidance,
            "playlist_duration_s": duration,
            "warnings": warnings,
        }

    def _check_tracks(self, playlist: Sequence[str] | str) -> None:
        """Refuse a playlist with missing tracks, naming every one of them."""
        if isinstance(playlist, str):
            return  # a named list: resolve_tracks names what is wrong with it
        missing: dict[str, str] = {}
        for index, track in enumerate(playlist):
            try:
                self._plans.resolve_one(track)
            except InvalidPayload as exc:
                missing[f"playlist.{index}"] = exc.message.removeprefix("field 'track': ")
        if missing:
            first = next(iter(missing))
            raise InvalidPayload(
                f"field '{first}': {missing[first]}"
                + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""),
                {"fields": missing},
            )

    def _playlist_duration(self, plan: SessionPlan) -> tuple[float | None, list[str]]:
        """The playlist's length (guidance not counted) and what the clinician should know."""
        if plan.music_mode != "music":
            return None, []
        music = self._plans.resolve_tracks(plan.model_copy(update={"guidance": "none"}))
        catalog = self._library.catalog() if self._library else {"tracks": []}
        known = {t["path"]: t["duration_s"] for t in catalog["tracks"]}
        unknown = [t for t in music if known.get(t) is None]
        if unknown:
            return None, [f"duration unknown for {unknown[0]}: the playlist's length is not known"]
        total = round(sum(known[t] for t in music), 3)
        least, most = self._session.protocol.playlist_minutes
        if not least * 60 <= total <= most * 60:
            return total, [
                f"the playlist lasts {total / 60:.1f} min; the protocol expects "
                f"{least:g}–{most:g} min ([protocol] playlist_minutes)"
            ]
        return total, []


def _size(tracks: list[dict[str, Any]], playlists: list[dict[str, Any]]) -> int:
    return len(json.dumps({"tracks": tracks, "playlists": playlists}, ensure_ascii=False).encode())
