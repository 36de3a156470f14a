"""Plans alone: the clinic's retained plan taken or refused, and a plan's tracks resolved."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from audio.fake import FakeLibrary
from controller.config import Config
from controller.errors import InvalidPayload
from controller.events import PlanReceived
from controller.fit import ENVELOPE_BYTES, EVENT_BUDGET, MAX_REASONS, encoded_size
from controller.models import SessionPlan, digest
from controller.plans import Plans
from tests.controller.bench import Bench
from tests.controller.harness import make_config, plan_dict

BREATHING = "guidance/breathing.ogg"  # [audio.guidance] default


class Desk:
    """Plans on a bench, with a library missing the tracks named."""

    def __init__(
        self,
        data_dir: Path,
        config: Config | None = None,
        *,
        missing: tuple[str, ...] = (),
        library: bool = True,
    ) -> None:
        self.b = Bench(data_dir, config)
        self.plans = Plans(
            config=self.b.config, journal=self.b.journal, log=self.b.log, session=self.b.facts,
            library=FakeLibrary(missing) if library else None,
        )  # fmt: skip

    def receive(self, payload: bytes | dict[str, Any]) -> None:
        raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.plans.on_plan(PlanReceived(raw))

    def rejected(self) -> list[list[str]]:
        return [e["reasons"] for e in self.b.events("plan_rejected")]


@pytest.fixture
def desk(tmp_path: Path) -> Iterator[Desk]:
    d = Desk(tmp_path)
    yield d
    d.b.close()


def plan(**overrides: Any) -> SessionPlan:
    return SessionPlan.model_validate(plan_dict(**overrides))


# --- the retained plan --------------------------------------------------------------------------


def test_a_valid_plan_configures_the_next_session(desk: Desk) -> None:
    desk.receive(plan_dict())
    (event,) = [e for e in desk.b.all_events() if e.type == "session_configured"]
    assert event.session_id == "s-001", "stamped with the plan's session, before it starts"
    assert event.data == {
        "plan": plan().model_dump(mode="json"),
        "tracks": ["a.ogg", "b.ogg", "c.ogg"],
    }
    assert desk.b.facts.pending_plan == plan()
    assert desk.b.facts.pending_tracks == ["a.ogg", "b.ogg", "c.ogg"]


def test_the_same_retained_plan_again_is_handled_once(desk: Desk) -> None:
    payload = json.dumps(plan_dict()).encode()
    desk.receive(payload)
    desk.receive(payload)
    assert len(desk.b.events("session_configured")) == 1
    assert desk.b.journal.get_meta("last_plan_digest") == digest(payload)
    desk.receive(plan_dict(session_id="s-002"))
    assert [e["plan"]["session_id"] for e in desk.b.events("session_configured")] == [
        "s-001",
        "s-002",
    ]


def test_the_digest_outlives_a_restart(tmp_path: Path) -> None:
    payload = json.dumps(plan_dict()).encode()
    desk = Desk(tmp_path)
    desk.receive(payload)
    desk.b.close()
    again = Desk(tmp_path)  # the same journal, a new room: the broker hands the plan again
    again.receive(payload)
    assert len(again.b.events("session_configured")) == 1
    again.b.close()


def test_a_refused_plan_is_refused_once(desk: Desk) -> None:
    desk.receive(b"{not json")
    desk.receive(b"{not json")
    assert len(desk.rejected()) == 1


def test_a_cleared_retained_plan_is_ignored(desk: Desk) -> None:
    desk.receive(plan_dict())
    desk.receive(b"")
    assert desk.b.types() == ["session_configured"]
    assert desk.b.journal.get_meta("last_plan_digest") != digest(b"")
    assert desk.b.facts.pending_plan == plan()


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"{not json", "payload is not UTF-8 JSON"),
        (b"[1, 2]", "payload must be a JSON object, not list"),
        (plan_dict(session_number=9), "session_number: Value error, session_number must be 1..6"),
        (plan_dict(patient_ref="Jane Doe"), "patient_ref: Value error, patient_ref must be an"),
        (plan_dict(music_mode="loud"), "music_mode: Input should be 'music' or 'no_music'"),
        (plan_dict(protocol={"nibp_interval_minutes": 5}), "protocol.nibp_interval_minutes:"),
        (plan_dict(extra=1), "extra: Extra inputs are not permitted"),
    ],
)
def test_rejection_reasons_name_the_problem(
    desk: Desk, payload: bytes | dict[str, Any], reason: str
) -> None:
    desk.receive(payload)
    (reasons,) = desk.rejected()
    assert any(r.startswith(reason) for r in reasons), reasons
    assert desk.b.events("session_configured") == []
    assert desk.b.facts.pending_plan is None


def test_every_problem_is_listed(desk: Desk) -> None:
    desk.receive(plan_dict(session_number=0, patient_ref="A B", guidance="sing"))
    (reasons,) = desk.rejected()
    assert [r.split(":")[0] for r in reasons] == ["patient_ref", "session_number", "guidance"]


def test_a_refused_plan_keeps_the_one_before(desk: Desk) -> None:
    desk.receive(plan_dict())
    desk.receive(plan_dict(session_number=9))
    assert desk.b.facts.pending_plan == plan()


def test_a_running_session_refuses_a_plan(desk: Desk) -> None:
    desk.b.start_session()
    desk.receive(plan_dict(session_id="s-002"))
    assert desk.rejected() == [["a session (s-001) is running in this room; end it first"]]
    assert desk.b.facts.pending_plan is None


def test_after_the_session_a_plan_is_taken(desk: Desk) -> None:
    desk.b.start_session()
    desk.b.enter("ended")
    desk.receive(plan_dict(session_id="s-002"))
    assert desk.b.facts.pending_plan == plan(session_id="s-002")


def test_a_missing_track_is_a_reason_naming_the_field(tmp_path: Path) -> None:
    desk = Desk(tmp_path, missing=("b.ogg",))
    desk.receive(plan_dict())
    assert desk.rejected() == [["field 'playlist': missing music file 'b.ogg'"]]
    desk.receive(plan_dict(session_id="s-2", playlist=["a.ogg"], guidance="breathing"))
    assert desk.b.events("session_configured")[-1]["tracks"] == [BREATHING, "a.ogg"]
    desk.b.close()


def test_a_missing_guidance_file_names_the_guidance(tmp_path: Path) -> None:
    desk = Desk(tmp_path, missing=(BREATHING,))
    desk.receive(plan_dict(guidance="breathing"))
    assert desk.rejected() == [[f"field 'guidance': missing music file '{BREATHING}'"]]
    desk.b.close()


# --- resolving a plan's tracks ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "guidance", "tracks"),
    [
        ("music", "none", ["a.ogg", "b.ogg", "c.ogg"]),
        ("music", "breathing", [BREATHING, "a.ogg", "b.ogg", "c.ogg"]),
        ("music", "body_scan", ["guidance/body_scan.ogg", "a.ogg", "b.ogg", "c.ogg"]),
        ("no_music", "breathing", [BREATHING]),
        ("no_music", "none", []),
    ],
)
def test_guidance_then_the_playlist(
    desk: Desk, mode: str, guidance: str, tracks: list[str]
) -> None:
    assert desk.plans.resolve_tracks(plan(music_mode=mode, guidance=guidance)) == tracks


def test_guidance_not_configured_names_the_field(tmp_path: Path) -> None:
    desk = Desk(tmp_path, make_config(audio={"guidance": {"breathing": "b.ogg"}}))
    with pytest.raises(InvalidPayload, match="field 'guidance': no 'body_scan' track configured"):
        desk.plans.resolve_tracks(plan(guidance="body_scan"))
    assert desk.plans.resolve_tracks(plan(guidance="breathing"))[0] == "b.ogg"
    desk.b.close()


def test_without_a_library_the_names_are_taken_as_given(tmp_path: Path) -> None:
    desk = Desk(tmp_path, library=False)
    assert desk.plans.resolve_tracks(plan(playlist="evening")) == ["evening"]
    assert desk.plans.resolve_tracks(plan()) == ["a.ogg", "b.ogg", "c.ogg"]
    assert desk.plans.resolve_one("x.ogg") == "x.ogg"
    desk.b.close()


def test_resolve_one_names_the_track_field(tmp_path: Path) -> None:
    desk = Desk(tmp_path, missing=("gone.ogg",))
    assert desk.plans.resolve_one("a.ogg") == "a.ogg"
    with pytest.raises(
        InvalidPayload, match=re.escape("field 'track': missing music file 'gone.ogg'")
    ):
        desk.plans.resolve_one("gone.ogg")
    desk.b.close()


# --- hostile plans (issue 15): every event they make fits the broker ---------------------------


def test_a_plan_with_1500_bad_entries_is_refused_in_a_bounded_event(desk: Desk) -> None:
    raw = json.dumps(plan_dict(playlist=[""] * 1500), separators=(",", ":")).encode()
    assert len(raw) < 5000  # the issue: ~3 KB of plan, ~104 KB of event
    desk.receive(raw)
    (reasons,) = desk.rejected()
    assert len(reasons) == MAX_REASONS + 1
    assert re.fullmatch(r"… and 14\d\d more problems", reasons[-1])  # one per entry (and the union)
    (event,) = [e for e in desk.b.all_events() if e.type == "plan_rejected"]
    assert len(event.to_json()) < EVENT_BUDGET


def test_a_plan_too_large_to_record_is_refused_saying_so(desk: Desk) -> None:
    playlist = [f"infusion/{i:04d}-" + "t" * 180 + ".ogg" for i in range(240)]
    raw = json.dumps(plan_dict(playlist=playlist)).encode()
    assert 40_000 < len(raw) < 65_536
    desk.receive(raw)
    (reasons,) = desk.rejected()
    assert reasons[0].startswith("field 'playlist': the plan and its 240 tracks take")
    assert desk.b.events("session_configured") == []


def test_the_largest_plan_taken_makes_events_that_fit(desk: Desk) -> None:
    playlist = [f"infusion/{i:04d}-" + "t" * 180 + ".ogg" for i in range(140)]
    desk.receive(plan_dict(playlist=playlist))
    assert desk.rejected() == []
    (event,) = [e for e in desk.b.all_events() if e.type == "session_configured"]
    started = {**event.data, "by": "x" * 64}  # session_started carries the same and `by`
    assert len(event.to_json()) < EVENT_BUDGET
    assert encoded_size(started) + ENVELOPE_BYTES < EVENT_BUDGET
