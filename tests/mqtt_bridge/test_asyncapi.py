"""docs/asyncapi.yaml: generated from the models, covering every topic of the contract."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest

from controller.event_data import EVENT_DATA, check_event_data
from controller.models import COMMANDS, Event
from mqtt_bridge import asyncapi
from mqtt_bridge.topics import Topics

PARSER_VERSION = "3.6.6"
PARSER = f"@asyncapi/parser@{PARSER_VERSION}"
PARSER_DIR = Path(tempfile.gettempdir()) / f"roomd-asyncapi-parser-{PARSER_VERSION}"
PARSE_SCRIPT = Path(__file__).with_name("asyncapi_parse.cjs")
NETWORK_ERRORS = re.compile(
    r"ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ECONNRESET|ETIMEDOUT|ENETUNREACH|EHOSTUNREACH"
)
"""npm's words for a registry it cannot reach (the one reason to skip the parser's tests)."""


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
    for name in ("RoomState", "VitalsSample", "NibpReading", "AlarmList", "Reply"):
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


def test_every_event_type_is_a_message_typing_its_data() -> None:
    doc = asyncapi.build()
    channel = doc["channels"]["events"]["messages"]
    assert list(channel) == [f"event_{t}" for t in EVENT_DATA]
    schemas = doc["components"]["schemas"]
    for type_, model in EVENT_DATA.items():
        msg = doc["components"]["messages"][f"event_{type_}"]
        envelope, specific = msg["payload"]["allOf"]
        assert envelope == {"$ref": "#/components/schemas/Event"}
        assert specific["properties"]["type"] == {"const": type_}
        assert specific["properties"]["data"] == {"$ref": f"#/components/schemas/{model.__name__}"}
        data_schema = schemas[model.__name__]
        assert data_schema["additionalProperties"] is False
        aliases = {f.alias or name for name, f in model.model_fields.items()}
        assert set(data_schema.get("properties", {})) == aliases
        assert msg["summary"] and msg["name"] == type_
        (example,) = msg["examples"]
        event = Event.model_validate(example["payload"])  # the envelope fits Event
        assert event.type == type_
        check_event_data(type_, event.data)  # and the data its type's model
    sends = doc["operations"]["sendEvents"]["messages"]
    assert sends == [{"$ref": f"#/channels/events/messages/event_{t}"} for t in EVENT_DATA]


def _properties(node: Any, path: str = "") -> list[tuple[str, dict[str, Any]]]:
    """Every (path, schema) of a named property anywhere under ``node``."""
    found = []
    if isinstance(node, dict):
        for name, sub in (node.get("properties") or {}).items():
            found.append((f"{path}.{name}", sub))
        for key, sub in node.items():
            found += _properties(sub, f"{path}.{key}")
    elif isinstance(node, list):
        for i, sub in enumerate(node):
            found += _properties(sub, f"{path}[{i}]")
    return found


def test_every_timestamp_is_a_date_time() -> None:
    schemas = asyncapi.build()["components"]["schemas"]
    stamps = [
        (path, prop)
        for path, prop in _properties(schemas)
        if re.search(r"\.(ts|\w+_at|\w+_until)$", path)
    ]
    checked = {path.rsplit(".", 1)[1] for path, _ in stamps}
    assert {"ts", "raised_at", "silenced_until", "next_due_at", "updated_at", "sent_at"} <= checked
    for path, prop in stamps:
        variants = prop.get("anyOf", [prop])
        formats = {v.get("format") for v in variants if v.get("type") != "null"}
        assert formats == {"date-time"}, path


# --- the official AsyncAPI parser, run with node -------------------------------------------


def _install_parser() -> Path:
    """``@asyncapi/parser`` in a cache under the temp dir (installed once); skip only when
    node or npm is missing or npm cannot reach the registry."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node and npm are needed to run the official AsyncAPI parser")
    if (PARSER_DIR / "node_modules" / "@asyncapi" / "parser" / "package.json").exists():
        return PARSER_DIR
    staging = Path(tempfile.mkdtemp(prefix=PARSER_DIR.name + ".", dir=PARSER_DIR.parent))
    npm = ["npm", "install", "--prefix", str(staging), "--no-audit", "--no-fund"]
    env = dict(os.environ, SCARF_ANALYTICS="false")  # a dependency's install-time telemetry
    proc = subprocess.run(
        [*npm, "--ignore-scripts", "--no-save", PARSER],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    if proc.returncode != 0:
        shutil.rmtree(staging, ignore_errors=True)
        if NETWORK_ERRORS.search(proc.stderr):
            pytest.skip(f"npm cannot reach the registry to install {PARSER}")
        pytest.fail(f"npm install {PARSER} failed:\n{proc.stderr[-2000:]}")
    try:
        staging.rename(PARSER_DIR)  # at once, so a parallel run never sees half an install
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)  # another run installed it meanwhile
    return PARSER_DIR


def _parse(document: Path) -> tuple[int, list[dict[str, Any]]]:
    proc = subprocess.run(
        ["node", str(PARSE_SCRIPT), str(_install_parser()), str(document)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode in (0, 1), proc.stderr
    return proc.returncode, [json.loads(line) for line in proc.stdout.splitlines()]


def test_the_official_asyncapi_parser_accepts_the_document() -> None:
    code, lines = _parse(asyncapi.DEFAULT_OUT)
    problems = [d for d in lines[:-1] if d["severity"] in ("error", "warning")]
    assert code == 0 and problems == [], problems
    assert lines[-1]["errors"] == 0


def test_the_official_asyncapi_parser_refuses_a_broken_document(tmp_path: Path) -> None:
    broken = tmp_path / "asyncapi.yaml"
    text = asyncapi.render().replace(
        "#/components/schemas/PhaseChanged", "#/components/schemas/Nowhere"
    )
    broken.write_text(text, encoding="utf-8")
    code, lines = _parse(broken)
    assert code == 1
    assert any(d.get("code") == "invalid-ref" and "Nowhere" in d["message"] for d in lines)
