"""The room's MQTT API as an AsyncAPI 3.0 document, generated from the pydantic models.

``python -m mqtt_bridge.asyncapi`` writes ``docs/asyncapi.yaml``; ``--check`` exits 1 when the
committed file differs from a fresh generation (a model changed and nobody regenerated).

Operations are written from the room's point of view: the room *sends* on ``status``,
``state``, ``events``, ``vitals``, ``vitals/nibp``, ``alarms`` and ``replies``, and *receives*
on ``plan``, ``cmd/<verb>`` and (under ``--simulate`` only) ``sim/<action>``. The ``events``
channel carries one message per event type (``controller.event_data``): an Event whose ``type``
is that type and whose ``data`` is that type's model. The YAML is written by a small emitter
here, so the project needs no YAML library.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from controller import models as m
from controller.event_data import EVENT_DATA
from mqtt_bridge.topics import Topics

ASYNCAPI_VERSION = "3.0.0"
API_VERSION = "1.0.0"
DEFAULT_OUT = Path(__file__).resolve().parents[1] / "docs" / "asyncapi.yaml"
SCHEMAS = "#/components/schemas/"
MQTT_BINDING = "0.2.0"
SIM_ACTIONS = ["press_call", "release_call", "hold_call", "incident", "finish_playlist"]

# (channel id, leaf under root, message name, payload model or None for text, qos, retained,
#  what it is)
OUTPUTS: list[tuple[str, str, str, type[BaseModel] | None, int, bool, str]] = [
    ("status", "status", "Status", None, 1, True,
     "`online` while the room runs; `offline` is its last will and is also sent on clean stop."),
    ("state", "state", "RoomState", m.RoomState, 1, True,
     "The whole room at a glance, republished on every change and at least every 10 s."),
    ("events", "events", "Event", m.Event, 1, False,
     "Every journal event, in `seq` order. `seq` is per room, strictly increasing and never "
     "reused; a subscriber that sees a gap fetches the missing events with `cmd/events`, and "
     "de-duplicates by `seq` (events are re-sent after a broker outage). One message per event "
     "type: `type` names it and `data` has that type's schema. New types may be added; ignore "
     "the ones you do not know."),
    ("vitals", "vitals", "VitalsSample", m.VitalsSample, 0, False,
     "Oximeter samples as they arrive (about 1 Hz). `null` means no valid value."),
    ("vitalsNibp", "vitals/nibp", "NibpReading", m.NibpReading, 1, True,
     "The latest blood pressure, from the NIBP module or entered by hand."),
    ("alarms", "alarms", "AlarmList", m.AlarmList, 1, True,
     "Every active, latched or acknowledged alarm."),
    ("replies", "replies", "Reply", m.Reply, 1, False,
     "The room's answer to each command. When an MQTT 5 command carries a response topic or "
     "correlation data, the reply also goes to that topic with the same correlation data."),
]  # fmt: skip


def _schemas() -> dict[str, Any]:
    """Every payload schema, named by its model, references pointing into components."""
    outputs = [o[3] for o in OUTPUTS if o[3] is not None] + list(EVENT_DATA.values())
    commands: set[type[BaseModel]] = {*m.COMMANDS.values(), m.SessionPlan}
    inputs = sorted(commands, key=lambda c: c.__name__)
    items: list[tuple[type[BaseModel], Any]] = [(c, "serialization") for c in outputs]
    items += [(c, "validation") for c in inputs]
    _, schema = models_json_schema(items, ref_template=SCHEMAS + "{model}")
    defs: dict[str, Any] = schema["$defs"]
    return dict(sorted(defs.items()))


def _ref(path: str) -> dict[str, str]:
    return {"$ref": path}


def _message(name: str, title: str, summary: str, model: type[BaseModel] | None) -> dict[str, Any]:
    msg: dict[str, Any] = {"name": name, "title": title, "summary": summary}
    if model is None:
        msg["contentType"] = "text/plain"
        msg["payload"] = {"type": "string", "enum": ["online", "offline"]}
    else:
        msg["contentType"] = "application/json"
        msg["payload"] = _ref(SCHEMAS + model.__name__)
    return msg


def _event_messages() -> dict[str, dict[str, Any]]:
    """One message per event type: an Event whose ``type`` is it and ``data`` its model."""
    messages = {}
    for type_, model in EVENT_DATA.items():
        example = {"seq": 1234, "ts": "2026-01-05T09:26:40.000Z"}
        example |= {"session_id": "2026-01-05-r3-am", "type": type_, "data": model.example}
        messages["event_" + type_] = {
            "name": type_,
            "title": type_,
            "summary": " ".join((model.__doc__ or "").split()),
            "contentType": "application/json",
            "payload": {
                "allOf": [
                    _ref(SCHEMAS + "Event"),
                    {
                        "properties": {
                            "type": {"const": type_},
                            "data": _ref(SCHEMAS + model.__name__),
                        },
                        "required": ["data"],
                    },
                ]
            },
            "examples": [{"name": type_, "payload": example}],
        }
    return messages


def build() -> dict[str, Any]:
    """The AsyncAPI document as plain data."""
    topics = Topics("{prefix}", "{room_id}")
    params = {"prefix": _ref("#/components/parameters/prefix")}
    params["room_id"] = _ref("#/components/parameters/room_id")
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}

    def add(cid: str, address: str, msg_names: list[str], action: str, op: dict[str, Any]) -> None:
        channels[cid] = {
            "address": address,
            "description": op.pop("description"),
            "parameters": dict(params, **op.pop("extra_params", {})),
            "messages": {n: _ref(f"#/components/messages/{n}") for n in msg_names},
        }
        op_id = f"{action}{cid[0].upper()}{cid[1:]}"
        operations[op_id] = {
            "action": action,
            "channel": _ref(f"#/channels/{cid}"),
            "messages": [_ref(f"#/channels/{cid}/messages/{n}") for n in msg_names],
            **op,
        }

    for cid, leaf, name, model, qos, retained, what in OUTPUTS:
        if model is m.Event:
            these = _event_messages()
        else:
            summary = what.split(". ")[0].rstrip(".") + "."
            these = {name: _message(name, name, summary, model)}
        messages.update(these)
        add(
            cid,
            f"{topics.root}/{leaf}",
            list(these),
            "send",
            {"description": what, "bindings": _binding(qos, retained)},
        )
    messages["SessionPlan"] = _message(
        "SessionPlan", "SessionPlan", "The clinic's plan for the next session.", m.SessionPlan
    )
    add(
        "plan",
        topics.plan,
        ["SessionPlan"],
        "receive",
        {
            "description": "The clinic's plan for the next session in this room (retained). "
            "An invalid plan is answered with a `plan_rejected` event listing the reasons.",
            "bindings": _binding(1, True),
        },
    )
    reply = {
        "channel": _ref("#/channels/replies"),
        "messages": [_ref("#/channels/replies/messages/Reply")],
    }
    for verb, model in m.COMMANDS.items():
        name = "cmd_" + verb
        doc = (model.__doc__ or "").strip().splitlines()[0]
        messages[name] = _message(name, f"{verb} command", doc, model)
        add(
            "cmd_" + verb,
            topics.cmd(verb),
            [name],
            "receive",
            {
                "description": f"The `{verb}` command ({doc[0].lower()}{doc[1:]}). Payload: "
                "`request_id` (≤ 64 characters, never reused), `by` (the clinician's id) and "
                "the verb's arguments. Answered on `replies`; a repeated `request_id` is not "
                "run again: the answer is `ok: false`, code `duplicate`, with the first reply "
                "in `error.details.first_reply`.",
                "bindings": _binding(1, False),
                "reply": reply,
            },
        )
    messages["SimAction"] = {
        "name": "SimAction",
        "title": "Simulation action",
        "summary": "Acts on the simulated hardware (only under `roomd --simulate`).",
        "contentType": "application/json",
        "payload": {"type": "object", "description": "`hold_call` {seconds}; `incident` {kind}"},
    }
    add(
        "sim",
        topics.sim_action("{action}"),
        ["SimAction"],
        "receive",
        {
            "description": "Only under `roomd --simulate`: tests and demos act on the simulated "
            "hardware. `incident` kinds: desaturation, hypertension, sensor_off, unplug, "
            "garbage, recover.",
            "extra_params": {"action": {"enum": SIM_ACTIONS, "description": "What to do."}},
            "bindings": _binding(1, False),
        },
    )
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {
            "title": "roomd — treatment-room controller",
            "version": API_VERSION,
            "description": "One room's MQTT API. Root topic: `<topic_prefix>/rooms/<room_id>`. "
            "All JSON is UTF-8, objects, at most 64 KiB; times are ISO-8601 UTC with "
            "milliseconds and `Z`. No payload carries a patient name or other identifier: the "
            "patient is `patient_ref`, an opaque pseudonym chosen by the clinic. Generated from "
            "the pydantic models by `python -m mqtt_bridge.asyncapi`; see docs/mqtt-api.md.",
            "license": {"name": "Apache-2.0"},
        },
        "defaultContentType": "application/json",
        "servers": {
            "clinic": {
                "host": "{host}:8883",
                "protocol": "secure-mqtt",
                "protocolVersion": "5",
                "description": "The clinic's broker: TLS, a user and password per room, "
                "clinician and observer; anonymous refused.",
                "variables": {"host": {"description": "The broker's host name."}},
                "security": [_ref("#/components/securitySchemes/userPassword")],
            },
            "dev": {
                "host": "127.0.0.1:1883",
                "protocol": "mqtt",
                "protocolVersion": "5",
                "description": "The development broker of `make run` (loopback, no TLS).",
            },
        },
        "channels": channels,
        "operations": operations,
        "components": {
            "schemas": _schemas(),
            "messages": messages,
            "parameters": {
                "prefix": {
                    "description": "`[mqtt] topic_prefix` of the room's config.",
                    "default": "clinic",
                },
                "room_id": {
                    "description": "`[room] id`: [a-z0-9-]{1,32}.",
                    "examples": ["room-3"],
                },
            },
            "securitySchemes": {
                "userPassword": {
                    "type": "userPassword",
                    "description": "Broker users and an ACL: a room publishes under its own root; "
                    "clinicians publish `cmd/#` and `plan`; observers only subscribe.",
                }
            },
        },
    }


def _binding(qos: int, retain: bool) -> dict[str, Any]:
    return {"mqtt": {"qos": qos, "retain": retain, "bindingVersion": MQTT_BINDING}}


# === a small YAML emitter (block style; strings quoted JSON-style unless plainly safe) =====

_PLAIN = re.compile(r"[A-Za-z_/][A-Za-z0-9_./ -]*")
_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")
_RESERVED = {"y", "n", "yes", "no", "on", "off", "true", "false", "null", "~"}


def _scalar(value: Any, *, key: bool = False) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return json.dumps(value)
    text = str(value)
    pattern = _KEY if key else _PLAIN
    if pattern.fullmatch(text) and not text.endswith(" ") and text.lower() not in _RESERVED:
        return text
    # A JSON string is a valid YAML double-quoted scalar.
    return json.dumps(text, ensure_ascii=False)


def _lines(value: Any, indent: int) -> list[str]:
    pad = " " * indent
    out: list[str] = []
    if isinstance(value, dict):
        for k, v in value.items():
            head = f"{pad}{_scalar(k, key=True)}:"
            if isinstance(v, dict | list) and v:
                out.append(head)
                out += _lines(v, indent + 2)
            else:
                out.append(f"{head} {'{}' if v == {} else '[]' if v == [] else _scalar(v)}")
    else:
        for item in value:
            if isinstance(item, dict | list) and item:
                nested = _lines(item, indent + 2)
                nested[0] = f"{pad}- {nested[0][indent + 2 :]}"
                out += nested
            else:
                out.append(
                    f"{pad}- {'{}' if item == {} else '[]' if item == [] else _scalar(item)}"
                )
    return out


def to_yaml(doc: dict[str, Any]) -> str:
    """``doc`` as block-style YAML."""
    return "\n".join(_lines(doc, 0)) + "\n"


def render() -> str:
    """The document as committed in docs/asyncapi.yaml."""
    header = (
        "# Generated by `python -m mqtt_bridge.asyncapi` from controller/models.py and "
        "controller/event_data.py: do not edit.\n"
    )
    return header + to_yaml(build())


def main(argv: list[str] | None = None) -> int:
    """Write the document, or with ``--check`` compare it with the file."""
    p = argparse.ArgumentParser(prog="python -m mqtt_bridge.asyncapi", description=__doc__)
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="default %(default)s")
    p.add_argument("--check", action="store_true", help="exit 1 if the file is out of date")
    args = p.parse_args(argv)
    text = render()
    if args.check:
        current = args.out.read_text(encoding="utf-8") if args.out.exists() else ""
        if current != text:
            print(
                f"{args.out} is out of date: run `python -m mqtt_bridge.asyncapi`", file=sys.stderr
            )
            return 1
        return 0
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
