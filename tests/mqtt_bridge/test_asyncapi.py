"""docs/asyncapi.yaml: generated from the models, covering every topic of the contract."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from controller.models import COMMANDS
from mqtt_bridge import asyncapi
from mqtt_bridge.topics import Topics


def test_committed_document_is_up_to_date() -> None:
    committed = asyncapi.DEFAULT_OUT.read_text(encoding="utf-8")
    assert committed == asyncapi.render(), (
        "docs/asyncapi.yaml is out of date: a model changed; run `python -m mqtt_bridge.asyncapi`"
    )
    assert asyncapi.main(["--check"]) == 0


def test_check_fails_on_a_stale_file_and_write_fixes_it(tmp_path: Path) -> None:
    out = tmp_path / "asyncapi.yaml"
    out.write_text("asyncapi: 3.0.0\n")
    assert asyncapi.main(["--check", "--out", str(out)]) == 1
    assert asyncapi.main(["--out", str(out)]) == 0
    assert asyncapi.main(["--check", "--out", str(out)]) == 0


def test_every_topic_and_verb_is_a_channel_with_its_payload() -> None:
    doc = asyncapi.build()
    assert doc["asyncapi"] == "3.0.0"
    topics = Topics("{prefix}", "{room_id}")
    addresses = {c["address"]: cid for cid, c in doc["channels"].items()}
    for topic in (
        topics.status,
        topics.state,
        topics.events,
        topics.vitals,
        topics.nibp,
        topics.alarms,
        topics.plan,
        topics.replies,
        topics.sim_action("{action}"),
    ):
        assert topic in addresses, topic
    schemas = doc["components"]["schemas"]
    for verb, model in COMMANDS.items():
        cid = addresses[topics.cmd(verb)]
        op = doc["operations"][f"receive{cid[0].upper()}{cid[1:]}"]
        assert op["action"] == "receive" and op["reply"]["channel"] == {
            "$ref": "#/channels/replies"
        }
        msg = doc["components"]["messages"][f"cmd_{verb}"]
        assert msg["payload"] == {"$ref": f"#/components/schemas/{model.__name__}"}
        assert set(model.model_fields) <= set(schemas[model.__name__]["properties"])
    for name in ("RoomState", "Event", "VitalsSample", "NibpReading", "AlarmList", "Reply"):
        assert doc["components"]["messages"][name]["payload"]["$ref"].endswith("/" + name)
    sends = {o["channel"]["$ref"] for o in doc["operations"].values() if o["action"] == "send"}
    assert sends == {
        f"#/channels/{c}"
        for c in ("status", "state", "events", "vitals", "vitalsNibp", "alarms", "replies")
    }
    bindings = {cid: op["bindings"]["mqtt"] for cid, op in doc["operations"].items()}
    assert bindings["sendVitals"]["qos"] == 0 and bindings["sendState"]["retain"] is True
    assert doc["components"]["messages"]["Status"]["contentType"] == "text/plain"


def test_every_reference_resolves() -> None:
    doc = asyncapi.build()

    def refs(node: object) -> list[str]:
        if isinstance(node, dict):
            found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
            return found + [r for v in node.values() for r in refs(v)]
        if isinstance(node, list):
            return [r for v in node for r in refs(v)]
        return []

    for ref in refs(doc):
        node: object = doc
        for part in ref.removeprefix("#/").split("/"):
            assert isinstance(node, dict) and part in node, ref
            node = node[part]


def test_yaml_emitter_quotes_what_needs_quoting() -> None:
    text = asyncapi.to_yaml(
        {"a": "yes", "b": "3.0.0", "c": "x: y # z", "d": 'q"uote\nline', "$ref": "#/x", "e": []}
    )
    lines = dict(line.split(": ", 1) for line in text.splitlines())
    assert lines["a"] == '"yes"' and lines["b"] == '"3.0.0"' and lines['"$ref"'] == '"#/x"'
    assert json.loads(lines["c"]) == "x: y # z" and json.loads(lines["d"]) == 'q"uote\nline'
    assert lines["e"] == "[]"


def test_yaml_parses_back_to_the_document() -> None:
    yaml = pytest.importorskip("yaml", reason="PyYAML not installed (optional cross-check)")
    assert yaml.safe_load(asyncapi.render()) == json.loads(json.dumps(asyncapi.build()))
