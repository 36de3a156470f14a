"""MLLP framing and acknowledgements, against hl7apy's MLLP server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from mqtt_bridge.clinicd.mllp import (
    MllpError,
    control_id_of,
    exchange,
    frame,
    parse_ack,
    with_identity,
)
from mqtt_bridge.clinicd.record import oru_message
from tests.clinicd.ehr import Ehr, strict
from tests.clinicd.support import session_events
from tests.support.broker import free_port


@pytest.fixture
def ehr() -> Iterator[Ehr]:
    e = Ehr()
    yield e
    e.close()


def valid_message() -> str:
    """The archive's message for a session, with the clinic's identity."""
    return with_identity(oru_message(session_events("s1", 1), "room-3"), "MTL", "MTLCLINIC")


def test_frame_and_ack_parsing() -> None:
    assert frame("MSH|x\r") == b"\x0bMSH|x\r\x1c\r"
    ack = parse_ack("MSH|^~\\&|EHR\rMSA|AE|ROOMD1|Missing PID\r")
    assert (ack.code, ack.control_id, ack.text, ack.accepted) == (
        "AE",
        "ROOMD1",
        "Missing PID",
        False,
    )
    assert parse_ack("MSA|CA|X\r").accepted
    with pytest.raises(MllpError, match="no MSA"):
        parse_ack("MSH|^~\\&|EHR\r")


def test_identity_goes_into_msh_4_and_pid_3() -> None:
    text = with_identity("MSH|^~\\&|ROOMD|room-3|||t\rPID|||P-1^^^^ANON\r", "MTL", "AUTH")
    assert text == "MSH|^~\\&|ROOMD|MTL|||t\rPID|||P-1^^^AUTH^ANON\r"
    assert with_identity("PID|||P-1\r", "", "AUTH") == "PID|||P-1^^^AUTH\r"
    assert with_identity("MSH|^~\\&|ROOMD|room-3\r", "", "") == "MSH|^~\\&|ROOMD|room-3\r"
    assert control_id_of(valid_message()).startswith("ROOMD")


def test_a_valid_message_is_accepted(ehr: Ehr) -> None:
    message = valid_message()
    ack = exchange("127.0.0.1", ehr.port, message, 5)
    assert ack.code == "AA" and ack.control_id == control_id_of(message)
    assert ehr.received == [message]
    parsed = strict(ehr.received[0])
    assert parsed.msh.msh_4.value == "MTL"
    pid = parsed.oru_r01_patient_result.oru_r01_patient.pid
    assert pid.pid_3.value.startswith("P-1^^^MTLCLINIC")


def test_an_invalid_message_gets_ae_and_ar_is_reported(ehr: Ehr) -> None:
    # PID-5 emptied: strict validation refuses a PID without its (pseudonym) name type.
    invalid = valid_message().replace("||^^^^^^S", "")
    assert invalid != valid_message()
    ack = exchange("127.0.0.1", ehr.port, invalid, 5)
    assert ack.code == "AE" and "PID" in ack.text
    ehr.answer = "AR"
    assert exchange("127.0.0.1", ehr.port, valid_message(), 5).code == "AR"


def test_nobody_listening_is_an_mllp_error() -> None:
    with pytest.raises(MllpError, match=r"127\.0\.0\.1"):
        exchange("127.0.0.1", free_port(), "MSH|^~\\&|X\r", 2)


def test_the_archives_message_is_strictly_valid() -> None:
    strict(with_identity(oru_message(session_events("s1", 1), "room-3"), "MTL", "MTLCLINIC"))
