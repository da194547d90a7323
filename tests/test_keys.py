"""Keys and keyrings: parsing, rotation, env var and key file, Fernet compatibility, no leaks."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest
from cryptography.fernet import Fernet, InvalidToken
from hypothesis import given, settings
from hypothesis import strategies as st

from statevault.errors import (
    EncryptionError,
    IntegrityError,
    InvalidKeyError,
    MissingKeyError,
    StateError,
    WrongKeyError,
)
from statevault.keys import Keyring, generate_key, resolve_keyring

KEY_A = generate_key()
KEY_B = generate_key()
KEY_C = generate_key()


def secrets_of(key: str) -> list[str]:
    """Every form of a key that must never show up in text we produce."""
    raw = base64.urlsafe_b64decode(key)
    return [key, key[:20], key[20:40], raw.hex(), raw.hex()[:16], repr(raw)[2:20]]


def assert_no_key(text: str, *keys: str) -> None:
    for key in keys:
        for secret in secrets_of(key):
            assert secret not in text


def test_generate_key_is_a_fernet_key() -> None:
    key = generate_key()
    assert len(key) == 44
    assert key != generate_key()
    token = Fernet(key).encrypt(b"x")
    assert Fernet(key).decrypt(token) == b"x"


def test_keyring_basics_and_repr_hide_keys() -> None:
    ring = Keyring([KEY_A, KEY_B.encode()])
    assert len(ring) == 2
    assert len(ring.key_ids) == 2
    assert all(len(i) == 8 and int(i, 16) >= 0 for i in ring.key_ids)
    for text in (repr(ring), str(ring), f"{ring}"):
        assert "2 keys" in text
        assert all(i in text for i in ring.key_ids)
        assert_no_key(text, KEY_A, KEY_B)
    assert Keyring([KEY_A]).key_ids[0] == ring.key_ids[0]
    assert "1 key:" in repr(Keyring([KEY_A]))


def test_keyring_accepts_a_single_string_and_dedupes() -> None:
    ring = Keyring(f"{KEY_A}, {KEY_B}")  # one string: comma-separated keys
    assert len(ring) == 2
    assert len(Keyring([KEY_A, KEY_A, f"  {KEY_A}\n"])) == 1


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "short",
        KEY_A[:-1],
        KEY_A + "A",
        KEY_A[:-2] + "!=",
        KEY_A[:-2] + "é=",
        KEY_A.replace("=", "A"),
        b"\xff" * 44,
        12345,
        None,
    ],
)
def test_invalid_keys_raise_without_showing_them(bad: object) -> None:
    with pytest.raises(InvalidKeyError) as info:
        Keyring([bad])  # type: ignore[list-item]
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, StateError)
    assert "generate_key" in str(info.value) or "str or bytes" in str(info.value)
    if isinstance(bad, str) and len(bad) > 8:
        assert bad not in str(info.value)
        assert bad[:20] not in str(info.value)
    # No chained exception that could carry the key (e.g. a UnicodeEncodeError's .object).
    assert info.value.__cause__ is None
    assert info.value.__context__ is None


def test_empty_keyring_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="at least one key"):
        Keyring([])


def test_encrypt_decrypt_round_trip_and_fernet_compatibility() -> None:
    ring = Keyring([KEY_A])
    token = ring.encrypt(b"secret payload")
    assert token[0] == 0x80  # raw Fernet token, no base64
    assert b"secret payload" not in token
    assert ring.decrypt(token) == b"secret payload"
    # Our raw token is a standard Fernet token once base64-encoded...
    assert Fernet(KEY_A).decrypt(base64.urlsafe_b64encode(token)) == b"secret payload"
    # ...and tokens from cryptography's Fernet decrypt here, raw or base64.
    standard = Fernet(KEY_A).encrypt(b"from fernet")
    assert ring.decrypt(standard) == b"from fernet"
    assert ring.decrypt(base64.urlsafe_b64decode(standard)) == b"from fernet"
    assert ring.decrypt(memoryview(bytearray(token))) == b"secret payload"


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=300))
def test_encrypt_round_trip_any_length(data: bytes) -> None:
    ring = Keyring([KEY_A])
    token = ring.encrypt(data)
    assert len(token) == 25 + (len(data) // 16 + 1) * 16 + 32
    assert ring.decrypt(token) == data
    assert Fernet(KEY_A).decrypt(base64.urlsafe_b64encode(token)) == data


def test_wrong_key_chains_invalid_token() -> None:
    token = Keyring([KEY_A]).encrypt(b"data")
    with pytest.raises(WrongKeyError) as info:
        Keyring([KEY_B, KEY_C]).decrypt(token)
    assert isinstance(info.value.__cause__, InvalidToken)
    assert "2 configured key" in str(info.value)
    assert_no_key(str(info.value), KEY_A, KEY_B, KEY_C)


def test_altered_token_is_rejected() -> None:
    ring = Keyring([KEY_A])
    token = bytearray(ring.encrypt(b"data" * 10))
    token[40] ^= 1
    with pytest.raises(WrongKeyError):
        ring.decrypt(token)


@pytest.mark.parametrize(
    "token", [b"", b"\x80" * 10, b"\x81" + bytes(72), b"\x80" + bytes(80), b"gA!!notbase64"]
)
def test_malformed_tokens(token: bytes) -> None:
    with pytest.raises((IntegrityError, WrongKeyError)):
        Keyring([KEY_A]).decrypt(token)


def test_malformed_token_structure_is_integrity_error() -> None:
    with pytest.raises(IntegrityError, match="not a Fernet token"):
        Keyring([KEY_A]).decrypt(b"\x80" + bytes(70))


def test_rotation() -> None:
    old = Keyring([KEY_A])
    old_token = old.encrypt(b"written with the old key")
    rotated = old.rotated(KEY_B)
    assert rotated.key_ids == (Keyring([KEY_B]).key_ids[0], old.key_ids[0])
    assert rotated.decrypt(old_token) == b"written with the old key"
    new_token = rotated.encrypt(b"new")
    assert Keyring([KEY_B]).decrypt(new_token) == b"new"
    with pytest.raises(WrongKeyError):
        old.decrypt(new_token)
    with pytest.raises(WrongKeyError):
        Keyring([KEY_B]).decrypt(old_token)
    # Rotating to a key already present moves it to the front, once.
    again = rotated.rotated(KEY_A)
    assert again.key_ids == (old.key_ids[0], Keyring([KEY_B]).key_ids[0])
    with pytest.raises(InvalidKeyError):
        old.rotated("not a key")


def test_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STATEVAULT_KEY", raising=False)
    assert Keyring.from_env() is None
    monkeypatch.setenv("STATEVAULT_KEY", "")
    assert Keyring.from_env() is None
    monkeypatch.setenv("STATEVAULT_KEY", " , ")
    assert Keyring.from_env() is None
    monkeypatch.setenv("STATEVAULT_KEY", KEY_A)
    ring = Keyring.from_env()
    assert ring is not None
    assert ring.key_ids == Keyring([KEY_A]).key_ids
    monkeypatch.setenv("STATEVAULT_KEY", f" {KEY_B} , {KEY_A} ")
    ring = Keyring.from_env()
    assert ring is not None
    assert ring.key_ids == Keyring([KEY_B, KEY_A]).key_ids
    monkeypatch.setenv("MY_KEYS", KEY_C)
    ring = Keyring.from_env("MY_KEYS")
    assert ring is not None
    assert ring.key_ids == Keyring([KEY_C]).key_ids


def test_from_env_bad_key_names_variable_not_value(monkeypatch: pytest.MonkeyPatch) -> None:
    bad = KEY_A[:-3] + "***"
    monkeypatch.setenv("STATEVAULT_KEY", f"{KEY_B},{bad}")
    with pytest.raises(InvalidKeyError) as info:
        Keyring.from_env()
    assert "key 2 in $STATEVAULT_KEY" in str(info.value)
    assert bad not in str(info.value)
    assert bad[:20] not in str(info.value)


def test_from_file(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    path.write_text(f"# rotated 2026-01\n\n{KEY_B}  # new\n   {KEY_A}\n# {KEY_C} retired\n")
    ring = Keyring.from_file(path)
    assert ring.key_ids == Keyring([KEY_B, KEY_A]).key_ids
    assert Keyring.from_file(str(path)).key_ids == ring.key_ids


def test_from_file_errors(tmp_path: Path) -> None:
    missing = tmp_path / "nope.key"
    with pytest.raises(MissingKeyError, match="does not exist") as info:
        Keyring.from_file(missing)
    assert isinstance(info.value.__cause__, FileNotFoundError)
    assert str(missing) in str(info.value)

    empty = tmp_path / "empty.key"
    empty.write_text("# only a comment\n\n")
    with pytest.raises(MissingKeyError, match="holds no key"):
        Keyring.from_file(empty)

    bad = tmp_path / "bad.key"
    secret_ish = "x" * 43 + "!"
    bad.write_text(f"{KEY_A}\n{secret_ish}\n")
    with pytest.raises(InvalidKeyError, match="line 2 of key file") as info2:
        Keyring.from_file(bad)
    assert secret_ish not in str(info2.value)

    binary = tmp_path / "binary.key"
    binary.write_bytes(b"\xff\xfe" * 22 + b"\n")
    with pytest.raises(InvalidKeyError, match="line 1"):
        Keyring.from_file(binary)

    with pytest.raises(EncryptionError, match="cannot read key file"):
        Keyring.from_file(tmp_path)  # a directory


def test_resolve_keyring_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "k"
    path.write_text(KEY_B + "\n")
    monkeypatch.setenv("STATEVAULT_KEY", KEY_C)
    id_a, id_b, id_c = (Keyring([k]).key_ids[0] for k in (KEY_A, KEY_B, KEY_C))

    def ids(ring: Keyring | None) -> tuple[str, ...] | None:
        return None if ring is None else ring.key_ids

    assert ids(resolve_keyring(KEY_A, key_file=path)) == (id_a,)
    assert ids(resolve_keyring(KEY_A.encode())) == (id_a,)
    assert ids(resolve_keyring([KEY_A, KEY_B])) == (id_a, id_b)
    assert ids(resolve_keyring(f"{KEY_A},{KEY_B}")) == (id_a, id_b)
    ring = Keyring([KEY_A])
    assert resolve_keyring(ring) is ring
    assert ids(resolve_keyring(key_file=path)) == (id_b,)
    assert ids(resolve_keyring()) == (id_c,)
    assert resolve_keyring(use_env=False) is None
    monkeypatch.delenv("STATEVAULT_KEY")
    assert resolve_keyring() is None
    with pytest.raises(InvalidKeyError, match="empty"):
        resolve_keyring("")
    with pytest.raises(ValueError, match="at least one key"):
        resolve_keyring([])
    with pytest.raises(MissingKeyError):
        resolve_keyring(key_file=os.fspath(tmp_path / "absent"))
