"""The ADB RSA key pair this computer authenticates with.

The stock adb client keeps its key in ~/.android/adbkey and phones that already tapped
"Allow" for it trust it, so we reuse it; when it is missing we create one the same way
(private key PEM, mode 0600, and adbkey.pub in Android's public key format beside it).
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from adb_shell.auth.keygen import write_public_keyfile
from adb_shell.auth.sign_cryptography import CryptographySigner
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from mobilize.device.errors import DeviceError

KEY_BITS = 2048


def default_key_path() -> Path:
    return Path.home() / ".android" / "adbkey"


def load_or_create_signer(key_path: Path) -> CryptographySigner:
    """A signer for `key_path`, creating the key pair first when it does not exist."""
    if not key_path.exists() or not _public_path(key_path).exists():
        _create_once(key_path)
    try:
        return CryptographySigner(str(key_path))
    except (ValueError, TypeError, OSError) as error:
        raise DeviceError(
            f"cannot read the ADB key {key_path}: {error}",
            hint="move the file away (a new key is then created, and the phone asks to "
            '"Allow" again) or pass another key with --adb-key',
        ) from error


def _public_path(key_path: Path) -> Path:
    return key_path.with_name(key_path.name + ".pub")


def _create_once(key_path: Path) -> None:
    """Create the pair under a lock: parallel device workers must not race to write it."""
    key_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    lock = os.open(key_path.with_name(key_path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not key_path.exists():
            create_key_pair(key_path)
        elif not _public_path(key_path).exists():
            write_public_keyfile(str(key_path), str(_public_path(key_path)))
    finally:
        os.close(lock)


def create_key_pair(key_path: Path) -> None:
    """Write a new private key readable only by this user, then its public half."""
    key_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    private_key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)
    pem = private_key.private_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PrivateFormat.PKCS8,
        encryption_algorithm=serialization.NoEncryption(),
    )
    # O_EXCL: never overwrite a key another process created meanwhile; 0600 from the start
    # so the private key is never readable by others, not even for a moment.
    descriptor = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(pem)
    write_public_keyfile(str(key_path), str(_public_path(key_path)))
