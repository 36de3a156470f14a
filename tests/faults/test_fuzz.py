"""Fuzzing the room: (a) a hypothesis state machine over the real Room on fakes, (b) arbitrary
bytes on every ``cmd/<verb>`` topic of a real ``roomd --simulate`` over a real broker.

(a) Invariants, decided from the code and the contract:
- the infusion runs only in phase ``infusion`` (advance out of it needs it completed or
  stopped; emergency and end_session stop it);
- music plays only while a session is running (any active phase: the contract lets a
  clinician ``music play`` in every active phase, and a plan's guidance track plays even in
  no-music mode), never in idle/ended; leaving ``infusion`` stops it; the room's
  ``music.playing`` agrees with the player;
- the call state is one of the contract's and the lamp and the music's ducking follow it
  (idle: off/not ducked; placed, escalated: pulse; acknowledged: steady);
- every command gets exactly one reply (Harness.send asserts it), the journal's seqs are
  contiguous, the RoomState validates;
- a rejected command changes nothing (state minus ``updated_at`` and ``link.queued`` -- the
  ``command_rejected`` event it journals waits in the outbox while the link is down) and is
  journaled as ``command_rejected``; ``gate_not_met`` journals ``gate_checked`` too and must
  not change the phase.
"""

from __future__ import annotations

import json
import random
import shutil
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, ClassVar

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)
from pydantic import ValidationError

from controller.events import CallHeld, CallPressed, LinkDown, LinkUp, PlanReceived
from controller.models import COMMANDS, MAX_PAYLOAD_BYTES, RoomState
from tests.controller.harness import Harness, plan_dict
from tests.faults.faultkit import (
    ACTIVE_PHASES,
    assert_seqs_contiguous,
    fetch_journal,
    status,
    wait_until,
)
from tests.support.broker import Broker
from tests.support.daemon import RoomProcess
from tests.support.probe import Probe

SHM = "/dev/shm" if Path("/dev/shm").is_dir() else None
LAMP = {"idle": "off", "placed": "pulse", "escalated": "pulse", "acknowledged": "steady"}
VERBS = sorted(COMMANDS)
# The machine draws verbs with a bias towards those that move a session along.
WEIGHTED_VERBS = [*VERBS, *["advance"] * 4, "confirm", "start_infusion", "alarm_ack", "call_ack"]

# --- (a) the state machine ----------------------------------------------------------------

maybe = st.one_of(st.none(), st.just("__absent__"))
override = st.sampled_from([None, {"reason": "fuzz"}, {"reason": ""}, 5, {"why": "x"}])


def _args(data: st.DataObject, verb: str, alarm_ids: list[str]) -> dict[str, Any]:
    """Plausible and implausible arguments for ``verb``."""
    d = data.draw
    args: dict[str, Any] = {}
    match verb:
        case "start_session":
            if d(st.booleans()):
                args["plan"] = d(
                    st.sampled_from(
                        [
                            plan_dict(session_id=d(st.sampled_from(["s-1", "s-2", "s-3"]))),
                            plan_dict(
                                session_id=d(st.sampled_from(["s-4", "s-5"])),
                                music_mode="no_music",
                                guidance=d(st.sampled_from(["none", "breathing"])),
                                protocol={"infusion_minutes": d(st.sampled_from([1, 2, 40]))},
                            ),
                            {"session_id": "bad"},
                            "not a plan",
                        ]
                    )
                )
        case "advance" | "start_infusion":
            o = d(override)
            if o is not None:
                args["override"] = o
        case "confirm":
            args["item"] = d(st.sampled_from(["readiness", "consent", "iv_line", "bogus", 3]))
        case "stop_infusion" | "emergency":
            if d(st.integers(0, 4)):
                args["reason"] = d(st.sampled_from(["fuzz", "", "x" * 600]))
        case "end_session":
            if d(st.booleans()):
                args["reason"] = d(st.sampled_from(["fuzz", ""]))
        case "music":
            args["action"] = d(
                st.sampled_from(
                    ["preview", "play", "pause", "resume", "stop", "skip", "volume", "dance"]
                )
            )
            if d(st.booleans()):
                args["track"] = d(st.sampled_from(["a.ogg", "", "b.ogg"]))
            if d(st.booleans()):
                args["level"] = d(st.sampled_from([0.0, 0.5, 1.0, 1.5, -0.1]))
            if d(st.booleans()):
                args["output"] = d(st.sampled_from(["headphones", "speakers", "both", "ceiling"]))
            if d(st.booleans()):
                args["offset_s"] = d(st.sampled_from([0, 12.5, -1]))
        case "lights":
            if d(st.booleans()):
                args["scene"] = d(st.sampled_from(["infusion", "idle", "emergency", "disco"]))
            if d(st.booleans()):
                args["level"] = d(st.sampled_from([0.0, 0.3, 1.0, 2.0]))
            if d(st.booleans()):
                args["fade_s"] = d(st.sampled_from([0, 5, 601]))
        case "alarm_ack":
            args["alarm_id"] = d(st.sampled_from([*alarm_ids, "no-such-alarm"]))
        case "alarm_silence":
            args["seconds"] = d(st.sampled_from([30, 120, 0, 121, -5, "long"]))
        case "record_vitals":
            for key, values in (
                ("sys", [None, 75, 122, 200, 29, 301]),
                ("dia", [None, 60, 78, 120, 130]),
                ("hr", [None, 40, 72, 130, 9]),
                ("spo2", [None, 85, 97, 101]),
            ):
                v = d(st.sampled_from(values))
                if v is not None:
                    args[key] = v
        case "checkin":
            if d(st.booleans()):
                args["note"] = d(st.sampled_from(["calm", "", "y" * 501]))
        case "events":
            args["since_seq"] = d(st.sampled_from([0, 1, 5, -1]))
            args["limit"] = d(st.sampled_from([1, 10, 1000, 1001]))
        case _:
            pass
    if d(st.integers(0, 9)) == 0:
        args["unexpected_field"] = True  # extra="forbid": invalid_payload
    return args


class RoomMachine(RuleBasedStateMachine):
    """Commands, time, vitals, NIBP, call button, audio and link events in any order."""

    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="roomfuzz-", dir=SHM))
        self.h = Harness(self.dir)
        self.phase = self.h.room.phase
        self.checked_seq = 0
        self.commands = 0
        self.refusals = 0
        self.sessions = 0

    def teardown(self) -> None:
        self.h.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def _snapshot(self) -> dict[str, Any]:
        state = self.h.room.state().model_dump(mode="json")
        state.pop("updated_at")
        state["link"].pop("queued")
        return state

    # --- rules ------------------------------------------------------------------------

    @rule(data=st.data(), verb=st.sampled_from(WEIGHTED_VERBS))
    def command(self, data: st.DataObject, verb: str) -> None:
        alarm_ids = [a.id for a in self.h.room.alarms.current()]
        self._command(verb, _args(data, verb, alarm_ids))

    SESSION_ARGS: ClassVar[dict[str, Any]] = {
        "depth": st.integers(0, 11),
        "mode": st.sampled_from(["music", "no_music"]),
        "guidance": st.sampled_from(["none", "breathing"]),
        "minutes": st.sampled_from([1, 2, 40]),
    }

    @initialize(**SESSION_ARGS)
    def begin(self, depth: int, mode: str, guidance: str, minutes: int) -> None:
        """Most examples start inside a session, some at its very beginning."""
        self.fresh_session(depth, mode, guidance, minutes)

    @precondition(lambda self: self.h.room.phase in ("idle", "ended"))
    @rule(**SESSION_ARGS)
    def new_session(self, depth: int, mode: str, guidance: str, minutes: int) -> None:
        self.fresh_session(depth, mode, guidance, minutes)

    def fresh_session(self, depth: int, mode: str, guidance: str, minutes: int) -> None:
        """A new session taken ``depth`` well-formed steps towards a running infusion."""
        self.sessions += 1
        plan = plan_dict(
            session_id=f"fz-{self.sessions}",
            music_mode=mode,
            guidance=guidance,
            protocol={"infusion_minutes": minutes},
        )
        steps: list[tuple[str, dict[str, Any]]] = [
            ("start_session", {"plan": plan}),
            ("advance", {}),
            ("advance", {}),
            ("advance", {}),
            ("confirm", {"item": "readiness"}),
            ("confirm", {"item": "consent"}),
            ("record_vitals", {"sys": 120, "dia": 76, "hr": 70, "spo2": 97}),
            ("advance", {"override": {"reason": "fuzz"}}),
            ("confirm", {"item": "iv_line"}),
            ("start_infusion", {}),
            ("status", {}),
        ]
        for verb, args in steps[:depth]:
            self._command(verb, args)

    def _command(self, verb: str, args: dict[str, Any]) -> None:
        before = self._snapshot()
        last_seq = self.h.journal.last_seq
        reply = self.h.cmd(verb, **args)  # asserts exactly one reply
        self.commands += 1
        assert len(self.h.link.replies) == self.commands
        if reply.ok:
            return
        assert reply.error is not None
        self.refusals += 1
        new = self.h.journal.events_since(last_seq + 1, 1000)
        # Refusals are coalesced: journaled at once, or counted until the interval is over
        # (then one command_rejected with a count); none is lost.
        assert {e.type for e in new} <= {"gate_checked", "command_rejected"}, new
        journaled = self.h.journal.events_since(1, 100_000)
        counted = sum(e.data.get("count", 1) for e in journaled if e.type == "command_rejected")
        assert counted + self.h.room.commands.held_refusals == self.refusals
        after = self._snapshot()
        if reply.error.code == "gate_not_met":
            assert [e.type for e in new][:1] == ["gate_checked"]
            assert after["phase"] == before["phase"]
        assert after == before, f"{verb} {args} rejected ({reply.error.code}) but changed state"

    @rule(
        session_id=st.sampled_from(["s-1", "s-2", "s-6"]),
        garbage=st.booleans(),
        mode=st.sampled_from(["music", "no_music"]),
    )
    def plan(self, session_id: str, garbage: bool, mode: str) -> None:
        payload = (
            b'{"session_id": 7}'
            if garbage
            else json.dumps(plan_dict(session_id=session_id, music_mode=mode)).encode()
        )
        self.h.deliver(PlanReceived(payload))

    @rule(
        seconds=st.sampled_from([1, 5, 11, 30, 61, 121, 301, 601, 1201, 2401]),
        samples=st.sampled_from([0, 1, 5, 20]),
        spo2=st.sampled_from([97, 90, 85, None]),
    )
    def time_passes(self, seconds: int, samples: int, spo2: int | None) -> None:
        if samples == 0 or spo2 is None:
            self.h.clock.advance(seconds)
            self.h.room.tick()
            self.h.drain()
        else:
            self.h.run(seconds, step=seconds / samples, spo2=spo2)

    @rule(
        spo2=st.sampled_from([None, 70, 85, 91, 97, 100]),
        hr=st.sampled_from([None, 30, 74, 140]),
        quality=st.sampled_from(["ok", "ok", "sensor_off", "searching", "no_sensor"]),
    )
    def vitals(self, spo2: int | None, hr: int | None, quality: str) -> None:
        self.h.vitals(spo2, hr, quality)

    @rule(
        sys=st.sampled_from([85, 120, 185, 200]),
        dia=st.sampled_from([50, 78, 112]),
        fail=st.booleans(),
    )
    def nibp_completes(self, sys: int, dia: int, fail: bool) -> None:
        if fail:
            self.h.nibp.fail("weak_signal")
        else:
            self.h.nibp.finish(sys, dia, 70)
        self.h.drain()

    @rule(hold=st.booleans())
    def call_button(self, hold: bool) -> None:
        self.h.deliver(CallHeld() if hold else CallPressed())

    @rule(whole=st.booleans())
    def audio_finishes(self, whole: bool) -> None:
        if whole:
            self.h.audio.finish()
        else:
            self.h.audio.finish_track()
        self.h.drain()

    @precondition(lambda self: self.h.room.log.online)
    @rule()
    def link_down(self) -> None:
        self.h.deliver(LinkDown())

    @precondition(lambda self: not self.h.room.log.online)
    @rule()
    def link_up(self) -> None:
        self.h.deliver(LinkUp())

    # --- invariants -------------------------------------------------------------------

    @invariant()
    def room_is_consistent(self) -> None:
        room, h = self.h.room, self.h
        state = room.state()
        RoomState.model_validate(state.model_dump(mode="json"))
        if state.infusion.running:
            assert state.phase == "infusion", state.phase
        if state.music.playing:
            assert state.phase in ACTIVE_PHASES, f"music playing in {state.phase}"
        if self.phase == "infusion" and state.phase != "infusion":
            assert not state.music.playing, f"music still playing after infusion -> {state.phase}"
        assert state.music.playing == h.audio.playing, (state.music.playing, h.audio.playing)
        call = state.call.state
        assert call in LAMP
        assert h.button.lamp == LAMP[call], (call, h.button.lamp)
        assert h.audio.ducked == (call != "idle"), (call, h.audio.ducked)
        new = h.journal.events_since(self.checked_seq + 1, 100_000)
        assert [e.seq for e in new] == list(
            range(self.checked_seq + 1, self.checked_seq + 1 + len(new))
        )
        if new:
            self.checked_seq = new[-1].seq
        assert self.checked_seq == h.journal.last_seq
        self.phase = state.phase


RoomMachine.TestCase.settings = settings(
    max_examples=60,
    stateful_step_count=40,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
test_room_state_machine = RoomMachine.TestCase


def test_call_placed_before_a_session_is_not_silently_dropped(tmp_path: Path) -> None:
    """Found by the state machine: a call placed in ``idle`` (a patient already in the room)
    vanishes from the state at ``start_session`` -- no ``call_cleared``, the lamp still
    pulses, the music stays ducked -- and 30 s later comes back as ``call_escalated``."""
    h = Harness(tmp_path)
    h.button.press()
    h.drain()
    assert h.room.state().call.state == "placed"
    h.ok("start_session", plan=plan_dict())
    call = h.room.state().call.state
    assert h.button.lamp == LAMP[call], f"call {call!r} but the lamp is {h.button.lamp!r}"
    assert h.audio.ducked == (call != "idle")
    if call == "idle":
        assert "call_cleared" in h.types(), "the call disappeared without call_cleared"
    h.close()


# --- (b) arbitrary bytes on every cmd/<verb> of the real daemon ----------------------------

SEED = 7_340_033
PER_VERB = 16


def _is_valid(verb: str, payload: bytes) -> bool:
    try:
        obj = json.loads(payload)
        if not isinstance(obj, dict):
            return False
        COMMANDS[verb].model_validate(obj)
        return True
    except (ValueError, ValidationError, RecursionError, UnicodeDecodeError):
        return False


def _payloads(rng: random.Random, verb: str) -> list[tuple[bytes, str | None]]:
    """(payload, request_id the room can read or None) -- never a valid command."""
    out: list[tuple[bytes, str | None]] = []

    def rid() -> str:
        return f"fz-{uuid.UUID(int=rng.getrandbits(128)).hex[:16]}"

    junk_values: list[Any] = [None, True, -1, 1e308, "", "x" * 70, [], {}, [1, [2, [3]]], "\u0000"]
    while len(out) < PER_VERB:
        kind = rng.randrange(9)
        if kind == 0:  # raw bytes, often not UTF-8
            out.append((bytes(rng.getrandbits(8) for _ in range(rng.randrange(0, 300))), None))
        elif kind == 1:  # JSON, not an object
            v = rng.choice(['"s"', "[1,2]", "42", "null", "true", "-0.0e-0", '"\\ud800"'])
            out.append((v.encode(), None))
        elif kind == 2:  # an object whose request_id cannot be read
            bad = rng.choice([None, 7, ["r"], "", "r" * 65])
            out.append((json.dumps({"request_id": bad, "by": "fz"}).encode(), None))
        elif kind == 3:  # readable request_id, wrong or unknown fields
            body: dict[str, Any] = {"request_id": rid(), "by": rng.choice(["fz", "", 5, None])}
            for _ in range(rng.randrange(1, 4)):
                key = rng.choice(["item", "reason", "seconds", "level", "plan", "zz", "limit"])
                body[key] = rng.choice(junk_values)
            p = json.dumps(body).encode()
            if not _is_valid(verb, p):
                out.append((p, body["request_id"]))
        elif kind == 4:  # truncated or corrupted JSON
            p = json.dumps({"request_id": rid(), "by": "fz", "x": 1}).encode()
            cut = rng.randrange(1, len(p) - 1)
            out.append((p[:cut] + bytes([rng.getrandbits(8)]), None))
        elif kind == 5:  # deeply nested (the JSON parser's recursion limit)
            out.append((b"[" * rng.randrange(2_000, 60_000), None))
        elif kind == 6:  # over the contract's 64 KiB
            pad = "a" * (MAX_PAYLOAD_BYTES + rng.randrange(1, 2048))
            out.append((json.dumps({"request_id": rid(), "by": "fz", "pad": pad}).encode(), None))
        elif kind == 7:  # request_id with control characters / escapes
            r = rid()[:12] + rng.choice(["\u0000", "\n", "\u202e", "\\", '"'])
            body = {"request_id": r, "by": "fz", "unexpected": 1}
            out.append((json.dumps(body).encode(), r))
        else:  # valid envelope, type confusion in every field
            body = {"request_id": rid(), "by": "fz", "sent_at": rng.choice(junk_values)}
            p = json.dumps(body).encode()
            if not _is_valid(verb, p):
                out.append((p, body["request_id"]))
    return out


def test_arbitrary_bytes_on_every_verb(broker: Broker, tmp_path: Path) -> None:
    room = RoomProcess(tmp_path, broker.port, time_scale=60)
    probe = Probe(broker.port, room.root)
    room.start()
    try:
        probe.wait_for(
            lambda: probe.retained.get(f"{room.root}/status") == b"online", 30, "room online"
        )
        # Mid-session, so a command that slipped through could change the phase.
        plan = plan_dict(session_id="fuzz-1", playlist=["one.ogg"])
        assert probe.ok("start_session", plan=plan) == {"session_id": "fuzz-1"}
        before = status(probe)
        assert before["phase"] == "check_in"
        rng = random.Random(SEED)
        sent: list[tuple[str, bytes, str | None]] = []
        for verb in VERBS:
            for payload, rid in _payloads(rng, verb):
                sent.append((verb, payload, rid))
        rng.shuffle(sent)
        t0 = time.monotonic()
        replies_before = len(probe.payloads("replies"))
        for verb, payload, _ in sent:
            probe.publish(f"cmd/{verb}", payload)
        # Every message gets exactly one reply (with request_id "" when it could not be read).
        wait_until(
            lambda: len(probe.payloads("replies")) - replies_before >= len(sent),
            60,
            f"{len(sent)} replies",
            poll=0.2,
        )
        took = time.monotonic() - t0
        replies = probe.payloads("replies")[replies_before:]
        by_rid = {r["request_id"]: r for r in replies}
        readable = [(v, rid) for v, _, rid in sent if rid is not None]
        unanswered = [(v, rid) for v, rid in readable if rid not in by_rid]
        codes: dict[str, int] = {}
        for r in replies:
            code = r["error"]["code"] if not r["ok"] else "ok"
            codes[code] = codes.get(code, 0) + 1
        print(
            f"\n[fuzz] {len(sent)} payloads on {len(VERBS)} verbs in {took:.1f} s; "
            f"replies {len(replies)}; codes {dict(sorted(codes.items()))}; "
            f"readable request_ids {len(readable)}, unanswered {len(unanswered)}"
        )
        assert room.alive(), room.logtext()[-3000:]
        assert unanswered == [], unanswered[:5]
        assert all(not r["ok"] for r in replies), [r for r in replies if r["ok"]][:3]
        assert all(not by_rid[rid]["ok"] for _, rid in readable)
        assert len(replies) == len(sent)
        after = status(probe)
        for key in ("phase", "session_id", "infusion", "gates", "call"):
            assert after[key] == before[key], key
        journal = fetch_journal(probe)
        assert_seqs_contiguous([e["seq"] for e in journal], "journal after the storm")
        rejected = [e for e in journal if e["type"] == "command_rejected"]
        # coalesced (issue 15): each refusal counted once, in far fewer events
        assert sum(e["data"].get("count", 1) for e in rejected) >= len(sent)
        assert len(rejected) < len(sent) / 2
        assert "core failed" not in room.logtext()
    finally:
        room.stop()
        probe.close()


@pytest.mark.parametrize(
    "payload",
    [
        b'{"request_id": "\\ud800-lone-surrogate", "by": "fz"}',
        b'{"request_id": "ok-id", "by": "fz", "reason": "\\udfff"}',
    ],
    ids=["surrogate-request-id", "surrogate-reason"],
)
def test_lone_surrogate_escapes_are_refused_cleanly(tmp_path: Path, payload: bytes) -> None:
    """JSON may escape a lone UTF-16 surrogate (``"\\ud800"``); Python decodes it into a str
    that cannot be encoded to UTF-8. Such a command must be refused with a reply like any
    other bad payload, and must not leave an event in the journal that cannot be published."""
    from controller.events import CommandReceived

    h = Harness(tmp_path)
    before = len(h.link.replies)
    try:
        h.deliver(CommandReceived("emergency", payload))
    except Exception as exc:  # the daemon's loop would log and drop it: no reply at all
        pytest.fail(f"the command escaped the room's handler: {exc!r}")
    assert len(h.link.replies) == before + 1, "no reply"
    reply = h.link.replies[-1][0]
    assert not reply.ok and reply.error is not None
    assert reply.error.code == "invalid_payload", reply.error
    reply.to_json()  # publishable
    for event in h.journal.events_since(1, 1000):
        event.to_json()  # every journaled event can be published
    h.close()


def test_poisoned_request_id_does_not_jam_the_real_room(broker: Broker, tmp_path: Path) -> None:
    """One 40-byte command with a lone-surrogate request_id, then a broker reconnect.

    The room must answer it (an error reply), keep answering ``events``, and after the
    reconnect keep publishing its state: the journal must never hold an event the outbox
    cannot send, or the re-send after every reconnect fails on it forever.
    """
    room = RoomProcess(tmp_path, broker.port, time_scale=60)
    probe = Probe(broker.port, room.root)
    room.start()
    problems: list[str] = []
    try:
        probe.wait_for(
            lambda: probe.retained.get(f"{room.root}/status") == b"online", 30, "room online"
        )
        probe.ok("start_session", plan=plan_dict(session_id="poison-1", playlist=["one.ogg"]))
        probe.publish("cmd/status", b'{"request_id": "\\ud800-x", "by": "fz"}')
        assert status(probe)["phase"] == "check_in"  # the room still answers a good command
        if not [r for r in probe.payloads("replies") if r["verb"] == "status" and not r["ok"]]:
            problems.append("no error reply to the poisoned command")
        try:
            journal = fetch_journal(probe, timeout=8)
            assert_seqs_contiguous([e["seq"] for e in journal], "journal")
        except AssertionError as exc:
            problems.append(f"events since 1: {exc}")
        broker.stop()
        time.sleep(1.0)
        broker.start()
        wait_until(lambda: room.logtext().count("connected to") >= 2, 20, "the room reconnected")
        time.sleep(1.0)
        mark = len(probe.payloads("state"))
        probe.ok("lights", level=0.3)
        try:
            wait_until(
                lambda: any(s["lighting"]["level"] == 0.3 for s in probe.payloads("state")[mark:]),
                5,
                "the state with the new light level",
            )
        except AssertionError as exc:
            problems.append(f"after the reconnect: {exc}")
        failures = room.logtext().count("core failed")
        if failures:
            problems.append(f"the core loop failed {failures} times (log lines with tracebacks)")
        assert room.alive()
        assert problems == []
    finally:
        room.stop()
        probe.close()
