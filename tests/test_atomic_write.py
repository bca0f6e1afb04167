"""atomic_write_bytes replaces regular files and creates new ones atomically, and writes
through anything else: a FIFO, a device or a symlink keeps being what it is."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

from mobilize.contract.files import atomic_write_bytes


def test_a_regular_file_is_replaced_whole(tmp_path: Path) -> None:
    path = tmp_path / "out.json"
    path.write_bytes(b"old")
    before = path.stat().st_ino
    atomic_write_bytes(path, b"new")
    assert path.read_bytes() == b"new"
    assert path.stat().st_ino != before  # a new file renamed into place, not rewritten
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]  # no temp file left


def test_a_new_path_is_created_with_its_folders(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "out.json"
    atomic_write_bytes(path, b"{}")
    assert path.read_bytes() == b"{}"
    assert stat.S_IMODE(path.stat().st_mode) & 0o044  # readable as a plain open() makes it


def test_a_symlink_stays_a_symlink_and_its_target_gets_the_content(tmp_path: Path) -> None:
    target = tmp_path / "real.json"
    target.write_bytes(b"old")
    link = tmp_path / "link.json"
    link.symlink_to(target)
    atomic_write_bytes(link, b"new")
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert target.read_bytes() == b"new"


def test_a_fifo_is_written_to_not_replaced(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()))
    reader.start()
    atomic_write_bytes(fifo, b'{"ok": true}\n')
    reader.join(timeout=10)
    assert received == [b'{"ok": true}\n']
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


def test_a_device_is_written_to_not_replaced() -> None:
    atomic_write_bytes(Path("/dev/null"), b"nothing")
    assert stat.S_ISCHR(os.lstat("/dev/null").st_mode)
