"""MqttLink against a real Mosquitto: what the room publishes, what it receives, and outages."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from controller.config import MqttSection
from controller.errors import ConfigError
from controller.events import (
    CommandReceived,
    EventDelivered,
    EventUndeliverable,
    LinkDown,
    LinkUp,
    PlanReceived,
    SimAction,
)
from controller.models import (
    Alarm,
    AlarmList,
    Event,
    NibpReading,
    PrivateReply,
    Reply,
    RoomState,
    VitalsSample,
)
from mqtt_bridge.link import MqttLink, read_password
from mqtt_bridge.topics import Topics
from tests.support.broker import Broker

REPO = Path(__file__).resolve().parents[2]
PREFIX, ROOM = "test", "room-1"
T = Topics(PREFIX, ROOM)


# --- helpers ---------------------------------------------------------------------------


def take(
    inbox: queue.Queue[Any],
    kind: type,
    timeout: float = 10.0,
    pred: Callable[[Any], bool] = lambda m: True,
) -> Any:
    """The next message of ``kind`` (matching ``pred``) on the inbox, within ``timeout``."""
    seen: list[Any] = []
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        try:
            msg = inbox.get(timeout=left)
        except queue.Empty:
            break
        if isinstance(msg, kind) and pred(msg):
            return msg
        seen.append(msg)
    raise AssertionError(f"no {kind.__name__} within {timeout}s; saw {seen}")


def drain(inbox: queue.Queue[Any]) -> list[Any]:
    """Whatever is on the inbox right now."""
    out = []
    while True:
        try:
            out.append(inbox.get_nowait())
        except queue.Empty:
            return out


class Sub:
    """A plain paho MQTT 5 client: the outside world's view of the link."""

    def __init__(self, port: int, *topics: str, qos: int = 1) -> None:
        self.messages: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
        subscribed = threading.Event()
        c = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"sub-{uuid.uuid4().hex[:8]}",
            protocol=mqtt.MQTTv5,
        )
        c.on_message = lambda cl, ud, m: self.messages.put(m)
        c.on_subscribe = lambda *a: subscribed.set()
        c.connect("127.0.0.1", port, keepalive=30)
        c.loop_start()
        self.client = c
        if topics:
            c.subscribe([(t, qos) for t in topics])
            assert subscribed.wait(10), "subscriber got no SUBACK"

    def get(self, topic: str, timeout: float = 10.0) -> mqtt.MQTTMessage:
        """The next message on ``topic`` (others are dropped)."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                msg = self.messages.get(timeout=left)
            except queue.Empty:
                break
            if msg.topic == topic:
                return msg
        raise AssertionError(f"nothing on {topic} within {timeout}s")

    def publish(
        self, topic: str, payload: bytes, *, retain: bool = False, props: Properties | None = None
    ) -> None:
        """Publish at QoS 1 and wait (bounded) for the PUBACK."""
        info = self.client.publish(topic, payload, qos=1, retain=retain, properties=props)
        info.wait_for_publish(5)
        assert info.is_published()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def now() -> datetime:
    return datetime.now(UTC)


def an_event(seq: int) -> Event:
    return Event(
        seq=seq,
        ts=now(),
        session_id="s-1",
        type="lighting_changed",
        data={"scene": "manual", "level": seq / 100, "fade_s": 1.0, "by": "dr-x"},
    )


def settle(link: MqttLink, inbox: queue.Queue[Any], seq: int = 10_000) -> None:
    """Wait until the broker has handled what the link sent so far (it acks in order)."""
    link.publish_event(an_event(seq))
    take(inbox, EventDelivered, 10, lambda m: m.seq == seq)


def section(port: int) -> MqttSection:
    return MqttSection(host="127.0.0.1", port=port, keepalive_s=5)


LinkFactory = Callable[..., tuple[MqttLink, "queue.Queue[Any]"]]


@pytest.fixture
def make_link(broker: Broker) -> Iterator[LinkFactory]:
    """Start MqttLinks on the test broker; each waits for LinkUp; all stopped afterwards."""
    links: list[MqttLink] = []

    def make(
        *, simulate: bool = False, topics: Topics = T, wait_up: bool = True
    ) -> tuple[MqttLink, queue.Queue[Any]]:
        inbox: queue.Queue[Any] = queue.Queue()
        link = MqttLink(
            section(broker.port),
            topics,
            inbox.put,
            client_id=f"link-{uuid.uuid4().hex[:8]}",
            simulate=simulate,
        )
        links.append(link)
        link.start()
        if wait_up:
            take(inbox, LinkUp, 10)
        return link, inbox

    yield make
    for link in links:
        link.stop()


@pytest.fixture
def subs(broker: Broker) -> Iterator[Callable[..., Sub]]:
    """Plain subscribers on the test broker, closed afterwards."""
    made: list[Sub] = []

    def make(*topics: str, qos: int = 1) -> Sub:
        s = Sub(broker.port, *topics, qos=qos)
        made.append(s)
        return s

    yield make
    for s in made:
        s.close()


# --- start and status --------------------------------------------------------------------


def test_start_brings_link_up_and_status_online_retained(
    make_link: LinkFactory, subs: Callable[..., Sub]
) -> None:
    link, inbox = make_link()  # waits for LinkUp on the inbox
    settle(link, inbox)  # so that the late subscriber gets the stored, retained copy
    late = subs(T.status)
    msg = late.get(T.status)
    assert msg.payload == b"online"
    assert msg.retain is True


def test_clean_stop_says_offline_retained(make_link: LinkFactory, subs: Callable[..., Sub]) -> None:
    link, inbox = make_link()
    watcher = subs(T.status)
    assert watcher.get(T.status).payload == b"online"
    link.stop()
    assert watcher.get(T.status).payload == b"offline"
    take(inbox, LinkDown, 5)
    late = subs(T.status)
    msg = late.get(T.status)
    assert (msg.payload, msg.retain) == (b"offline", True)


# --- what the room publishes --------------------------------------------------------------


def test_events_arrive_and_each_puback_becomes_event_delivered(
    make_link: LinkFactory, subs: Callable[..., Sub]
) -> None:
    link, inbox = make_link()
    watcher = subs(T.events)
    seqs = [41, 42, 43, 44, 45]
    for seq in seqs:
        link.publish_event(an_event(seq))
    got = [json.loads(watcher.get(T.events).payload) for _ in seqs]
    assert [e["seq"] for e in got] == seqs
    assert got[0]["type"] == "lighting_changed"
    assert got[0]["data"]["level"] == 0.41
    assert got[0]["ts"].endswith("Z")
    delivered = sorted(take(inbox, EventDelivered, 10).seq for _ in seqs)
    assert delivered == seqs


def test_events_are_qos1_and_not_retained(make_link: LinkFactory, subs: Callable[..., Sub]) -> None:
    link, inbox = make_link()
    watcher = subs(T.events)
    link.publish_event(an_event(7))
    msg = watcher.get(T.events)
    assert (msg.qos, msg.retain) == (1, False)
    link.publish_event(an_event(8))  # a late subscriber must not see a retained event
    take(inbox, EventDelivered, 10, lambda m: m.seq == 8)
    late = subs(T.events, T.status)
    assert late.get(T.status).payload == b"online"
    link.publish_event(an_event(9))
    assert json.loads(late.get(T.events).payload)["seq"] == 9


def test_only_events_are_reported_delivered(
    make_link: LinkFactory, subs: Callable[..., Sub]
) -> None:
    link, inbox = make_link()
    watcher = subs(f"{T.root}/#")
    ts = now()
    link.publish_state(RoomState(room_id=ROOM, updated_at=ts))
    link.publish_vitals(VitalsSample(ts=ts, spo2=97, hr=70, pi=1.5, source="masimo_ascii"))
    link.publish_nibp(NibpReading(ts=ts, sys=120, dia=80, map=93, hr=70, source="suntech"))
    link.publish_alarms([])
    link.publish_reply(Reply(request_id="r", verb="status", ok=True, result={}), None, None)
    link.publish_event(an_event(99))
    watcher.get(T.events)
    first = take(inbox, EventDelivered, 10)
    assert first.seq == 99
    assert not [m for m in drain(inbox) if isinstance(m, EventDelivered)]


def test_state_alarms_and_nibp_are_retained(
    make_link: LinkFactory, subs: Callable[..., Sub]
) -> None:
    link, _ = make_link()
    ts = now()
    state = RoomState(room_id=ROOM, phase="check_in", session_id="s-9", updated_at=ts)
    alarm = Alarm(
        id="a-1",
        code="spo2_low",
        kind="physiological",
        priority="medium",
        state="active",
        raised_at=ts,
        value=90,
        limit=92,
        message="SpO2 low",
    )
    nibp = NibpReading(ts=ts, sys=131, dia=84, map=100, hr=66, source="suntech")
    link.publish_state(state)
    link.publish_alarms([alarm])
    link.publish_nibp(nibp)
    # a marker published after them, so that the retained copies are surely stored
    marker = subs(T.events)
    link.publish_event(an_event(1))
    marker.get(T.events)

    late = subs(T.state, T.alarms, T.nibp)
    got = {}
    for _ in range(3):
        msg = late.messages.get(timeout=10)
        got[msg.topic] = msg
    assert set(got) == {T.state, T.alarms, T.nibp}
    assert all(m.retain for m in got.values())
    assert all(m.qos == 1 for m in got.values())
    assert json.loads(got[T.state].payload)["phase"] == "check_in"
    assert got[T.state].payload == state.to_json()
    assert got[T.alarms].payload == AlarmList(alarms=[alarm]).to_json()
    assert json.loads(got[T.alarms].payload)["alarms"][0]["id"] == "a-1"
    assert json.loads(got[T.nibp].payload)["sys"] == 131


def test_retained_state_is_replaced_by_the_latest(
    make_link: LinkFactory, subs: Callable[..., Sub]
) -> None:
    link, _ = make_link()
    watcher = subs(T.state)
    for phase in ("check_in", "integration", "intentions"):
        link.publish_state(RoomState(room_id=ROOM, phase=phase, updated_at=now()))  # type: ignore[arg-type]
        assert json.loads(watcher.get(T.state).payload)["phase"] == phase
    late = subs(T.state)
    msg = late.get(T.state)
    assert msg.retain and json.loads(msg.payload)["phase"] == "intentions"


def test_empty_alarm_list_is_retained_as_an_empty_list(
    make_link: LinkFactory, subs: Callable[..., Sub]
) -> None:
    link, _ = make_link()
    watcher = subs(T.alarms)
    link.publish_alarms([])
    assert json.loads(watcher.get(T.alarms).payload) == {"alarms": []}


def test_vitals_are_qos0_and_not_retained(make_link: LinkFactory, subs: Callable[..., Sub]) -> None:
    link, _ = make_link()
    watcher = subs(T.vitals)  # subscribed at QoS 1: the delivered QoS is the publisher's
    sample = VitalsSample(ts=now(), spo2=None, hr=71, pi=None, source="nonin_ascii")
    link.publish_vitals(sample)
    msg = watcher.get(T.vitals)
    assert (msg.qos, msg.retain) == (0, False)
    body = json.loads(msg.payload)
    assert body["spo2"] is None and body["hr"] == 71 and body["source"] == "nonin_ascii"
    late = subs(T.vitals, T.status)
    assert late.get(T.status).payload == b"online"
    link.publish_vitals(sample.model_copy(update={"hr": 72}))
    assert json.loads(late.get(T.vitals).payload)["hr"] == 72  # not the retained 71


# --- replies ----------------------------------------------------------------------------


def test_reply_goes_to_replies_and_to_the_response_topic_with_correlation(
    make_link: LinkFactory, subs: Callable[..., Sub]
) -> None:
    link, _ = make_link()
    response = "clients/dr-x/responses"
    watcher = subs(T.replies, response)
    reply = Reply(request_id="req-1", verb="status", ok=True, result={"phase": "idle"})
    link.publish_reply(reply, response, b"\x00corr-1\xff")
    on_replies = watcher.get(T.replies)
    assert json.loads(on_replies.payload) == {
        "request_id": "req-1",
        "verb": "status",
        "ok": True,
        "result": {"phase": "idle"},
    }
    on_response = watcher.get(response)
    assert on_response.payload == on_replies.payload
    assert on_response.properties.CorrelationData == b"\x00corr-1\xff"


def test_reply_without_response_topic_goes_to_replies_only(
    make_link: LinkFactory, subs: Callable[..., Sub]
) -> None:
    link, _ = make_link()
    response = "clients/dr-y/responses"
    watcher = subs(T.replies, response)
    first = Reply(
        request_id="req-a",
        verb="advance",
        ok=False,
        error={"code": "invalid_state", "message": "Can't advance"},  # type: ignore[arg-type]
    )
    link.publish_reply(first, None, None)
    assert json.loads(watcher.get(T.replies).payload)["error"]["code"] == "invalid_state"
    second = Reply(request_id="req-b", verb="status", ok=True, result={})
    link.publish_reply(second, response, None)
    msg = watcher.get(response)
    # the first thing on the response topic is the second reply: the first never went there
    assert json.loads(msg.payload)["request_id"] == "req-b"
    assert getattr(msg.properties, "CorrelationData", None) is None


def test_reply_whose_response_topic_is_replies_is_sent_once(
    make_link: LinkFactory, subs: Callable[..., Sub]
) -> None:
    link, _ = make_link()
    watcher = subs(T.replies)
    link.publish_reply(Reply(request_id="one", verb="status", ok=True, result={}), T.replies, b"c")
    link.publish_reply(Reply(request_id="two", verb="status", ok=True, result={}), None, None)
    ids = [json.loads(watcher.get(T.replies).payload)["request_id"] for _ in range(2)]
    assert ids == ["one", "two"]


def test_reply_to_a_wildcard_response_topic_does_not_break_the_link(
    make_link: LinkFactory, subs: Callable[..., Sub]
) -> None:
    link, inbox = make_link()
    watcher = subs(T.replies, T.events)
    link.publish_reply(Reply(request_id="w", verb="status", ok=True, result={}), "bad/#", b"c")
    assert json.loads(watcher.get(T.replies).payload)["request_id"] == "w"
    link.publish_event(an_event(5))
    assert json.loads(watcher.get(T.events).payload)["seq"] == 5
    assert take(inbox, EventDelivered, 10).seq == 5


# --- what the room receives ---------------------------------------------------------------


def test_command_with_response_topic_and_correlation_reaches_the_inbox(
    make_link: LinkFactory, subs: Callable[..., Sub]
) -> None:
    _, inbox = make_link()
    clinician = subs()
    props = Properties(PacketTypes.PUBLISH)
    props.ResponseTopic = "clients/dr-x/responses"
    props.CorrelationData = b"corr-42"
    body = b'{"request_id":"r1","by":"dr-x","override":{"reason":"ok"}}'
    clinician.publish(T.cmd("advance"), body, props=props)
    cmd = take(inbox, CommandReceived, 10)
    assert cmd == CommandReceived("advance", body, "clients/dr-x/responses", b"corr-42")


def test_command_without_properties_reaches_the_inbox(
    make_link: LinkFactory, subs: Callable[..., Sub]
) -> None:
    _, inbox = make_link()
    clinician = subs()
    clinician.publish(T.cmd("status"), b"not even json")
    cmd = take(inbox, CommandReceived, 10)
    assert cmd == CommandReceived("status", b"not even json", None, None)


def test_commands_of_another_room_are_not_received(
    make_link: LinkFactory, subs: Callable[..., Sub]
) -> None:
    _, inbox = make_link()
    clinician = subs()
    clinician.publish(Topics(PREFIX, "room-10").cmd("advance"), b"{}")
    clinician.publish(Topics("other", ROOM).cmd("advance"), b"{}")
    clinician.publish(T.cmd("status"), b"{}")
    cmd = take(inbox, CommandReceived, 10)
    assert cmd.verb == "status"
    assert not [m for m in drain(inbox) if isinstance(m, CommandReceived)]


def test_retained_plan_is_received_on_connect(
    make_link: LinkFactory, subs: Callable[..., Sub]
) -> None:
    clinic = subs()
    plan = json.dumps({"session_id": "s-1", "patient_ref": "P-1", "session_number": 2}).encode()
    clinic.publish(T.plan, plan, retain=True)
    _, inbox = make_link()
    assert take(inbox, PlanReceived, 10) == PlanReceived(plan)


def test_plan_published_while_connected_is_received(
    make_link: LinkFactory, subs: Callable[..., Sub]
) -> None:
    _, inbox = make_link()
    clinic = subs()
    clinic.publish(T.plan, b'{"session_id":"s-2"}', retain=True)
    assert take(inbox, PlanReceived, 10).payload == b'{"session_id":"s-2"}'


def test_sim_actions_are_delivered_when_simulating(
    make_link: LinkFactory, subs: Callable[..., Sub]
) -> None:
    _, inbox = make_link(simulate=True)
    tech = subs()
    tech.publish(T.sim_action("incident"), b'{"kind":"desaturation"}')
    assert take(inbox, SimAction, 10) == SimAction("incident", {"kind": "desaturation"})
    tech.publish(T.sim_action("press_call"), b"")
    assert take(inbox, SimAction, 10) == SimAction("press_call", {})
    tech.publish(T.sim_action("hold_call"), b"{garbage")
    assert take(inbox, SimAction, 10) == SimAction("hold_call", {})
    tech.publish(T.sim_action("hold_call"), b"[1, 2]")
    assert take(inbox, SimAction, 10) == SimAction("hold_call", {})


def test_sim_actions_are_ignored_when_not_simulating(
    make_link: LinkFactory, subs: Callable[..., Sub]
) -> None:
    _, inbox = make_link(simulate=False)
    tech = subs()
    tech.publish(T.sim_action("incident"), b'{"kind":"desaturation"}')
    tech.publish(T.sim_action("press_call"), b"{}")
    tech.publish(T.cmd("status"), b"{}")  # arrives after the sim messages would have
    take(inbox, CommandReceived, 10)
    tech.publish(T.cmd("status"), b"{}")
    take(inbox, CommandReceived, 10)
    seen = drain(inbox)
    assert not [m for m in seen if isinstance(m, SimAction)], seen


def test_a_simulating_link_still_ignores_other_rooms_sim_actions(
    make_link: LinkFactory, subs: Callable[..., Sub]
) -> None:
    _, inbox = make_link(simulate=True)
    tech = subs()
    tech.publish(Topics(PREFIX, "room-2").sim_action("press_call"), b"{}")
    tech.publish(T.sim_action("finish_playlist"), b"{}")
    assert take(inbox, SimAction, 10).action == "finish_playlist"


# --- outages ----------------------------------------------------------------------------


def test_broker_outage_gives_link_down_then_link_up_on_restart(
    broker: Broker, make_link: LinkFactory
) -> None:
    link, inbox = make_link()
    broker.stop()
    take(inbox, LinkDown, 10)
    broker.start()
    take(inbox, LinkUp, 20)  # paho reconnects by itself (1..10 s back-off)
    settle(link, inbox)
    # the new broker has no retained state: the link must have said online again
    late = Sub(broker.port, T.status)
    try:
        msg = late.get(T.status)
        assert (msg.payload, msg.retain) == (b"online", True)
    finally:
        late.close()
    # and it works again: commands come in, events go out and are acknowledged
    late = Sub(broker.port, T.events)
    try:
        late.publish(T.cmd("status"), b"{}")
        assert take(inbox, CommandReceived, 10).verb == "status"
        link.publish_event(an_event(77))
        assert json.loads(late.get(T.events).payload)["seq"] == 77
        assert take(inbox, EventDelivered, 10).seq == 77
    finally:
        late.close()


def test_publishing_while_the_broker_is_down_does_not_raise(
    broker: Broker, make_link: LinkFactory
) -> None:
    link, inbox = make_link()
    broker.stop()
    take(inbox, LinkDown, 10)
    link.publish_event(an_event(3))
    link.publish_state(RoomState(room_id=ROOM, updated_at=now()))
    link.publish_vitals(VitalsSample(ts=now(), spo2=98, hr=60, source="masimo_ascii"))
    link.publish_reply(Reply(request_id="x", verb="status", ok=True, result={}), "a/b", b"c")
    broker.start()
    take(inbox, LinkUp, 20)


def test_no_event_is_reported_delivered_before_the_broker_acknowledges_it(
    broker: Broker,
) -> None:
    # EventDelivered(seq) must mean "the broker sent PUBACK for this event". Freeze the broker
    # (SIGSTOP: the connection stays up, nothing is acknowledged) and publish one full cycle of
    # MQTT packet ids' worth of events: none of them may be reported delivered.
    inbox: queue.Queue[Any] = queue.Queue()
    link = MqttLink(
        MqttSection(host="127.0.0.1", port=broker.port, keepalive_s=120),
        T,
        inbox.put,
        client_id="link-frozen",
    )
    link.start()
    try:
        take(inbox, LinkUp, 10)
        link.publish_event(an_event(1))
        assert take(inbox, EventDelivered, 10).seq == 1
        assert broker.proc is not None
        broker.proc.send_signal(signal.SIGSTOP)
        try:
            template = an_event(2)
            for seq in range(2, 2 + 65535):
                link.publish_event(template.model_copy(update={"seq": seq}))
            false_acks = [m for m in drain(inbox) if isinstance(m, EventDelivered)]
        finally:
            broker.proc.send_signal(signal.SIGCONT)
        assert false_acks == []
    finally:
        link.stop()


CHILD = textwrap.dedent(
    """
    import queue, sys, time
    from controller.config import MqttSection
    from controller.events import LinkUp
    from mqtt_bridge.link import MqttLink
    from mqtt_bridge.topics import Topics

    inbox = queue.Queue()
    link = MqttLink(
        MqttSection(host="127.0.0.1", port=int(sys.argv[1]), keepalive_s=5),
        Topics(sys.argv[2], sys.argv[3]),
        inbox.put,
        client_id="will-child",
    )
    link.start()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            if isinstance(inbox.get(timeout=1), LinkUp):
                print("up", flush=True)
                break
        except queue.Empty:
            pass
    time.sleep(60)
    """
)


def test_last_will_offline_when_the_process_dies(broker: Broker) -> None:
    watcher = Sub(broker.port, T.status)
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(broker.port), PREFIX, ROOM],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    lines: queue.Queue[bytes] = queue.Queue()
    assert proc.stdout is not None
    out = proc.stdout
    threading.Thread(
        target=lambda: [lines.put(ln) for ln in iter(out.readline, b"")], daemon=True
    ).start()
    try:
        assert lines.get(timeout=20) == b"up\n"
        assert watcher.get(T.status).payload == b"online"
        killed = time.monotonic()
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        msg = watcher.get(T.status, timeout=10)  # keepalive 5 s × 1.5, with margin
        assert msg.payload == b"offline"
        assert time.monotonic() - killed <= 10
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        watcher.close()
    late = Sub(broker.port, T.status)
    try:
        msg = late.get(T.status)
        assert (msg.payload, msg.retain) == (b"offline", True)
    finally:
        late.close()


# --- the password file --------------------------------------------------------------------


def test_world_readable_password_file_is_refused(tmp_path: Path) -> None:
    f = tmp_path / "mqtt.pass"
    f.write_text("s3cret\n")
    f.chmod(0o644)
    with pytest.raises(ConfigError) as err:
        read_password(str(f))
    assert str(f) in str(err.value)
    assert "others" in str(err.value)


def test_world_readable_only_bit_is_enough_to_refuse(tmp_path: Path) -> None:
    f = tmp_path / "mqtt.pass"
    f.write_text("s3cret")
    f.chmod(0o604)
    with pytest.raises(ConfigError):
        read_password(str(f))


@pytest.mark.parametrize("mode", [0o600, 0o400, 0o640])
def test_private_password_file_is_read_stripped(tmp_path: Path, mode: int) -> None:
    f = tmp_path / "mqtt.pass"
    f.write_text("  s3cret-ä\n\n")
    f.chmod(mode)
    assert read_password(str(f)) == "s3cret-ä"


def test_missing_password_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        read_password(str(tmp_path / "absent.pass"))
    assert "absent.pass" in str(err.value)


def test_link_with_a_world_readable_password_file_refuses_to_build(tmp_path: Path) -> None:
    f = tmp_path / "mqtt.pass"
    f.write_text("pw")
    f.chmod(0o666)
    sect = MqttSection(port=1, username="room-1", password_file=str(f))
    with pytest.raises(ConfigError):
        MqttLink(sect, T, lambda m: None)


def test_a_private_reply_goes_only_to_a_response_topic_under_replies(
    make_link: LinkFactory, subs: Callable[..., Sub]
) -> None:
    link, _ = make_link()
    mine = f"{T.replies}/tab7"
    watcher = subs(T.replies, mine)
    secret = {"notes": [{"note_id": "n-1", "text": "clinical text"}]}
    link.publish_reply(
        PrivateReply(request_id="n1", verb="notes", ok=True, result=secret), mine, b"c"
    )
    msg = watcher.get(mine)
    assert json.loads(msg.payload)["result"] == secret
    assert msg.properties.CorrelationData == b"c"
    # Nothing went on the shared topic: the next message there is the next ordinary reply.
    link.publish_reply(Reply(request_id="after", verb="status", ok=True, result={}), None, None)
    assert json.loads(watcher.get(T.replies).payload)["request_id"] == "after"


def test_a_private_reply_with_nowhere_private_to_go_becomes_a_refusal(
    make_link: LinkFactory, subs: Callable[..., Sub]
) -> None:
    link, _ = make_link()
    elsewhere = "clients/dr-z/responses"
    watcher = subs(T.replies, elsewhere)
    private = PrivateReply(request_id="n2", verb="notes", ok=True, result={"notes": ["text"]})
    link.publish_reply(private, elsewhere, None)
    for topic in (T.replies, elsewhere):
        body = json.loads(watcher.get(topic).payload)
        assert body["ok"] is False and body["error"]["code"] == "invalid_payload"
        assert body["request_id"] == "n2" and "result" not in body  # the text stays home


# --- hostile input and attribution (issue 15) ----------------------------------------------


def test_a_command_on_the_attributed_path_names_its_broker_user(
    make_link: LinkFactory, subs: Callable[..., Sub]
) -> None:
    _, inbox = make_link()
    clinician = subs()
    clinician.publish(T.cmd("advance", "dr-kim"), b"{}")
    clinician.publish(T.cmd("advance"), b"{}")
    first, second = take(inbox, CommandReceived), take(inbox, CommandReceived)
    assert (first.verb, first.user) == ("advance", "dr-kim")
    assert (second.verb, second.user) == ("advance", None)


def test_a_retained_command_is_ignored_on_live_delivery_too(
    make_link: LinkFactory, subs: Callable[..., Sub]
) -> None:
    _, inbox = make_link()
    clinician = subs()
    clinician.publish(T.cmd("emergency"), b'{"retained": 1}', retain=True)
    clinician.publish(T.cmd("emergency", "dr-kim"), b'{"retained": 2}', retain=True)
    clinician.publish(T.cmd("status"), b'{"live": 1}')
    cmd = take(inbox, CommandReceived)
    assert cmd.payload == b'{"live": 1}', "the retained ones came first and were ignored"
    for topic in (T.cmd("emergency"), T.cmd("emergency", "dr-kim")):
        clinician.publish(topic, b"", retain=True)  # clear them for the next test


def test_an_event_too_large_for_the_broker_is_set_aside_not_sent(
    make_link: LinkFactory, subs: Callable[..., Sub]
) -> None:
    link, inbox = make_link()
    big = Event(seq=7, ts=now(), session_id=None, type="plan_rejected", data={"x": "y" * 70000})
    link.publish_event(big)
    out = take(inbox, EventUndeliverable)
    assert out.seq == 7 and "the broker takes at most 65536" in out.reason
    settle(link, inbox)  # the link is still up and delivering
    assert not [m for m in drain(inbox) if isinstance(m, LinkDown)]
