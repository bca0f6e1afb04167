"""The transport seen from a hand-written host: negotiation, flow control, broken streams."""

from __future__ import annotations

import socket
import struct

import pytest

from mobilize.emulator.protocol import (
    A_VERSION,
    A_VERSION_MIN,
    HEADER_SIZE,
    AuthType,
    Command,
    Message,
    decode_header,
    encode,
    payload_checksum,
)

pytestmark = pytest.mark.emulator


class RawHost:
    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)

    def send(self, message: Message, checksum: bool = True) -> None:
        self.sock.sendall(encode(message, with_checksum=checksum))

    def receive(self) -> tuple[Message, int]:
        header = decode_header(self._exact(HEADER_SIZE), 1 << 20)
        payload = self._exact(header.data_length)
        return Message(header.command, header.arg0, header.arg1, payload), header.data_check

    def _exact(self, count: int) -> bytes:
        data = b""
        while len(data) < count:
            chunk = self.sock.recv(count - len(data))
            if not chunk:
                raise ConnectionError("device closed the connection")
            data += chunk
        return data

    def handshake(self, key, version: int, maxdata: int) -> Message:
        self.send(Message(Command.CNXN, version, maxdata, b"host::\0"))
        auth, _ = self.receive()
        assert (auth.command, auth.arg0, len(auth.payload)) == (Command.AUTH, AuthType.TOKEN, 20)
        signature = key.signer().Sign(auth.payload)
        self.send(Message(Command.AUTH, AuthType.SIGNATURE, 0, signature))
        reply, _ = self.receive()
        if reply.command == Command.AUTH:  # unknown key: offer it, as adb does
            public = (key.public_line + "\0").encode()
            self.send(Message(Command.AUTH, AuthType.RSAPUBLICKEY, 0, public))
            reply, _ = self.receive()
        return reply


def test_old_peer_gets_checksums_and_its_small_maxdata(emulated_device, host_key) -> None:
    host = RawHost(emulated_device.port)
    host.send(Message(Command.OPEN, 1, 0, b"shell:echo early\0"))  # before CNXN: ignored
    connect = host.handshake(host_key, A_VERSION_MIN, 4096)
    assert connect.command == Command.CNXN
    assert (connect.arg0, connect.arg1) == (A_VERSION, 4096)
    assert connect.payload.startswith(b"device::ro.product.name=mobilize_emu;")
    assert b"features=shell_v2" in connect.payload
    line = b"x" * 3000
    command = (
        b"shell:echo " + line + b" > /data/local/tmp/f; cat /data/local/tmp/f /data/local/tmp/f"
    )
    host.send(Message(Command.OPEN, 7, 0, command + b"\0"))
    ready, _ = host.receive()
    assert (ready.command, ready.arg1) == (Command.OKAY, 7)
    received = b""
    while True:
        message, check = host.receive()
        if message.command == Command.CLSE:
            break
        assert message.command == Command.WRTE and len(message.payload) <= 4096
        assert check == payload_checksum(message.payload)  # a v1 peer gets real checksums
        received += message.payload
        host.send(Message(Command.OKAY, 7, ready.arg0))
    assert received == (line + b"\n") * 2


def test_unknown_service_is_refused_with_clse(emulated_device, host_key) -> None:
    host = RawHost(emulated_device.port)
    assert host.handshake(host_key, A_VERSION, 1 << 20).command == Command.CNXN
    host.send(Message(Command.OPEN, 3, 0, b"jdwp:1234\0"), checksum=False)
    refused, check = host.receive()
    assert (refused.command, refused.arg0, refused.arg1, check) == (Command.CLSE, 0, 3, 0)


def test_bad_magic_closes_the_connection(emulated_device, host_key) -> None:
    host = RawHost(emulated_device.port)
    assert host.handshake(host_key, A_VERSION, 1 << 20).command == Command.CNXN
    broken = bytearray(encode(Message(Command.OPEN, 3, 0, b"shell:id\0"), with_checksum=False))
    struct.pack_into("<I", broken, 20, 0)
    host.sock.sendall(bytes(broken))
    with pytest.raises(ConnectionError):
        host.receive()


def test_bad_checksum_from_an_old_peer_closes_the_connection(emulated_device, host_key) -> None:
    host = RawHost(emulated_device.port)
    assert host.handshake(host_key, A_VERSION_MIN, 4096).command == Command.CNXN
    wrong = bytearray(encode(Message(Command.OPEN, 3, 0, b"shell:id\0"), with_checksum=True))
    struct.pack_into("<I", wrong, 16, 1)
    host.sock.sendall(bytes(wrong))
    with pytest.raises(ConnectionError):
        host.receive()
