"""``roomctl``: the clinician's and technician's command line for a room, over MQTT.

Exit codes: 0 on an ``ok`` reply, 1 on an error reply, 3 when no reply arrives in time,
2 on a usage error.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import uuid
from pathlib import Path
from typing import Any

from controller.models import COMMANDS
from mqtt_bridge.client import Client
from mqtt_bridge.watch import run_watch

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_TIMEOUT = 0, 1, 2, 3

# Positional shorthands: `roomctl … confirm consent` is `confirm item=consent`.
POSITIONAL = {
    "confirm": "item",
    "stop_infusion": "reason",
    "emergency": "reason",
    "end_session": "reason",
    "alarm_ack": "alarm_id",
    "alarm_silence": "seconds",
    "checkin": "note",
    "music": "action",
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line of the contract."""
    p = argparse.ArgumentParser(
        prog="roomctl",
        description="Drive a treatment room over MQTT. VERB is a command of the contract "
        "(args as key=value), or: plan FILE, watch, events --since N, report SESSION_ID.",
    )
    p.add_argument("--host", default=os.environ.get("ROOMCTL_HOST", "127.0.0.1"))
    p.add_argument("--port", type=int, default=int(os.environ.get("ROOMCTL_PORT", "1883")))
    p.add_argument("--user", default=os.environ.get("ROOMCTL_USER", ""))
    p.add_argument("--password-file", default=os.environ.get("ROOMCTL_PASSWORD_FILE", ""))
    p.add_argument("--tls-ca", default="")
    p.add_argument("--prefix", default="clinic")
    p.add_argument("--room", required=True)
    p.add_argument(
        "--by",
        default=None,
        help="who acts (default: ROOMCTL_BY, the --user, or $USER); with --user the room "
        "records the broker user anyway",
    )
    p.add_argument(
        "--declared",
        action="store_true",
        help="send on cmd/<verb> (by as declared), not cmd/<verb>/by/<user>: for a "
        "development broker or a user whose ACL allows only that",
    )
    p.add_argument("--timeout", type=float, default=5.0)
    p.add_argument("--since", type=int, default=1, help="events: first seq")
    p.add_argument("--for", dest="duration", type=float, default=None, help="watch: stop after")
    p.add_argument("--plan", default=None, help="start_session: a plan JSON file")
    p.add_argument("--out", default="reports", help="report: the folder to write into")
    p.add_argument("verb")
    p.add_argument("args", nargs="*")
    ns = p.parse_args(argv)
    if ns.by is None:
        ns.by = os.environ.get("ROOMCTL_BY") or ns.user or os.environ.get("USER") or ""
    return ns


def parse_value(text: str) -> Any:
    """A command-line value: JSON when it parses (numbers, objects, true), else the text."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def build_payload(verb: str, args: list[str], by: str, plan_file: str | None) -> dict[str, Any]:
    """The command's JSON object from ``key=value`` words (and the verb's positional word)."""
    payload: dict[str, Any] = {"request_id": uuid.uuid4().hex[:16], "by": by}
    loose: list[str] = []
    for word in args:
        key, sep, value = word.partition("=")
        if sep and key.isidentifier():
            payload[key] = parse_value(value)
        else:
            loose.append(word)
    if loose:
        field = POSITIONAL.get(verb)
        if field is None:
            raise ValueError(f"{verb} takes key=value arguments, not {' '.join(loose)!r}")
        text = " ".join(loose)
        payload[field] = parse_value(text) if field == "seconds" else text
    if plan_file:
        with open(plan_file, encoding="utf-8") as fh:
            payload["plan"] = json.load(fh)
    return payload


def run_command(ns: argparse.Namespace) -> int:
    """Send a command verb and print its reply."""
    if ns.verb not in COMMANDS:
        print(f"roomctl: unknown verb {ns.verb!r}; verbs: {', '.join(COMMANDS)}", file=sys.stderr)
        return EXIT_USAGE
    try:
        payload = build_payload(ns.verb, ns.args, ns.by, ns.plan)
    except (ValueError, OSError) as exc:
        print(f"roomctl: {exc}", file=sys.stderr)
        return EXIT_USAGE
    client = Client(ns)
    with client.session([client.topics.replies], ns.timeout) as ok:
        reply = client.request(ns.verb, payload, ns.timeout) if ok else None
    if reply is None:
        print(f"roomctl: no reply from {ns.room} within {ns.timeout:g} s", file=sys.stderr)
        return EXIT_TIMEOUT
    if reply.get("ok"):
        print(json.dumps(reply.get("result", {}), indent=2))
        return EXIT_OK
    error = reply.get("error", {})
    print(f"{error.get('code')}: {error.get('message')}", file=sys.stderr)
    if error.get("details"):
        print(json.dumps(error["details"], indent=2), file=sys.stderr)
    return EXIT_ERROR


def fetch_events(client: Client, ns: argparse.Namespace, since: int) -> list[dict[str, Any]]:
    """The journal from ``since``, page by page (each reply stays under 64 KiB).

    Raises TimeoutError when the room stops answering, RuntimeError on an error reply.
    """
    out: list[dict[str, Any]] = []
    while True:
        payload = {"request_id": uuid.uuid4().hex[:16], "by": ns.by, "since_seq": since}
        reply = client.request("events", payload, ns.timeout)
        if reply is None:
            raise TimeoutError(f"no reply from {ns.room}")
        if not reply.get("ok"):
            raise RuntimeError(f"{reply['error']['code']}: {reply['error']['message']}")
        events = reply["result"]["events"]
        out += events
        if not events or events[-1]["seq"] >= reply["result"]["last_seq"]:
            return out
        since = events[-1]["seq"] + 1


def fetch_journal(ns: argparse.Namespace, since: int) -> list[dict[str, Any]] | int:
    """The room's journal from ``since``, or the exit code (and message) when it failed."""
    client = Client(ns)
    with client.session([client.topics.replies], ns.timeout) as ok:
        if not ok:
            print(f"roomctl: cannot reach the broker at {ns.host}:{ns.port}", file=sys.stderr)
            return EXIT_TIMEOUT
        try:
            return fetch_events(client, ns, since)
        except TimeoutError as exc:
            print(f"roomctl: {exc}", file=sys.stderr)
            return EXIT_TIMEOUT
        except RuntimeError as exc:
            print(str(exc), file=sys.stderr)
            return EXIT_ERROR


def run_events(ns: argparse.Namespace) -> int:
    """Print the journal from ``--since`` as JSON lines."""
    events = fetch_journal(ns, ns.since)
    if isinstance(events, int):
        return events
    for event in events:
        print(json.dumps(event, separators=(",", ":")))
    return EXIT_OK


def run_report(ns: argparse.Namespace) -> int:
    """Fetch a session's events over MQTT and build its record in ``--out``/<session_id>.

    The room's own record (under its data directory) also has the 1 Hz SpO2/HR series, which
    are not journal events; docs/deploy.md says how to copy it.
    """
    from controller.models import Event
    from controller.record.files import build_report, report_dir

    if len(ns.args) != 1:
        print("roomctl: report takes one argument: the session id", file=sys.stderr)
        return EXIT_USAGE
    session_id = ns.args[0]
    journal = fetch_journal(ns, 1)
    if isinstance(journal, int):
        return journal
    session = [Event.model_validate(e) for e in journal if e["session_id"] == session_id]
    if not any(e.type == "session_started" for e in session):
        print(f"roomctl: room {ns.room} has no session {session_id!r}", file=sys.stderr)
        return EXIT_ERROR
    readings = [
        (e.model_dump(mode="json")["ts"], "nibp", json.dumps(_reading(e)))
        for e in session
        if e.type == "nibp_result" or (e.type == "vitals_recorded" and "sys" in e.data)
    ]
    ready = build_report(session, readings, report_dir(Path(ns.out), session_id), room_id=ns.room)
    print(ready["path"])
    return EXIT_OK


def _reading(event: Any) -> dict[str, Any]:
    d = event.data
    mean = d.get("map", round((d["sys"] + 2 * d["dia"]) / 3))
    return {
        "ts": event.model_dump(mode="json")["ts"],
        "sys": d["sys"],
        "dia": d["dia"],
        "map": mean,
        "hr": d.get("hr"),
        "source": d.get("source", "manual"),
        "by": d.get("by"),
    }


def run_plan(ns: argparse.Namespace) -> int:
    """Publish a session plan (retained) for the room."""
    if len(ns.args) != 1:
        print("roomctl: plan takes one argument: a plan JSON file", file=sys.stderr)
        return EXIT_USAGE
    with open(ns.args[0], "rb") as fh:
        body = fh.read()
    client = Client(ns)
    with client.session([], ns.timeout) as ok:
        if not ok:
            return EXIT_TIMEOUT
        info = client.client.publish(client.topics.plan, body, qos=1, retain=True)
        info.wait_for_publish(ns.timeout)
        if not info.is_published():
            return EXIT_TIMEOUT
    print(f"plan published to {client.topics.plan}")
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``roomctl``."""
    ns = parse_args(argv)
    if not ns.by:
        print("roomctl: --by (or ROOMCTL_BY) must name the clinician", file=sys.stderr)
        return EXIT_USAGE
    if ns.verb == "watch":
        return run_watch(ns, Client(ns))
    if ns.verb == "plan":
        return run_plan(ns)
    if ns.verb == "events" and not ns.args:
        return run_events(ns)
    if ns.verb == "report":
        return run_report(ns)
    return run_command(ns)


if __name__ == "__main__":
    raise SystemExit(main())
