"""The session's phases, which verbs each allows, and the refusal messages."""

from __future__ import annotations

import typing

import pytest

from controller.config import AlarmsSection, _default_scenes
from controller.models import COMMANDS, Phase
from controller.phases import (
    ACTIVE,
    GATE_ON_ENTRY,
    NEXT,
    PHASES,
    VERB_PHASES,
    wrong_phase_message,
)

# The contract's order, as room-api.md writes it.
CONTRACT_ORDER = (
    "idle → check_in → integration → intentions → pre_infusion → infusion → debrief → "
    "preparation → discharge → ended"
)
LIMITS = AlarmsSection()


def test_phases_follow_the_contract_order() -> None:
    contract = tuple(p.strip() for p in CONTRACT_ORDER.split("→"))
    assert contract == PHASES
    assert set(PHASES) == set(typing.get_args(Phase))
    assert set(PHASES) <= set(_default_scenes())  # every phase has a default scene


def test_active_phases_are_those_with_a_patient() -> None:
    assert set(PHASES) - ACTIVE == {"idle", "ended"}


def test_next_walks_the_phases_in_order() -> None:
    walked = ["check_in"]
    while walked[-1] in NEXT:
        walked.append(NEXT[walked[-1]])
    assert tuple(walked) == PHASES[1:]
    assert "idle" not in NEXT
    assert "ended" not in NEXT
    assert NEXT["pre_infusion"] == "infusion"
    assert NEXT["discharge"] == "ended"


def test_gates_on_entry() -> None:
    assert GATE_ON_ENTRY == {"infusion": "safety", "ended": "discharge"}


def test_verb_phases_covers_every_verb() -> None:
    assert set(VERB_PHASES) == set(COMMANDS)
    for verb, phases in VERB_PHASES.items():
        assert phases, verb
        assert phases <= set(PHASES), verb


def test_verb_phases_key_rules() -> None:
    assert VERB_PHASES["start_session"] == {"idle", "ended"}
    assert VERB_PHASES["start_infusion"] == {"infusion"}
    assert VERB_PHASES["discharge"] == {"discharge"}
    # The contract: emergency can be declared in any phase; end_session from any other phase.
    assert VERB_PHASES["emergency"] == set(PHASES)
    assert VERB_PHASES["end_session"] == ACTIVE
    for verb in ("status", "events", "call_ack", "call_clear", "alarm_ack", "alarm_silence"):
        assert VERB_PHASES[verb] == set(PHASES), verb


@pytest.mark.parametrize(
    ("verb", "phase", "message"),
    [
        (
            "start_infusion",
            "intentions",
            "Can't start_infusion while in intentions: advance to pre_infusion first",
        ),
        (
            "start_infusion",
            "check_in",
            "Can't start_infusion while in check_in: advance to integration first",
        ),
        ("discharge", "debrief", "Can't discharge while in debrief: advance to preparation first"),
        (
            "advance",
            "idle",
            "Can't advance while in idle: no session is running (start_session first)",
        ),
        (
            "discharge",
            "ended",
            "Can't discharge while in ended: no session is running (start_session first)",
        ),
        (
            "start_session",
            "infusion",
            "Can't start_session while in infusion: a session is running "
            "(end_session or discharge first)",
        ),
        (
            "start_infusion",
            "debrief",
            "Can't start_infusion while in debrief: only allowed in infusion",
        ),
        (
            "confirm",
            "ended",
            "Can't confirm while in ended: no session is running (start_session first)",
        ),
    ],
)
def test_wrong_phase_message(verb: str, phase: Phase, message: str) -> None:
    assert wrong_phase_message(verb, phase) == message


def test_every_refusal_names_the_verb_and_the_phase_and_says_what_to_do() -> None:
    for verb, allowed in VERB_PHASES.items():
        for phase in PHASES:
            if phase in allowed:
                continue
            text = wrong_phase_message(verb, phase)
            head = f"Can't {verb} while in {phase}: "
            assert text.startswith(head), text
            advice = text[len(head) :]
            assert advice, text
            if advice.startswith("advance to "):
                target = advice.removeprefix("advance to ").removesuffix(" first")
                assert target == NEXT[phase]
                # Advancing is a step towards a phase that allows the verb.
                later = PHASES[PHASES.index(target) :]
                assert any(p in allowed for p in later), text
            elif advice.startswith("only allowed in "):
                listed = advice.removeprefix("only allowed in ").split(", ")
                assert set(listed) == allowed, text
