"""ADB transport messages: the 24-byte header, its magic, and the payload checksum.

The wire format follows AOSP's protocol description: six little-endian 32-bit words
(command, arg0, arg1, data_length, data_check, magic) followed by the payload. Peers that
negotiated a version below A_VERSION_SKIP_CHECKSUM still send and expect the byte-sum
checksum; newer peers send zero and ignore it, as adbd does.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum

import numpy as np


class Command(IntEnum):
    SYNC = 0x434E5953
    CNXN = 0x4E584E43
    AUTH = 0x48545541
    OPEN = 0x4E45504F
    OKAY = 0x59414B4F
    CLSE = 0x45534C43
    WRTE = 0x45545257
    STLS = 0x534C5453


class AuthType(IntEnum):
    TOKEN = 1
    SIGNATURE = 2
    RSAPUBLICKEY = 3


A_VERSION_MIN = 0x01000000
A_VERSION_SKIP_CHECKSUM = 0x01000001
A_VERSION = 0x01000001

MAX_PAYLOAD_V1 = 4 * 1024
MAX_PAYLOAD = 1024 * 1024
TOKEN_SIZE = 20

HEADER = struct.Struct("<6I")
HEADER_SIZE = HEADER.size


class ProtocolError(Exception):
    """The peer broke the message stream; the connection must be closed."""


@dataclass(frozen=True)
class Message:
    command: Command
    arg0: int
    arg1: int
    payload: bytes = b""


@dataclass(frozen=True)
class Header:
    command: Command
    arg0: int
    arg1: int
    data_length: int
    data_check: int


def payload_checksum(payload: bytes | bytearray | memoryview) -> int:
    """The byte sum older peers put in data_check (numpy: a 1 MiB payload in microseconds)."""
    if not payload:
        return 0
    return int(np.frombuffer(payload, dtype=np.uint8).sum(dtype=np.uint64)) & 0xFFFFFFFF


def encode(message: Message, with_checksum: bool) -> bytes:
    check = payload_checksum(message.payload) if with_checksum else 0
    header = HEADER.pack(
        int(message.command),
        message.arg0 & 0xFFFFFFFF,
        message.arg1 & 0xFFFFFFFF,
        len(message.payload),
        check,
        int(message.command) ^ 0xFFFFFFFF,
    )
    return header + bytes(message.payload)


def decode_header(raw: bytes, max_payload: int) -> Header:
    command, arg0, arg1, length, check, magic = HEADER.unpack(raw)
    if magic != command ^ 0xFFFFFFFF:
        raise ProtocolError(f"bad magic {magic:#010x} for command {command:#010x}")
    try:
        known = Command(command)
    except ValueError as error:
        raise ProtocolError(f"unknown command {command:#010x}") from error
    if length > max_payload:
        raise ProtocolError(f"payload of {length} bytes exceeds maxdata {max_payload}")
    return Header(known, arg0, arg1, length, check)


def check_payload(header: Header, payload: bytes, checksum_expected: bool) -> None:
    if checksum_expected and payload_checksum(payload) != header.data_check:
        raise ProtocolError(f"bad checksum on {header.command.name} payload")
