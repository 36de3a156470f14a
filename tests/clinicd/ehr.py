"""A stand-in EHR for the tests: hl7apy's own MLLP server and parser (code nobody here
wrote). Every ORU^R01 is parsed and validated with hl7apy at STRICT level; the answer is
``AA``, or ``AE`` with hl7apy's complaint, or whatever ``answer`` forces."""

from __future__ import annotations

import threading
from typing import Any

from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.core import Message
from hl7apy.mllp import AbstractErrorHandler, AbstractHandler, MLLPServer
from hl7apy.parser import parse_message


def strict(text: str) -> Any:
    """The message parsed and validated by hl7apy, strict; raises on any violation."""
    message = parse_message(text, validation_level=VALIDATION_LEVEL.STRICT, find_groups=True)
    message.validate()
    return message


def ack(code: str, control_id: str, text: str = "") -> str:
    """An HL7 ACK built by hl7apy, MLLP-framed."""
    msg = Message("ACK", version="2.6")
    msg.msh.msh_3 = "TEST-EHR"
    msg.msh.msh_9 = "ACK^R01^ACK"
    msg.msh.msh_10 = f"ACK{control_id}"[:20]
    msg.msh.msh_11 = "P"
    msg.msa.msa_1 = code
    msg.msa.msa_2 = control_id
    if text:
        msg.msa.msa_3 = "".join(c for c in text if c.isalnum() or c in " .-_")[:80]
    return str(msg.to_mllp())


class Ehr:
    """The listener on a free loopback port, in a thread; ``received`` and ``answers`` kept."""

    def __init__(self) -> None:
        self.received: list[str] = []
        self.answers: list[str] = []
        self.errors: list[str] = []  # why each message answered AE was refused
        self.answer: str | None = None  # force "AR"/"AE"; None: validate
        ehr = self

        class Oru(AbstractHandler):  # type: ignore[misc]
            def reply(self) -> str:
                text = self.incoming_message
                ehr.received.append(text)
                control_id = text.split("\r", 1)[0].split("|")[9]
                try:
                    strict(text)
                    code, why = ehr.answer or "AA", ""
                except Exception as exc:
                    code, why = "AE", str(exc)
                    ehr.errors.append(why)
                ehr.answers.append(code)
                return ack(code, control_id, why)

        class Error(AbstractErrorHandler):  # type: ignore[misc]
            def reply(self) -> str:
                return ack("AR", "", str(self.exc))

        self.server = MLLPServer(
            "127.0.0.1",
            0,
            {"ORU^R01": (Oru,), "ORU^R01^ORU_R01": (Oru,), "ERR": (Error,)},
            timeout=5,
        )
        self.port = int(self.server.server_address[1])
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop listening."""
        self.server.shutdown()
        self.server.server_close()
