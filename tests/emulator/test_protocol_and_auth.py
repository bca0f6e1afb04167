"""The wire format and adbd's RSA check, without a network."""

from __future__ import annotations

import os

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from mobilize.emulator.auth import (
    KeyFormatError,
    TrustedKeyStore,
    decode_android_pubkey,
    encode_android_pubkey,
    signature_matches,
)
from mobilize.emulator.protocol import (
    HEADER_SIZE,
    MAX_PAYLOAD,
    Command,
    Message,
    ProtocolError,
    check_payload,
    decode_header,
    encode,
    payload_checksum,
)


def test_header_round_trip_with_magic_and_checksum() -> None:
    raw = encode(Message(Command.WRTE, 7, 9, b"hello"), with_checksum=True)
    header = decode_header(raw[:HEADER_SIZE], MAX_PAYLOAD)
    assert (header.command, header.arg0, header.arg1, header.data_length) == (Command.WRTE, 7, 9, 5)
    assert header.data_check == sum(b"hello") == payload_checksum(b"hello")
    check_payload(header, raw[HEADER_SIZE:], checksum_expected=True)
    assert raw[:4] == b"WRTE"


def test_new_peers_get_a_zero_checksum() -> None:
    raw = encode(Message(Command.OKAY, 1, 2, b"x"), with_checksum=False)
    assert decode_header(raw[:HEADER_SIZE], MAX_PAYLOAD).data_check == 0


def test_bad_magic_bad_checksum_and_oversized_payload_are_rejected() -> None:
    raw = bytearray(encode(Message(Command.OPEN, 1, 0, b"shell:ls\0"), with_checksum=True))
    broken = bytes(raw[:20]) + b"\0\0\0\0"
    with pytest.raises(ProtocolError, match="bad magic"):
        decode_header(broken, MAX_PAYLOAD)
    header = decode_header(bytes(raw[:HEADER_SIZE]), MAX_PAYLOAD)
    with pytest.raises(ProtocolError, match="checksum"):
        check_payload(header, b"shell:lx\0", checksum_expected=True)
    with pytest.raises(ProtocolError, match="exceeds maxdata"):
        decode_header(bytes(raw[:HEADER_SIZE]), max_payload=4)


def test_android_public_key_format_matches_adb_shell_keygen(host_key) -> None:
    public_key = decode_android_pubkey(host_key.public_line)
    assert public_key.key_size == 2048
    # Our encoder produces the very blob adb-shell's keygen wrote (n0inv and R^2 included).
    assert encode_android_pubkey(public_key).split()[0] == host_key.public_line.split()[0]


def test_signature_check_is_adbds_sha1_prehashed_pkcs1(host_key, other_host_key) -> None:
    token = os.urandom(20)
    signature = host_key.signer().Sign(token)
    assert signature_matches(decode_android_pubkey(host_key.public_line), token, signature)
    assert not signature_matches(
        decode_android_pubkey(other_host_key.public_line), token, signature
    )
    assert not signature_matches(
        decode_android_pubkey(host_key.public_line), os.urandom(20), signature
    )


def test_trusted_key_store_persists_and_finds_the_signer(tmp_path, host_key) -> None:
    store = TrustedKeyStore(tmp_path / "adb_keys")
    token = os.urandom(20)
    signature = host_key.signer().Sign(token)
    assert store.find_signer(token, signature) is None
    store.add(host_key.public_line)
    store.add(host_key.public_line)  # adding twice keeps one line
    reopened = TrustedKeyStore(tmp_path / "adb_keys")
    assert len(reopened.keys()) == 1
    assert reopened.find_signer(token, signature) is not None
    assert (tmp_path / "adb_keys").stat().st_mode & 0o777 == 0o600


def test_malformed_keys_are_refused() -> None:
    with pytest.raises(KeyFormatError):
        decode_android_pubkey("not-base64!!! host")
    short = encode_android_pubkey(rsa.generate_private_key(65537, 1024).public_key())
    assert decode_android_pubkey(short).key_size == 1024
    with pytest.raises(KeyFormatError):
        decode_android_pubkey(short.split()[0][:-8])
