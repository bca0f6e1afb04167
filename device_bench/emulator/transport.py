"""One ADB connection as adbd serves it: handshake, authentication, streams, flow control.

Threads: one reader per connection dispatches messages; every opened stream runs its
service (shell, sync, ...) in its own thread and talks to the host through a Stream, which
does the READY/WRITE dance: one WRTE in flight per direction, each answered by an OKAY.
Inbound data is acknowledged while less than HIGH_WATER bytes wait unread, so a push of
any size streams through a bounded buffer instead of piling up in memory.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Protocol

from mobilize.emulator.auth import KeyFormatError, TrustedKeyStore
from mobilize.emulator.faults import Faults
from mobilize.emulator.protocol import (
    A_VERSION,
    A_VERSION_MIN,
    A_VERSION_SKIP_CHECKSUM,
    HEADER_SIZE,
    MAX_PAYLOAD,
    TOKEN_SIZE,
    AuthType,
    Command,
    Message,
    ProtocolError,
    check_payload,
    decode_header,
    encode,
)

log = logging.getLogger(__name__)

HIGH_WATER = 4 * MAX_PAYLOAD
# How often a blocked writer re-checks whether its connection died.
_POLL_SECONDS = 0.5


class StreamClosed(Exception):
    """The host closed the stream (or the connection went away)."""


class Stream:
    """The device end of one ADB stream, used by a service running in its own thread."""

    def __init__(self, connection: Connection, local_id: int, remote_id: int) -> None:
        self.connection = connection
        self.local_id = local_id
        self.remote_id = remote_id
        self._inbound: deque[bytes] = deque()
        self._offset = 0  # bytes already consumed from _inbound[0]
        self._buffered = 0
        self._ack_owed = False
        self._remote_closed = False
        self._condition = threading.Condition()
        # OPEN implies READY: the first WRTE may go out at once.
        self._can_write = threading.Event()
        self._can_write.set()
        self._outbound = bytearray()
        self._closed = False

    # --- called from the connection's reader thread -------------------------------------
    def on_write(self, payload: bytes) -> None:
        with self._condition:
            if payload:
                self._inbound.append(payload)
                self._buffered += len(payload)
            acknowledge_now = self._buffered <= HIGH_WATER
            self._ack_owed = not acknowledge_now
            self._condition.notify_all()
        if acknowledge_now:
            self._send_ready()

    def on_ready(self) -> None:
        self._can_write.set()

    def on_close(self) -> None:
        with self._condition:
            self._remote_closed = True
            self._condition.notify_all()
        self._can_write.set()

    # --- called from the service thread -------------------------------------------------
    @property
    def remote_closed(self) -> bool:
        return self._remote_closed

    def read_some(self, limit: int = MAX_PAYLOAD) -> bytes:
        """Up to `limit` bytes, waiting for at least one; b"" once the host closed."""
        self.flush()
        with self._condition:
            while not self._inbound and not self._remote_closed:
                self._condition.wait()
            if not self._inbound:
                return b""
            return self._take(limit)

    def read_exact(self, count: int) -> bytes:
        self.flush()
        parts = []
        remaining = count
        with self._condition:
            while remaining > 0:
                while not self._inbound and not self._remote_closed:
                    self._condition.wait()
                if not self._inbound:
                    raise StreamClosed(f"stream closed with {remaining} of {count} bytes unread")
                part = self._take(remaining)
                parts.append(part)
                remaining -= len(part)
        return b"".join(parts)

    def _take(self, limit: int) -> bytes:
        head = self._inbound[0]
        part = head[self._offset : self._offset + limit]
        self._offset += len(part)
        if self._offset >= len(head):
            self._inbound.popleft()
            self._offset = 0
        self._buffered -= len(part)
        if self._ack_owed and self._buffered <= HIGH_WATER:
            self._ack_owed = False
            threading.Thread(target=self._send_ready, daemon=True).start()
        return part

    def write(self, data: bytes) -> None:
        self._outbound += data
        chunk_size = self.connection.max_payload
        while len(self._outbound) >= chunk_size:
            chunk = bytes(self._outbound[:chunk_size])
            del self._outbound[:chunk_size]
            self._send_chunk(chunk)

    def flush(self) -> None:
        if self._outbound:
            chunk = bytes(self._outbound)
            self._outbound.clear()
            self._send_chunk(chunk)

    def _send_chunk(self, chunk: bytes) -> None:
        while not self._can_write.wait(_POLL_SECONDS):
            if not self.connection.alive:
                raise StreamClosed("connection lost")
        if self._remote_closed or not self.connection.alive:
            raise StreamClosed("host closed the stream")
        self._can_write.clear()
        self.connection.send(Message(Command.WRTE, self.local_id, self.remote_id, chunk))

    def _send_ready(self) -> None:
        if not self._closed:
            self.connection.send(Message(Command.OKAY, self.local_id, self.remote_id))

    def close(self) -> None:
        """Flush what the service wrote and tell the host the stream is over."""
        if self._closed:
            return
        try:
            self.flush()
        except StreamClosed:
            pass
        self._closed = True
        # Sent even when the host closed first: a CLSE for a stream the host already
        # forgot is ignored by the protocol, and adb-shell waits for it after a sync QUIT.
        self.connection.send(Message(Command.CLSE, self.local_id, self.remote_id))
        self.connection.forget(self.local_id)

    def drop_connection(self) -> None:
        """Fault injection: the cable is pulled in the middle of whatever is going on."""
        self.connection.drop()


Service = Callable[[Stream], None]


class DeviceSide(Protocol):
    """What a connection needs from the emulated device it serves."""

    faults: Faults
    trusted_keys: TrustedKeyStore
    accept_new_keys: bool

    def banner(self) -> str: ...

    def open_service(self, destination: str) -> Service | None: ...

    def notice(self, message: str) -> None: ...


class Connection:
    """One TCP connection from a host, served until it closes."""

    def __init__(self, sock: socket.socket, peer: str, device: DeviceSide) -> None:
        self.sock = sock
        self.peer = peer
        self.device = device
        self.version = A_VERSION_MIN
        self.max_payload = MAX_PAYLOAD
        self.connected = False  # a CNXN arrived; everything before it is ignored
        self.online = False
        self.alive = True
        self._token = b""
        self._send_lock = threading.Lock()
        self._streams: dict[int, Stream] = {}
        self._streams_lock = threading.Lock()
        self._next_id = 1

    # --- sending ---------------------------------------------------------------------
    def send(self, message: Message) -> None:
        data = encode(message, with_checksum=self.version < A_VERSION_SKIP_CHECKSUM)
        with self._send_lock:
            if not self.alive:
                return
            try:
                self.sock.sendall(data)
            except OSError:
                self._mark_dead()

    def drop(self) -> None:
        log.info("fault: dropping connection from %s", self.peer)
        self._mark_dead()
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _mark_dead(self) -> None:
        self.alive = False

    def forget(self, local_id: int) -> None:
        with self._streams_lock:
            self._streams.pop(local_id, None)

    # --- receiving -------------------------------------------------------------------
    def serve(self) -> None:
        try:
            while self.alive:
                message = self._read_message()
                if message is None:
                    break
                self._dispatch(message)
        except (OSError, ProtocolError) as error:
            log.info("connection from %s ended: %s", self.peer, error)
        finally:
            self._mark_dead()
            with self._streams_lock:
                streams = list(self._streams.values())
                self._streams.clear()
            for stream in streams:
                stream.on_close()
            try:
                self.sock.close()
            except OSError:
                pass

    def _read_exact(self, count: int) -> bytes | None:
        buffer = bytearray(count)
        view = memoryview(buffer)
        received = 0
        while received < count:
            n = self.sock.recv_into(view[received:], count - received)
            if n == 0:
                return None
            received += n
        return bytes(buffer)

    def _read_message(self) -> Message | None:
        raw = self._read_exact(HEADER_SIZE)
        if raw is None:
            return None
        header = decode_header(raw, self.max_payload)
        payload = self._read_exact(header.data_length) if header.data_length else b""
        if payload is None:
            return None
        check_payload(header, payload, self.version < A_VERSION_SKIP_CHECKSUM)
        return Message(header.command, header.arg0, header.arg1, payload)

    def _dispatch(self, message: Message) -> None:
        handlers = {
            Command.CNXN: self._on_connect,
            Command.AUTH: self._on_auth,
            Command.OPEN: self._on_open,
            Command.OKAY: self._on_ready,
            Command.WRTE: self._on_write,
            Command.CLSE: self._on_close,
        }
        if not self.connected and message.command != Command.CNXN:
            return  # the protocol says: ignore anything before CONNECT
        handler = handlers.get(message.command)
        if handler is not None:
            handler(message)
        # STLS and the obsolete SYNC are not spoken here; adbd without TLS ignores them.

    def _on_connect(self, message: Message) -> None:
        # As adbd: take the lower of both versions and payload sizes, then ask for proof.
        if message.arg0 < A_VERSION_MIN:
            raise ProtocolError(f"unknown protocol version {message.arg0:#010x}")
        self.connected = True
        self.online = False
        self.version = min(message.arg0, A_VERSION)
        self.max_payload = min(message.arg1, MAX_PAYLOAD)
        self._send_auth_token()

    def _send_auth_token(self) -> None:
        self._token = os.urandom(TOKEN_SIZE)
        self.send(Message(Command.AUTH, AuthType.TOKEN, 0, self._token))

    def _go_online(self) -> None:
        self.online = True
        banner = self.device.banner().encode("utf-8")
        self.send(Message(Command.CNXN, A_VERSION, self.max_payload, banner))

    def _on_auth(self, message: Message) -> None:
        faults = self.device.faults
        if message.arg0 == AuthType.SIGNATURE:
            signer = None
            if not faults.refuse_auth and self._token:
                signer = self.device.trusted_keys.find_signer(self._token, message.payload)
            if signer is not None:
                self._go_online()
            else:
                self._send_auth_token()  # adbd sends a fresh token so the host tries its next key
        elif message.arg0 == AuthType.RSAPUBLICKEY:
            key_line = message.payload.split(b"\0", 1)[0].decode("utf-8", "replace").strip()
            self._on_public_key(key_line)
        else:
            raise ProtocolError(f"unexpected AUTH type {message.arg0}")

    def _on_public_key(self, key_line: str) -> None:
        comment = key_line.split(maxsplit=1)[1] if " " in key_line else "unnamed key"
        if self.device.faults.refuse_auth or not self.device.accept_new_keys:
            # A real phone shows "Allow USB debugging?" and waits; nobody taps Allow here.
            self.device.notice(
                f"unauthorized: {self.peer} offered the unknown key '{comment}'; not accepted "
                "(start the emulator with --accept-new-keys to allow new keys)"
            )
            return
        try:
            self.device.trusted_keys.add(key_line)
        except KeyFormatError as error:
            self.device.notice(f"rejected a malformed public key from {self.peer}: {error}")
            return
        self.device.notice(f"allowed new key '{comment}' from {self.peer}")
        self._go_online()

    def _on_open(self, message: Message) -> None:
        if not self.online or message.arg0 == 0:
            return
        destination = message.payload.rstrip(b"\0").decode("utf-8", "replace")
        service = self.device.open_service(destination)
        if service is None:
            self.send(Message(Command.CLSE, 0, message.arg0))
            return
        with self._streams_lock:
            local_id = self._next_id
            self._next_id += 1
            stream = Stream(self, local_id, message.arg0)
            self._streams[local_id] = stream
        self.send(Message(Command.OKAY, local_id, message.arg0))
        threading.Thread(
            target=self._run_service,
            args=(service, stream, destination),
            name=f"adb-service-{destination[:24]}",
            daemon=True,
        ).start()

    def _run_service(self, service: Service, stream: Stream, destination: str) -> None:
        stall = self.device.faults.stall_for(destination)
        if stall:
            time.sleep(stall)
        try:
            service(stream)
        except StreamClosed:
            pass
        except Exception:  # noqa: BLE001 - a broken service must not take adbd down
            log.exception("service %r failed", destination)
        finally:
            stream.close()

    def _stream(self, message: Message) -> Stream | None:
        # Ids are relative to the sender: arg1 is our (local) id.
        with self._streams_lock:
            return self._streams.get(message.arg1)

    def _on_ready(self, message: Message) -> None:
        stream = self._stream(message)
        if stream is not None:
            stream.on_ready()

    def _on_write(self, message: Message) -> None:
        stream = self._stream(message)
        if stream is not None:
            stream.on_write(message.payload)

    def _on_close(self, message: Message) -> None:
        stream = self._stream(message)
        if stream is not None:
            stream.on_close()
