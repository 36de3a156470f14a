"""The room: its parts put together, and the loop's entry points.

``Room`` owns no decisions of its own. It wires the parts — the session machine, monitoring,
calls, outputs, the alarm engine, health, plans and the event log — and declares in tables
which part handles each inbox message, each verb and each timer. ``apply`` is the room's one
fold: every journaled event goes through it, live and when a restart replays the journal.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from controller import events as ev
from controller.alarms import AlarmEngine
from controller.calls import Calls
from controller.clinical import Clinical
from controller.commands import CommandDesk, Verb
from controller.config import Config
from controller.eventlog import EventLog, Listener
from controller.gates import Gates
from controller.health import Health
from controller.intentions import Intentions
from controller.journal import Journal
from controller.models import (
    COMMANDS,
    CallState,
    Devices,
    Event,
    InfusionState,
    LightingState,
    LinkState,
    MusicState,
    Phase,
    ProtocolInfo,
    RoomState,
)
from controller.models import (
    Gates as GatesState,
)
from controller.monitoring import Monitoring
from controller.outputs import Annunciation, Lights, Music
from controller.phases import VERB_PHASES
from controller.plans import Plans
from controller.ports import (
    Annunciator,
    AudioPlayer,
    CallLamp,
    ClinicLink,
    Clock,
    Lighting,
    MusicLibrary,
    Nibp,
    SessionRecords,
)
from controller.session import SessionMachine
from controller.state import SessionState
from controller.timers import Timers

log = logging.getLogger("roomd.core")

STALE_CHECK_S = 1.0
"""Staleness of the oximeter's data is judged at least this often in an active phase."""
CLOCK_BEHIND_S = 2.0
"""A wall clock this far behind the journal's newest event at start was stepped back."""


class Room:
    """One treatment room, composed of its parts; fed one inbox message at a time."""

    def __init__(
        self,
        config: Config,
        *,
        clock: Clock,
        journal: Journal,
        link: ClinicLink,
        lighting: Lighting | None = None,
        call_lamp: CallLamp | None = None,
        annunciator: Annunciator | None = None,
        nibp: Nibp | None = None,
        audio: AudioPlayer | None = None,
        library: MusicLibrary | None = None,
        devices: dict[str, str] | None = None,
        heartbeat_s: float = 10.0,
        simulator: Callable[[ev.SimAction], None] | None = None,
        listeners: Sequence[Listener] = (),
        records: SessionRecords | None = None,
        command_max_age_s: float | None = None,
    ) -> None:
        self.config = config
        self.clock = clock
        self.journal = journal
        self.timers = Timers(clock)
        self.log = EventLog(journal, clock, link, heartbeat_s=heartbeat_s, listeners=listeners)
        emit = self.log
        self.alarms = AlarmEngine(clock, config.alarms, emit.emit)
        facts = SessionState(config, clock)
        self.health = Health(emit, self.alarms, devices or {})
        self.monitoring = Monitoring(
            clock=clock, journal=journal, log=emit, timers=self.timers, alarms=self.alarms,
            session=facts, health=self.health, nibp=nibp,
            manual=config.room.monitoring == "manual",
        )  # fmt: skip
        self.calls = Calls(log=emit, timers=self.timers, session=facts, lamp=call_lamp, audio=audio)
        self.plans = Plans(config=config, journal=journal, log=emit, session=facts, library=library)
        self.lights = Lights(
            config=config, log=emit, session=facts, health=self.health, lighting=lighting
        )
        self.music = Music(
            config=config, clock=clock, log=emit, session=facts, health=self.health,
            plans=self.plans, audio=audio,
        )  # fmt: skip
        self.annunciation = Annunciation(
            log=emit, alarms=self.alarms, calls=self.calls, annunciator=annunciator
        )
        self.gates = Gates(
            config=config, clock=clock, log=emit, session=facts, monitoring=self.monitoring,
            alarms=self.alarms,
        )  # fmt: skip
        self.session = SessionMachine(
            config=config, clock=clock, journal=journal, log=emit, timers=self.timers,
            state=facts, gates=self.gates, plans=self.plans, health=self.health,
            monitoring=self.monitoring, alarms=self.alarms, calls=self.calls,
            lights=self.lights, music=self.music, records=records,
        )  # fmt: skip
        self.intentions = Intentions(
            config=config, log=emit, session=facts, plans=self.plans, library=library
        )
        self.clinical = Clinical(
            config=config, clock=clock, journal=journal, log=emit, timers=self.timers,
            session=facts,
        )  # fmt: skip
        self.commands = CommandDesk(
            verbs=self._verbs(), clock=clock, journal=journal, log=emit, link=link,
            phase=lambda: facts.phase, max_age_s=command_max_age_s,
        )  # fmt: skip
        # The fold, in this order: the session's facts first, so that each part's timers are
        # armed from the state the same event left.
        self._folds: tuple[Callable[[Event], None], ...] = (
            facts.apply,
            self.health.apply,
            self.lights.apply,
            self.music.apply,
            self.calls.apply,
            self.monitoring.apply,
            self.alarms.apply,
            self.session.apply,
            self.clinical.apply,
        )
        self._timer_handlers: dict[str, Callable[[], None]] = {
            **self.session.timer_table(),
            **self.monitoring.timer_table(),
            **self.calls.timer_table(),
            **self.clinical.timer_table(),
        }
        self._inputs = self._input_table(simulator)
        self.log.wire(self.apply, lambda: facts.session_id)

    # --- the tables -----------------------------------------------------------------

    def _verbs(self) -> dict[str, Verb]:
        """Each verb's handler; its model and phases come from ``COMMANDS`` and ``VERB_PHASES``."""
        s, m, c = self.session, self.monitoring, self.clinical
        handlers: dict[str, Callable[[Any], dict[str, Any]]] = {
            "start_session": s.start_session,
            "advance": s.advance,
            "confirm": s.confirm,
            "start_infusion": s.start_infusion,
            "stop_infusion": s.stop_infusion,
            "music": self.music.command,
            "lights": self.lights.command,
            "call_ack": self.calls.acknowledge,
            "call_clear": self.calls.clear_command,
            "alarm_ack": self.alarms.ack_command,
            "alarm_silence": self.alarms.silence_command,
            "nibp_now": m.nibp_now,
            "record_vitals": m.record_vitals,
            "checkin": s.checkin,
            "emergency": s.emergency,
            "discharge": s.discharge,
            "end_session": s.end_session,
            "events": self.log.events_page,
            "status": lambda cmd: self.state().model_dump(mode="json"),
            "library": self.intentions.library,
            "choose": self.intentions.choose,
            "note": c.note,
            "notes": c.notes,
            "record_dose": c.record_dose,
            "side_effects": c.side_effects,
            "adverse_event": c.adverse_event,
        }
        private = {"notes"}  # replies with clinical text: only to the requester's own topic
        return {
            verb: Verb(COMMANDS[verb], VERB_PHASES[verb], run, verb in private)
            for verb, run in handlers.items()
        }

    def _input_table(
        self, simulator: Callable[[ev.SimAction], None] | None
    ) -> Mapping[type, Callable[[Any], None]]:
        table: dict[type, Callable[[Any], None]] = {
            ev.CommandReceived: self.commands.on_command,
            ev.PlanReceived: self.plans.on_plan,
            ev.LinkUp: lambda m: self.log.link_up(
                self.alarms.current(), self.monitoring.latest_nibp
            ),
            ev.LinkDown: lambda m: self.log.link_down(),
            ev.EventDelivered: lambda m: self.log.delivered(m.seq),
            ev.EventUndeliverable: lambda m: self.log.set_aside(m.seq, m.reason),
            ev.VitalsArrived: self.monitoring.on_sample,
            ev.NibpCompleted: self.monitoring.on_nibp_completed,
            ev.NibpFailed: self.monitoring.on_nibp_failed,
            ev.DeviceChanged: self.health.on_device,
            ev.ClockSync: self.health.on_clock_sync,
            ev.AudioFailed: self.health.on_audio_failed,
            ev.CallPressed: lambda m: self.calls.place(),
            ev.CallHeld: lambda m: self.calls.clear("bedside", "bedside"),
            ev.TrackStarted: lambda m: self.music.on_track_started(m.track, m.outputs),
            ev.TrackEnded: lambda m: self.music.on_track_ended(m.track, m.played_s),
            ev.PlaylistEnded: self.session.on_playlist_ended,
            ev.ReportWritten: self.session.on_report_written,
        }
        if simulator is not None:
            table[ev.SimAction] = simulator
        return table

    # --- the loop's entry points ----------------------------------------------------

    def handle(self, message: ev.InboxMessage) -> None:
        """Act on one inbox message, then fire what is due and publish what changed."""
        handler = self._inputs.get(type(message))
        if handler is None:
            log.warning("no handler for %r", message)
            return
        handler(message)
        self.tick()

    def tick(self) -> None:
        """Fire due timers and alarm delays; publish state when changed or on heartbeat."""
        # One at a time, so a timer's events are journaled before the next one fires.
        while (name := self.timers.pop_next_due()) is not None:
            self._timer_handlers[name]()
        self.commands.flush()  # refusals held past their interval are journaled
        self.log.send_backlog()
        self.session.maybe_debrief_ready()
        self.monitoring.check_stale()
        self.alarms.tick()
        self.annunciation.update()
        self.log.publish_state(self.state, self.alarms.current)

    def next_deadline(self) -> float:
        """The monotonic time by which ``tick`` must run again."""
        deadlines = [self.timers.next_deadline(), self.alarms.next_deadline()]
        deadlines.append(self.log.next_deadline())
        if self.monitoring.watching():
            deadlines.append(self.clock.monotonic() + STALE_CHECK_S)
        return min(d for d in deadlines if d is not None)

    def resume(self) -> None:
        """Rebuild the room from the journal after a start; announce a resumed session.

        A wall clock found behind the journal's newest event (a Pi without a battery clock
        restarts at the time fake-hwclock last saved) is not fed into the timers: the replay
        reads the journal as if no time had passed since its newest event, the room says how
        far behind the clock was, and raises ``clock_behind``.
        """
        boundary = self.journal.last_event("session_started", "session_ended")
        # From the end of the last finished session: what happened in the room before a
        # session started (a call placed, an emergency declared, a plan configured) is still
        # in force in it, as it was in the live room.
        ended = self.journal.last_event("session_ended")
        start = ended.seq if ended is not None else 1
        lights = self.journal.last_event("lighting_changed")
        if lights is not None and lights.seq < start:
            self.apply(lights)  # the room's lights outlive sessions
        replay = self.journal.events_since(start, 10**9)
        newest = replay[-1] if replay else None  # after a lost -wal, below last_seq
        as_of = None
        behind = 0.0
        if newest is not None:
            behind = max(0.0, (newest.ts - self.clock.now()).total_seconds())
            as_of = newest.ts if behind > CLOCK_BEHIND_S else None
        with _read_as_of(self.clock, as_of):
            for event in replay:
                self.apply(event)
        if boundary is not None and boundary.type == "session_started" and newest is not None:
            downtime = max(0.0, (self.clock.now() - newest.ts).total_seconds())
            data: dict[str, Any] = {"downtime_s": round(downtime, 3), "phase": self.phase}
            if behind > CLOCK_BEHIND_S:
                data["clock_behind_s"] = round(behind, 3)
            self.log.emit("session_resumed", data)
        if behind > CLOCK_BEHIND_S:
            self.alarms.raise_now(
                "clock_behind",
                kind="technical",
                priority="medium",
                message=f"The room's clock was {behind:.0f} s behind its journal at start: "
                "the session's timers continue from the last event; check the clock (NTP)",
            )
        self.lights.restore()
        self.calls.restore()
        self.music.restore()

    def apply(self, event: Event) -> None:
        """Fold one journal event into every part's state (live and when replaying)."""
        for fold in self._folds:
            fold(event)

    def add_listener(self, listener: Listener) -> None:
        """Call ``listener`` with every event after it is journaled and folded."""
        self.log.listeners.append(listener)

    # --- what the room shows --------------------------------------------------------

    @property
    def phase(self) -> Phase:
        """The session's phase."""
        return self.session.state.phase

    def state(self) -> RoomState:
        """The room as the contract's RoomState (retained on ``state``)."""
        s, music = self.session.state, self.music
        plan = s.plan
        safety = self.gates.evaluate("safety")
        return RoomState(
            room_id=self.config.room.id,
            session_id=s.session_id,
            patient_ref=plan.patient_ref if plan else None,
            session_number=plan.session_number if plan else None,
            phase=s.phase,
            phase_started_at=s.phase_started_at,
            phase_elapsed_s=s.phase_elapsed_s(),
            infusion=InfusionState(
                running=s.infusion_running,
                started_at=s.infusion_started_at,
                elapsed_s=round(s.infusion_elapsed_s(), 3),
                target_s=s.infusion_target_s,
                completed=s.infusion_completed,
            ),
            music=MusicState(
                mode=s.music_mode,
                playing=music.playing,
                track=music.track,
                headphones_volume=music.headphones_volume,
                speakers_volume=music.speakers_volume,
            ),
            lighting=LightingState(scene=self.lights.scene, level=self.lights.level),
            call=CallState(state=self.calls.state),
            alarms=[a.code for a in self.alarms.current()],
            devices=Devices(**self.health.devices),
            gates=GatesState(
                readiness="readiness" in s.confirmed,
                consent="consent" in s.confirmed,
                baseline_vitals=not ({"nibp", "spo2", "hr"} & set(safety.unmet)),
                discharge_vitals=self.gates.evaluate("discharge").met,
            ),
            next_nibp_due_at=self.timers.due_at("nibp"),
            alarm_limits=self.alarms.limits_in_force(),
            protocol=ProtocolInfo(
                dose_mg_per_kg=s.protocol.dose_mg_per_kg,
                side_effects=list(s.protocol.side_effects),
                debrief_minutes=s.protocol.debrief_minutes,
                playlist_minutes=s.protocol.playlist_minutes,
            ),
            link=LinkState(online=self.log.online, queued=self.journal.count_undelivered()),
            updated_at=self.clock.now(),
        )


@contextmanager
def _read_as_of(clock: Clock, at: datetime | None) -> Iterator[None]:
    """While replaying, let the clock's ``now()`` read as if it had started at ``at``.

    Every part turns event timestamps into monotonic deadlines and elapsed times through
    ``clock.now()``; shifting it for the replay only keeps a wall clock that is behind the
    journal out of them all, without each part knowing. Nothing outside the replay sees it.
    """
    if at is None:
        yield
        return
    real_now = clock.now
    offset = at - real_now()
    clock.now = lambda: real_now() + offset  # type: ignore[method-assign]
    try:
        yield
    finally:
        del clock.now
