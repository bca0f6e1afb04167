"""RSA authentication as adbd does it, and the emulator's file of trusted keys.

A host proves it holds a trusted key by signing adbd's 20-byte random token: the token is
treated as an already computed SHA-1 digest and signed with PKCS#1 v1.5 (RSA_verify with
NID_sha1 on the device side). Public keys travel in Android's own format: base64 of a
little-endian struct (modulus length in words, n0inv, modulus, R^2 mod n, exponent),
followed by a space and a comment such as "user@host" — the format of ~/.android/adbkey.pub.
"""

from __future__ import annotations

import base64
import binascii
import os
import struct
import threading
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa, utils

_WORD = struct.Struct("<I")


class KeyFormatError(ValueError):
    """A public key line that is not in Android's adbkey.pub format."""


@dataclass(frozen=True)
class TrustedKey:
    line: str  # the line as stored: "BASE64 comment"
    public_key: rsa.RSAPublicKey

    @property
    def comment(self) -> str:
        parts = self.line.split(maxsplit=1)
        return parts[1] if len(parts) == 2 else ""


def decode_android_pubkey(line: str) -> rsa.RSAPublicKey:
    """Parse one adbkey.pub line (the comment after the base64 blob is ignored)."""
    fields = line.strip().split()
    if not fields:
        raise KeyFormatError("empty public key")
    try:
        blob = base64.b64decode(fields[0], validate=True)
    except (binascii.Error, ValueError) as error:
        raise KeyFormatError(f"public key is not base64: {error}") from error
    if len(blob) < 8:
        raise KeyFormatError("public key is too short")
    (words,) = _WORD.unpack_from(blob, 0)
    modulus_size = words * 4
    expected = 8 + 2 * modulus_size + 4
    if words == 0 or len(blob) != expected:
        raise KeyFormatError(f"public key blob is {len(blob)} bytes, expected {expected}")
    modulus = int.from_bytes(blob[8 : 8 + modulus_size], "little")
    (exponent,) = _WORD.unpack_from(blob, 8 + 2 * modulus_size)
    try:
        return rsa.RSAPublicNumbers(exponent, modulus).public_key()
    except ValueError as error:
        raise KeyFormatError(f"not a valid RSA public key: {error}") from error


def encode_android_pubkey(public_key: rsa.RSAPublicKey, comment: str = "") -> str:
    """The adbkey.pub line for a key (used by tests and tools that make keys)."""
    numbers = public_key.public_numbers()
    modulus_size = (public_key.key_size + 31) // 32 * 4
    words = modulus_size // 4
    n0inv = (-pow(numbers.n, -1, 1 << 32)) % (1 << 32)
    rr = pow(2, modulus_size * 8 * 2, numbers.n)
    blob = (
        _WORD.pack(words)
        + _WORD.pack(n0inv)
        + numbers.n.to_bytes(modulus_size, "little")
        + rr.to_bytes(modulus_size, "little")
        + _WORD.pack(numbers.e)
    )
    encoded = base64.b64encode(blob).decode("ascii")
    return f"{encoded} {comment}".rstrip()


def signature_matches(public_key: rsa.RSAPublicKey, token: bytes, signature: bytes) -> bool:
    try:
        public_key.verify(signature, token, padding.PKCS1v15(), utils.Prehashed(hashes.SHA1()))
    except (InvalidSignature, ValueError):
        return False
    return True


class TrustedKeyStore:
    """The keys this emulated device trusts, one adbkey.pub line each, kept in a file.

    It plays the part of /data/misc/adb/adb_keys: a key the user "allowed" is appended and
    is trusted on the next connection too.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def keys(self) -> list[TrustedKey]:
        if not self.path.exists():
            return []
        keys = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            try:
                keys.append(TrustedKey(line.strip(), decode_android_pubkey(line)))
            except KeyFormatError:
                continue  # adbd logs and skips a bad line; so do we
        return keys

    def find_signer(self, token: bytes, signature: bytes) -> TrustedKey | None:
        for key in self.keys():
            if signature_matches(key.public_key, token, signature):
                return key
        return None

    def add(self, line: str) -> TrustedKey:
        """Trust a key from now on; writes the file atomically (temp file + rename)."""
        key = TrustedKey(line.strip(), decode_android_pubkey(line))
        with self._lock:
            existing = [k.line for k in self.keys()]
            if key.line not in existing:
                existing.append(key.line)
            self.path.parent.mkdir(parents=True, exist_ok=True)
            temporary = self.path.with_name(self.path.name + ".tmp")
            temporary.write_text("\n".join(existing) + "\n", encoding="utf-8")
            os.chmod(temporary, 0o600)
            os.replace(temporary, self.path)
        return key
