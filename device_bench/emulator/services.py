"""The services an ADB stream can open: shell (v1 and the v2 shell protocol), exec, sync.

`shell:CMD` and `exec:CMD` send the command's output raw, stderr mixed into stdout, with
no exit code (as adbd's raw subprocess). `shell,v2,raw:CMD` (the shell protocol, used by
the stock client when the device advertises the shell_v2 feature) frames stdout (id 1),
stderr (id 2) and the exit code (id 3) as [id][u32 length][data] packets.
"""

from __future__ import annotations

import struct
from enum import IntEnum
from typing import TYPE_CHECKING

from mobilize.emulator.shell import ShellSession
from mobilize.emulator.sync import SyncService
from mobilize.emulator.transport import Service, Stream, StreamClosed

if TYPE_CHECKING:
    from mobilize.emulator.device import EmulatedDevice

_PACKET = struct.Struct("<BI")


class ShellPacket(IntEnum):
    STDIN = 0
    STDOUT = 1
    STDERR = 2
    EXIT = 3
    CLOSE_STDIN = 4
    WINDOW_SIZE_CHANGE = 5


class _RawSink:
    def __init__(self, stream: Stream) -> None:
        self.stream = stream

    def write(self, data: bytes) -> None:
        if data:
            self.stream.write(data)


class _PacketSink:
    MAX_CHUNK = 64 * 1024

    def __init__(self, stream: Stream, packet_id: ShellPacket) -> None:
        self.stream = stream
        self.packet_id = packet_id

    def write(self, data: bytes) -> None:
        for start in range(0, len(data), self.MAX_CHUNK):
            chunk = data[start : start + self.MAX_CHUNK]
            self.stream.write(_PACKET.pack(self.packet_id, len(chunk)) + chunk)


def _split_shell_args(spec: str) -> tuple[list[str], str]:
    """'shell,v2,raw:CMD' -> (['v2', 'raw'], 'CMD'); 'shell:CMD' -> ([], 'CMD')."""
    head, _, command = spec.partition(":")
    options = [part for part in head.split(",")[1:] if part]
    return options, command


def open_service(device: EmulatedDevice, destination: str) -> Service | None:
    if destination.startswith("shell,") or destination.startswith("shell:"):
        options, command = _split_shell_args(destination)
        # adbd gives an interactive session a PTY (and so a prompt) unless told "raw".
        pty = "pty" in options or ("raw" not in options and not command.strip())
        if "v2" in options:
            return lambda stream: _shell_v2(device, stream, command, pty)
        return lambda stream: _shell_raw(device, stream, command, pty)
    if destination.startswith("exec:"):
        command = destination[len("exec:") :]
        return lambda stream: _shell_raw(device, stream, command, False)
    if destination.startswith("sync:"):
        return SyncService(device.sandbox, device.faults)
    if destination.startswith("root:"):
        return lambda stream: stream.write(b"adbd cannot run as root in production builds\n")
    return None


def _shell_raw(device: EmulatedDevice, stream: Stream, command: str, pty: bool) -> None:
    session = ShellSession(device)
    sink = _RawSink(stream)
    if command.strip():
        session.run(command, sink, sink)
        return
    _interactive(session, stream, sink, sink, pty)


def _shell_v2(device: EmulatedDevice, stream: Stream, command: str, pty: bool) -> None:
    session = ShellSession(device)
    stdout = _PacketSink(stream, ShellPacket.STDOUT)
    stderr = _PacketSink(stream, ShellPacket.STDERR)
    if command.strip():
        status = session.run(command, stdout, stderr)
    else:
        status = _interactive_v2(session, stream, stdout, stderr, pty)
    stream.write(_PACKET.pack(ShellPacket.EXIT, 1) + bytes([status & 0xFF]))
    stream.flush()


def _prompt(session: ShellSession) -> bytes:
    return f"emu_arm64:{session.identity.cwd} $ ".encode()


def _interactive(session: ShellSession, stream: Stream, stdout, stderr, pty: bool) -> int:
    """A line-at-a-time interactive shell (no job control, no line editing)."""
    pending = b""
    if pty:
        stdout.write(_prompt(session))
    while True:
        data = stream.read_some()
        if not data:
            return _run_rest(session, pending, stdout, stderr)
        pending, exited = _run_complete_lines(session, pending + data, stdout, stderr, pty)
        if exited:
            return session.last_status


def _interactive_v2(session: ShellSession, stream: Stream, stdout, stderr, pty: bool) -> int:
    pending = b""
    if pty:
        stdout.write(_prompt(session))
    while True:
        header = _read_packet_header(stream)
        if header is None:
            return session.last_status
        packet_id, length = header
        data = stream.read_exact(length) if length else b""
        if packet_id == ShellPacket.CLOSE_STDIN:
            return _run_rest(session, pending, stdout, stderr)
        if packet_id != ShellPacket.STDIN:
            continue
        pending, exited = _run_complete_lines(session, pending + data, stdout, stderr, pty)
        if exited:
            return session.last_status


def _run_complete_lines(
    session: ShellSession, pending: bytes, stdout, stderr, pty: bool
) -> tuple[bytes, bool]:
    """Run every complete line typed so far; the unfinished rest, and whether `exit` ran."""
    pending = pending.replace(b"\r", b"\n")
    while b"\n" in pending:
        line, pending = pending.split(b"\n", 1)
        session.run(line.decode("utf-8", "replace"), stdout, stderr)
        if session.variables.get("__exit__") is not None:
            return pending, True
        if pty:
            stdout.write(_prompt(session))
    return pending, False


def _run_rest(session: ShellSession, pending: bytes, stdout, stderr) -> int:
    """Input ended: a last line without its newline still runs, as in sh."""
    if pending.strip():
        session.run(pending.decode("utf-8", "replace"), stdout, stderr)
    return session.last_status


def _read_packet_header(stream: Stream) -> tuple[int, int] | None:
    try:
        return _PACKET.unpack(stream.read_exact(_PACKET.size))
    except StreamClosed:
        return None
