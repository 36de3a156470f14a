"""HL7 v2 over MLLP (the Minimal Lower Layer Protocol): framing, one exchange, the ACK."""

from __future__ import annotations

import socket
from dataclasses import dataclass

START, END = b"\x0b", b"\x1c\x0d"
FIELD, COMPONENT = "|", "^"


class MllpError(Exception):
    """No usable acknowledgement: the connection failed, timed out or sent garbage."""


@dataclass(frozen=True)
class Ack:
    """An acknowledgement's MSA: ``code`` (AA, AE, AR, or CA/CE/CR), the acknowledged control
    id and the receiver's text."""

    code: str
    control_id: str
    text: str

    @property
    def accepted(self) -> bool:
        """Whether the receiver took the message (application or commit accept)."""
        return self.code in ("AA", "CA")


def frame(message: str) -> bytes:
    """One MLLP block: start byte, the message (UTF-8), end bytes."""
    return START + message.encode("utf-8") + END


def control_id_of(message: str) -> str:
    """MSH-10 of a message."""
    msh = message.split("\r", 1)[0].split(FIELD)
    return msh[9] if len(msh) > 9 else ""


def parse_ack(text: str) -> Ack:
    """The MSA of an ACK; MllpError if there is none."""
    for segment in text.replace("\n", "\r").split("\r"):
        fields = segment.split(FIELD)
        if fields[0] == "MSA" and len(fields) > 1 and fields[1]:
            return Ack(fields[1], fields[2] if len(fields) > 2 else "", "|".join(fields[3:4]))
    raise MllpError(f"no MSA segment in the answer: {text[:80]!r}")


def exchange(host: str, port: int, message: str, timeout: float) -> Ack:
    """Send one message and read its acknowledgement (one connection per message)."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.settimeout(timeout)
            sock.sendall(frame(message))
            buf = b""
            while END not in buf:
                chunk = sock.recv(65536)
                if not chunk:
                    raise MllpError("the receiver closed the connection without an ACK")
                buf += chunk
                if len(buf) > 1 << 20:
                    raise MllpError("the answer is over 1 MiB without an end block")
    except OSError as exc:
        raise MllpError(f"{host}:{port}: {exc}") from None
    start = buf.find(START)
    body = buf[start + 1 if start >= 0 else 0 : buf.find(END)]
    return parse_ack(body.decode("utf-8", errors="replace"))


def with_identity(message: str, sending_facility: str, assigning_authority: str) -> str:
    """The message with the clinic's MSH-4 (sending facility) and PID-3.4 (assigning
    authority of the pseudonym), where configured."""
    segments = message.split("\r")
    for i, seg in enumerate(segments):
        fields = seg.split(FIELD)
        if fields[0] == "MSH" and sending_facility and len(fields) > 3:
            fields[3] = sending_facility
        elif fields[0] == "PID" and assigning_authority and len(fields) > 3:
            parts = fields[3].split(COMPONENT)
            parts += [""] * (4 - len(parts))
            parts[3] = assigning_authority
            fields[3] = COMPONENT.join(parts)
        segments[i] = FIELD.join(fields)
    return "\r".join(segments)
