"""Signed unencrypted states (issue 10, item 9): an edit with recomputed CRCs is refused with
a typed error, a stripped signature too; keys rotate the itsdangerous way."""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest

from statevault import StateManager
from statevault.errors import (
    CorruptStateError,
    IntegrityError,
    InvalidKeyError,
    MissingKeyError,
    WrongKeyError,
)
from statevault.frame import ALIGN, MAGIC, PREFIX_SIZE, parse_header
from statevault.keys import SigningKeyring

SECRET = "a signing secret of enough bytes"
OTHER = "another secret, also long enough"


def _align(n: int) -> int:
    return (n + ALIGN - 1) & -ALIGN


def reframe(frame: bytes, edit: Callable[[int, bytearray], None]) -> bytes:
    """Apply ``edit`` to the stored bytes of each section and recompute every CRC, as an
    attacker who can write the object (but has no key) can."""
    header = parse_header(frame, total_size=len(frame))
    start = PREFIX_SIZE
    (header_len,) = struct.unpack_from("<I", frame, 12)
    doc = json.loads(frame[start : start + header_len])
    stored = []
    for i, entry in enumerate(header.sections):
        data = bytearray(frame[entry.offset : entry.end])
        edit(i, data)
        stored.append(bytes(data))
        doc["sections"][i] = [len(data), zlib.crc32(data)]
    text = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()
    data_start = _align(PREFIX_SIZE + len(text))
    body = text + bytes(data_start - PREFIX_SIZE - len(text))
    first = struct.pack("<8sIII", MAGIC, header.version, len(text), zlib.crc32(body))
    out = bytearray(first + struct.pack("<I", zlib.crc32(first)) + body)
    for i, data in enumerate(stored):
        if i:
            out += bytes(_align(len(out)) - len(out))
        out += data
    return bytes(out)


@pytest.fixture
def signed(tmp_path: Path) -> Path:
    path = tmp_path / "s.state"
    StateManager(path, signing_key=SECRET, compression=None).save({"cash": 1000, "pos": "long"})
    return path


def test_signed_state_round_trips_and_says_so(signed: Path) -> None:
    sm = StateManager(signed, signing_key=SECRET)
    assert sm.load() == {"cash": 1000, "pos": "long"}
    info = sm.get_state_info()
    assert info["transforms"] == ["hmac-sha256"]
    assert info["encrypted"] is False


def test_reframe_without_an_edit_still_loads(signed: Path) -> None:
    signed.write_bytes(reframe(signed.read_bytes(), lambda i, d: None))
    assert StateManager(signed, signing_key=SECRET).load()["cash"] == 1000


@pytest.mark.parametrize("where", [40, 60, -40])
def test_one_edited_byte_with_recomputed_crcs_is_refused(signed: Path, where: int) -> None:
    def edit(index: int, data: bytearray) -> None:
        data[where] ^= 0x01

    signed.write_bytes(reframe(signed.read_bytes(), edit))
    with pytest.raises(IntegrityError, match="edited after they were signed"):
        StateManager(signed, signing_key=SECRET, keep_versions=0).load()
    # Without a signing key the CRCs alone cannot tell: that is why signing exists.
    with pytest.raises(MissingKeyError, match="signed"):
        StateManager(signed).load()


def test_a_stripped_signature_is_refused(signed: Path, tmp_path: Path) -> None:
    forged = tmp_path / "forged.state"
    StateManager(forged, compression=None).save({"cash": 10**9, "pos": "long"})
    signed.write_bytes(forged.read_bytes())  # a valid, unsigned frame in its place
    with pytest.raises(IntegrityError, match="not signed or encrypted"):
        StateManager(signed, signing_key=SECRET, keep_versions=0).load()
    signed.write_text('{"cash": 1000000000}')  # plain JSON is never imported either
    with pytest.raises(CorruptStateError, match="not a statevault state"):
        StateManager(signed, signing_key=SECRET, keep_versions=0).load()


def test_rotation_new_key_first_old_keys_verify(signed: Path) -> None:
    rotated = StateManager(signed, signing_key=[OTHER, SECRET])
    assert rotated.load()["cash"] == 1000
    rotated.save({"cash": 2000})
    assert StateManager(signed, signing_key=OTHER).load() == {"cash": 2000}
    with pytest.raises(WrongKeyError, match="signing key id"):
        StateManager(signed, signing_key=SECRET).load()


def test_signing_with_encryption_and_compression(tmp_path: Path) -> None:
    from statevault import generate_key

    key = generate_key()
    sm = StateManager(tmp_path / "s", signing_key=SECRET, encryption_key=key)
    sm.save({"a": [1] * 100})
    assert sm.get_state_info()["transforms"] == ["zstd", "hmac-sha256", "fernet"]
    assert StateManager(tmp_path / "s", signing_key=SECRET, encryption_key=key).load() == {
        "a": [1] * 100
    }


def test_signing_keys_are_checked_and_never_shown() -> None:
    with pytest.raises(InvalidKeyError, match="at least 16"):
        SigningKeyring("short")
    with pytest.raises(InvalidKeyError):
        SigningKeyring([])
    ring = SigningKeyring([SECRET, OTHER])
    assert SECRET not in repr(ring)
    assert len(ring.key_ids) == 2
    assert all(len(k) == 8 for k in ring.key_ids)
