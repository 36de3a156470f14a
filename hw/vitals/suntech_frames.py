"""SunTech Advantage frames: the bytes both ends put on the wire (driver and simulator).

Host → module: ``0x3A cmd… CK``. Module → host: ``0x3E LEN data… CK`` where LEN counts the
whole frame. CK makes the byte sum of the whole frame 0 mod 256.
"""

from __future__ import annotations

HOST_START = 0x3A
MODULE_START = 0x3E
MAX_MODULE_FRAME = 80
MIN_MODULE_FRAME = 4
RESULT_LEN = 0x18

ACK_RECEIVED = ord("O")
ACK_EXECUTED = ord("K")
ACK_ABORTED = ord("A")
ACK_BUSY = ord("B")
ACK_ERRORS = {ord("E"): "module_error", ord("N"): "rejected", ord("D"): "rejected"}


def checksum(body: bytes) -> int:
    """The byte that makes the sum of ``body`` plus itself 0 mod 256."""
    return (-sum(body)) & 0xFF


def host_frame(*payload: int) -> bytes:
    """A host → module frame: ``0x3A``, ``payload``, checksum."""
    body = bytes((HOST_START, *payload))
    return body + bytes((checksum(body),))


def module_frame(data: bytes) -> bytes:
    """A module → host frame around ``data`` (used by the simulator and the tests)."""
    body = bytes((MODULE_START, len(data) + 3)) + data
    return body + bytes((checksum(body),))


START_ADULT = host_frame(0x20)
ABORT = host_frame(0x79, 0x01, 0x00)
GET_BP_DATA = host_frame(0x79, 0x03, 0x00)
GET_CUFF_PRESSURE = host_frame(0x79, 0x05, 0x00)
