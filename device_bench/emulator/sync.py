"""The `sync:` service: STAT, LIST, SEND, RECV and QUIT, as adbd's file_sync_service.

Requests are 8 bytes (four ASCII id bytes, a little-endian length) followed by a path;
files travel as DATA chunks of at most 64 KiB, written to or read from disk one chunk at
a time, so a push or pull of any size needs only a chunk's worth of memory. Failures are
FAIL messages carrying the text adbd sends ("write failed: No space left on device").
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import struct
from dataclasses import dataclass

from mobilize.emulator.faults import Faults
from mobilize.emulator.sandbox import Access, DeviceFileError, Identity, Sandbox
from mobilize.emulator.transport import Stream, StreamClosed

SYNC_DATA_MAX = 64 * 1024
MAX_PATH_LENGTH = 1024
_REQUEST = struct.Struct("<4sI")
_STAT = struct.Struct("<4sIII")
_DENT = struct.Struct("<4sIIII")


class _Abort(Exception):
    """End the sync session (adbd closes the socket after a FAIL)."""


@dataclass
class _TransferMeter:
    """Counts file bytes of one transfer and pulls the cable when the fault says so."""

    stream: Stream
    faults: Faults
    threshold: int | None
    moved: int = 0

    def add(self, count: int) -> None:
        self.moved += count
        if self.threshold is not None and self.moved >= self.threshold:
            self.faults.consume_drop()
            self.stream.drop_connection()
            raise _Abort(f"fault: connection dropped after {self.moved} bytes")


class SyncService:
    def __init__(self, sandbox: Sandbox, faults: Faults, identity: Identity | None = None):
        self.sandbox = sandbox
        self.faults = faults
        self.identity = identity or Identity()

    def __call__(self, stream: Stream) -> None:
        try:
            while self._handle_one(stream):
                pass
        except _Abort:
            return

    def _handle_one(self, stream: Stream) -> bool:
        header = stream.read_exact(_REQUEST.size)
        request_id, length = _REQUEST.unpack(header)
        if length > MAX_PATH_LENGTH:
            self._fail(stream, "path too long")
            return False
        name = stream.read_exact(length).decode("utf-8", "surrogateescape")
        handlers = {
            b"STAT": self._stat,
            b"LIST": self._list,
            b"SEND": self._send,
            b"RECV": self._recv,
        }
        if request_id == b"QUIT":
            return False
        handler = handlers.get(request_id)
        if handler is None:
            self._fail(stream, f"unknown command {int.from_bytes(request_id, 'little'):08x}")
            return False
        return handler(stream, name)

    @staticmethod
    def _fail(stream: Stream, reason: str) -> None:
        message = reason.encode("utf-8")
        stream.write(_REQUEST.pack(b"FAIL", len(message)) + message)
        stream.flush()

    def _fail_errno(self, stream: Stream, what: str, error: OSError) -> None:
        self._fail(stream, f"{what}: {os.strerror(error.errno or errno.EIO)}")

    # --- STAT / LIST --------------------------------------------------------------------
    def _stat(self, stream: Stream, name: str) -> bool:
        mode = size = mtime = 0
        try:
            info = os.lstat(self.sandbox.host_path(name, self.identity))
            mode, size, mtime = info.st_mode, info.st_size, int(info.st_mtime)
        except OSError:
            pass  # adbd answers a failed lstat with zeros
        stream.write(_STAT.pack(b"STAT", mode, size & 0xFFFFFFFF, mtime & 0xFFFFFFFF))
        return True

    def _list(self, stream: Stream, name: str) -> bool:
        try:
            directory = self.sandbox.host_path(name, self.identity)
            entries = [".", ".."] + sorted(os.listdir(directory))
        except OSError:
            entries = []
        for entry in entries:
            try:
                info = os.lstat(directory / entry)
            except OSError:
                continue
            encoded = entry.encode("utf-8", "surrogateescape")
            stream.write(
                _DENT.pack(
                    b"DENT",
                    info.st_mode,
                    info.st_size & 0xFFFFFFFF,
                    int(info.st_mtime) & 0xFFFFFFFF,
                    len(encoded),
                )
                + encoded
            )
        stream.write(_DENT.pack(b"DONE", 0, 0, 0, 0))
        return True

    # --- SEND (push) --------------------------------------------------------------------
    def _send(self, stream: Stream, spec: str) -> bool:
        path, comma, mode_text = spec.rpartition(",")
        if not comma:
            self._fail(stream, "missing , in ID_SEND_V1")
            return False
        try:
            mode = int(mode_text)
        except ValueError:
            self._fail(stream, "bad mode")
            return False
        meter = _TransferMeter(stream, self.faults, self.faults.drop_threshold())
        try:
            # adbd runs as the shell user: a protected path is "couldn't create file:
            # Permission denied", as on a phone.
            target = self.sandbox.host_path(path, self.identity, Access.WRITE)
            handle = self._open_for_write(target)
        except OSError as error:
            what = "couldn't create file"
            self._fail_errno(stream, what, error)
            return self._drain_after_failure(stream, None)
        try:
            with handle:
                mtime = self._receive_file_data(stream, handle, meter)
        except (_Abort, StreamClosed):
            # The host vanished mid-transfer: adbd unlinks the partial file.
            target.unlink(missing_ok=True)
            raise
        if mtime is None:
            return self._drain_after_failure(stream, target)
        os.chmod(target, (stat.S_IMODE(mode) | 0o600) & 0o7777)
        if mtime:
            os.utime(target, (mtime, mtime))
        stream.write(_REQUEST.pack(b"OKAY", 0))
        return True

    @staticmethod
    def _open_for_write(target):
        if target.is_dir():
            raise DeviceFileError(errno.EISDIR, str(target))
        target.parent.mkdir(parents=True, exist_ok=True)
        return open(target, "wb")  # noqa: SIM115 - closed by the caller's with-block

    def _receive_file_data(self, stream: Stream, handle, meter: _TransferMeter) -> int | None:
        """Write DATA chunks until DONE; the DONE's length is the mtime. None on failure."""
        while True:
            request_id, length = _REQUEST.unpack(stream.read_exact(_REQUEST.size))
            if request_id == b"DONE":
                return length
            if request_id != b"DATA":
                self._fail(stream, "invalid data message")
                raise _Abort("invalid data message")
            if length > SYNC_DATA_MAX:
                self._fail(stream, "oversize data message")
                raise _Abort("oversize data message")
            chunk = stream.read_exact(length)
            meter.add(length)
            try:
                if self.faults.disk_full:
                    raise OSError(errno.ENOSPC, "")
                handle.write(chunk)
            except OSError as error:
                # Gone before the host hears FAIL, so no caller ever sees the partial file
                # (adbd unlinks it only after draining; the end state is the same).
                _discard_partial(handle)
                self._fail_errno(stream, "write failed", error)
                return None

    @staticmethod
    def _drain_after_failure(stream: Stream, target) -> bool:
        # As adbd: keep reading and discarding DATA until DONE so the host sees the FAIL,
        # then remove the partial file and end the session.
        try:
            while True:
                request_id, length = _REQUEST.unpack(stream.read_exact(_REQUEST.size))
                if request_id != b"DATA" or length > SYNC_DATA_MAX:
                    break
                stream.read_exact(length)
        finally:
            if target is not None:
                try:
                    os.unlink(target)
                except OSError:
                    pass
        return False

    # --- RECV (pull) --------------------------------------------------------------------
    def _recv(self, stream: Stream, name: str) -> bool:
        meter = _TransferMeter(stream, self.faults, self.faults.drop_threshold())
        try:
            source = self.sandbox.host_path(name, self.identity)
            if source.is_dir():
                raise DeviceFileError(errno.EISDIR, name)
            handle = open(source, "rb")  # noqa: SIM115 - closed below
        except OSError as error:
            self._fail_errno(stream, "open failed", error)
            return False
        with handle:
            while True:
                chunk = handle.read(SYNC_DATA_MAX)
                if not chunk:
                    break
                stream.write(_REQUEST.pack(b"DATA", len(chunk)) + chunk)
                meter.add(len(chunk))
        stream.write(_REQUEST.pack(b"DONE", 0))
        return True


def _discard_partial(handle) -> None:
    handle.close()
    with contextlib.suppress(OSError):
        os.unlink(handle.name)
