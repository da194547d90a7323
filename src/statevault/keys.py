"""Encryption keys: Fernet keys in an ordered keyring (the first encrypts, every one decrypts).

A key is the standard Fernet key: 32 random bytes as 44 characters of url-safe base64
(``generate_key()``). Several keys make rotation possible, the itsdangerous way: put the new key
first and keep the old ones after it; new states are encrypted with the new key and states
written with an old key still load. See docs/encryption.md.

Nothing here ever puts key material in a message, a ``repr`` or an exception chain: keys are
shown as short key ids (a truncated, domain-separated SHA-256 of the key), which identify a key
without revealing anything usable about it.

The token format is Fernet's (version byte, timestamp, IV, AES-128-CBC ciphertext, HMAC-SHA256)
stored in its raw binary form rather than base64: 25 % smaller, and it skips two base64 passes
that cost more than the cipher itself. ``base64.urlsafe_b64encode(token)`` is a standard Fernet
token that ``cryptography.fernet.Fernet`` decrypts, and ``decrypt`` accepts both forms.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
import struct
import time
from collections.abc import Sequence
from typing import Final

from cryptography.fernet import InvalidToken
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from .errors import EncryptionError, IntegrityError, InvalidKeyError, MissingKeyError, WrongKeyError

__all__ = ["Keyring", "generate_key", "resolve_keyring"]

Buffer = bytes | bytearray | memoryview

#: The environment variable ``Keyring.from_env`` and ``resolve_keyring`` read by default.
ENV_VAR: Final = "STATEVAULT_KEY"

_KEY_RE: Final = re.compile(rb"[A-Za-z0-9_-]{43}=")
_VERSION: Final = 0x80  # Fernet's version byte
_HEAD: Final = 25  # version (1) + timestamp (8) + IV (16)
_MAC: Final = 32  # HMAC-SHA256
_BLOCK: Final = 16
_MIN_TOKEN: Final = _HEAD + _BLOCK + _MAC
_KEY_ID_DOMAIN: Final = b"statevault key id v1\x00"


def generate_key() -> str:
    """Return a new random Fernet key (44 url-safe base64 characters); keep it secret."""
    return base64.urlsafe_b64encode(os.urandom(32)).decode("ascii")


class _Key:
    """One parsed key: its id and its two halves. Never printed."""

    __slots__ = ("encryption", "key_id", "signing")

    def __init__(self, raw: bytes) -> None:
        self.signing = raw[:16]
        self.encryption = raw[16:]
        # Domain separation: the id is not the plain SHA-256 some other tool may publish.
        self.key_id = hashlib.sha256(_KEY_ID_DOMAIN + raw).hexdigest()[:8]

    def __repr__(self) -> str:
        return f"<key {self.key_id}>"


def _parse_key(key: object, where: str) -> _Key:
    if isinstance(key, str):
        # Checked up front rather than by catching UnicodeEncodeError: that exception would
        # stay attached (as __context__) and it holds the whole string, i.e. the key.
        if not key.isascii():
            raise InvalidKeyError(
                f"{where} is not a Fernet key: it has non-ASCII characters "
                "(make a key with statevault.generate_key())"
            )
        data = key.strip().encode("ascii")
    elif isinstance(key, bytes | bytearray | memoryview):
        data = bytes(key).strip()
    else:
        raise InvalidKeyError(
            f"{where} must be a str or bytes Fernet key, not {type(key).__name__}"
        )
    if not _KEY_RE.fullmatch(data):
        raise InvalidKeyError(
            f"{where} is not a Fernet key: expected 44 characters of url-safe base64 ending "
            f"in '=', got {len(data)} characters (make a key with statevault.generate_key())"
        )
    try:
        raw = base64.urlsafe_b64decode(data)
    except (binascii.Error, ValueError):  # pragma: no cover - the pattern above rules it out
        raise InvalidKeyError(f"{where} is not valid base64") from None
    return _Key(raw)


def _split_keys(text: str | bytes) -> list[str | bytes]:
    """Split a comma-separated key list (a Fernet key never contains a comma)."""
    parts: list[str | bytes]
    if isinstance(text, str):
        parts = [p for p in text.split(",") if p.strip()]
    else:
        parts = [p for p in bytes(text).split(b",") if p.strip()]
    return parts


class Keyring:
    """Ordered Fernet keys: the first encrypts, all decrypt (newest first for rotation).

    Immutable and thread-safe. ``repr``/``str`` show the number of keys and their key ids only.
    ``encrypt``/``decrypt`` work on raw (binary) Fernet tokens; see the module docstring.
    A single ``str`` is accepted as one key (or a comma-separated list of keys).
    """

    __slots__ = ("_keys",)

    def __init__(self, keys: Sequence[str | bytes]) -> None:
        if isinstance(keys, str | bytes):
            keys = _split_keys(keys)
        parsed = [_parse_key(k, f"key {i + 1} of the keyring") for i, k in enumerate(keys)]
        self._keys = _dedupe(parsed)
        if not self._keys:
            raise InvalidKeyError(
                "a keyring needs at least one key (make one with statevault.generate_key())"
            )

    @classmethod
    def _of(cls, keys: Sequence[_Key]) -> Keyring:
        ring = cls.__new__(cls)
        ring._keys = _dedupe(keys)
        return ring

    @classmethod
    def from_env(cls, var: str = ENV_VAR) -> Keyring | None:
        """The keyring in environment variable ``var`` (comma-separated keys), None if unset/empty.

        Raises ``InvalidKeyError`` naming the variable and the position of a bad key.
        """
        value = os.environ.get(var, "")
        parts = _split_keys(value)
        if not parts:
            return None
        return cls._of([_parse_key(p, f"key {i + 1} in ${var}") for i, p in enumerate(parts)])

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> Keyring:
        """The keyring in a key file: one key per line, newest first; ``#`` starts a comment.

        Raises ``MissingKeyError`` if the file does not exist or holds no key,
        ``InvalidKeyError`` naming the line of a bad key, ``EncryptionError`` if unreadable.
        """
        shown = os.fspath(path)
        try:
            with open(path, "rb") as f:
                data = f.read()
        except FileNotFoundError as e:
            raise MissingKeyError(
                f"key file {shown} does not exist: create it with one key per line "
                "(statevault.generate_key()) or fix the key_file path"
            ) from e
        except OSError as e:
            raise EncryptionError(f"cannot read key file {shown}: {e.strerror or e}") from e
        keys: list[_Key] = []
        for number, line in enumerate(data.splitlines(), start=1):
            text = line.split(b"#", 1)[0].strip()
            if text:
                keys.append(_parse_key(text, f"line {number} of key file {shown}"))
        if not keys:
            raise MissingKeyError(
                f"key file {shown} holds no key: put one key per line "
                "(statevault.generate_key()), newest first"
            )
        return cls._of(keys)

    @property
    def key_ids(self) -> tuple[str, ...]:
        """The key ids (8 hex digits each, newest first); safe to log and to store in clear."""
        return tuple(k.key_id for k in self._keys)

    def rotated(self, new_key: str | bytes) -> Keyring:
        """A keyring with ``new_key`` first (it encrypts from now on) and these keys after it."""
        return Keyring._of([_parse_key(new_key, "the new key"), *self._keys])

    def __len__(self) -> int:
        return len(self._keys)

    def __repr__(self) -> str:
        n = len(self._keys)
        return f"Keyring({n} key{'s' if n != 1 else ''}: {', '.join(self.key_ids)})"

    __str__ = __repr__

    # ------------------------------------------------------------------ tokens

    def encrypt(self, data: Buffer) -> bytes:
        """Encrypt ``data`` with the first key; return a raw (binary) Fernet token."""
        return bytes(self._encrypt(data))

    def decrypt(self, token: Buffer) -> bytes:
        """Decrypt a raw or base64 Fernet token with whichever key fits.

        Raises ``WrongKeyError`` (``InvalidToken`` chained) when no key authenticates the token
        (wrong keys, or an altered token), ``IntegrityError`` when it is not a token at all.
        """
        view = memoryview(token).cast("B")
        if len(view) and view[0] != _VERSION and bytes(view[:2]) == b"gA":
            # The base64 form of a token starts with "gA" (the 0x80 version byte).
            try:
                view = memoryview(base64.urlsafe_b64decode(bytes(view)))
            except (binascii.Error, ValueError) as e:
                raise IntegrityError("not a Fernet token: invalid base64") from e
        return bytes(self._decrypt(view, None))

    def _encrypt(self, data: Buffer) -> bytearray:
        """Encrypt into one new bytearray (no padded copy of ``data``, no base64)."""
        key = self._keys[0]
        src = memoryview(data).cast("B")
        n = len(src)
        full = n - n % _BLOCK
        pad = _BLOCK - n % _BLOCK
        body = full + _BLOCK
        out = bytearray(_HEAD + body + _MAC)
        dst = memoryview(out)
        iv = os.urandom(16)
        out[0] = _VERSION
        struct.pack_into(">Q", out, 1, int(time.time()))
        out[9:_HEAD] = iv
        enc = Cipher(algorithms.AES(key.encryption), modes.CBC(iv)).encryptor()
        # update_into wants block_size - 1 bytes of slack after the output; the MAC area that
        # follows the ciphertext provides it, and is overwritten afterwards.
        enc.update_into(src[:full], dst[_HEAD : _HEAD + full + _BLOCK - 1])
        last = bytes(src[full:]) + bytes([pad]) * pad
        enc.update_into(last, dst[_HEAD + full : _HEAD + full + 2 * _BLOCK - 1])
        enc.finalize()
        out[_HEAD + body :] = hmac.digest(key.signing, dst[: _HEAD + body], "sha256")
        return out

    def _decrypt(self, token: Buffer, key_id: str | None) -> memoryview:
        """Authenticate and decrypt a raw token into a writable buffer.

        ``key_id`` (from the frame) picks the key directly: with no key of that id the error is
        ``WrongKeyError`` without touching the data; with one whose MAC check fails the bytes
        were altered (``IntegrityError``). Without an id every key is tried (``WrongKeyError``).
        """
        view = memoryview(token).cast("B")
        n = len(view)
        if n < _MIN_TOKEN or (n - _HEAD - _MAC) % _BLOCK or view[0] != _VERSION:
            raise IntegrityError(
                f"not a Fernet token ({n} bytes): the encrypted data is damaged or was not "
                "written by statevault's fernet transform"
            )
        if key_id is not None:
            candidates = [k for k in self._keys if k.key_id == key_id]
            if not candidates:
                raise WrongKeyError(
                    f"this state was encrypted with key id {key_id}, which is not in the "
                    f"keyring ({', '.join(self.key_ids)}): pass that key (during a rotation "
                    "keep old keys after the new one)"
                ) from InvalidToken()
        else:
            candidates = list(self._keys)
        signed = view[: n - _MAC]
        tag = view[n - _MAC :]
        for key in candidates:
            if hmac.compare_digest(hmac.digest(key.signing, signed, "sha256"), tag):
                return _cbc_decrypt(key, view[9:_HEAD], view[_HEAD : n - _MAC])
        if key_id is not None:
            raise IntegrityError(
                f"encrypted data failed authentication with key {key_id}, the key it was "
                "written with: the stored bytes were altered after writing"
            ) from InvalidToken()
        raise WrongKeyError(
            f"none of the {len(self._keys)} configured key(s) ({', '.join(self.key_ids)}) "
            "decrypts this data: pass the key it was written with (or it was altered)"
        ) from InvalidToken()


def _cbc_decrypt(key: _Key, iv: memoryview, ciphertext: memoryview) -> memoryview:
    n = len(ciphertext)
    out = bytearray(n + _BLOCK - 1)  # update_into's required slack
    dec = Cipher(algorithms.AES(key.encryption), modes.CBC(bytes(iv))).decryptor()
    got = dec.update_into(ciphertext, out)
    dec.finalize()
    pad = out[got - 1] if got else 0
    # The MAC was valid, so bad padding means a writer bug, not an attack (no oracle here).
    if not 1 <= pad <= _BLOCK or out[got - pad : got] != bytes([pad]) * pad:
        raise IntegrityError("encrypted data has invalid padding: it was not written by Fernet")
    return memoryview(out)[: got - pad]


def _dedupe(keys: Sequence[_Key]) -> tuple[_Key, ...]:
    seen: set[bytes] = set()
    out: list[_Key] = []
    for k in keys:
        whole = k.signing + k.encryption
        if whole not in seen:
            seen.add(whole)
            out.append(k)
    return tuple(out)


def resolve_keyring(
    encryption_key: str | bytes | Sequence[str | bytes] | Keyring | None = None,
    *,
    key_file: str | os.PathLike[str] | None = None,
    use_env: bool = True,
) -> Keyring | None:
    """The keyring a manager uses: explicit key(s) > ``key_file`` > ``$STATEVAULT_KEY`` > None.

    A ``str``/``bytes`` key may hold several comma-separated keys (newest first). An explicit
    empty key raises ``InvalidKeyError`` rather than silently writing unencrypted state; pass
    ``None`` for no encryption. ``use_env=False`` ignores the environment.
    """
    if encryption_key is not None:
        if isinstance(encryption_key, Keyring):
            return encryption_key
        if isinstance(encryption_key, str | bytes):
            parts = _split_keys(encryption_key)
            if not parts:
                raise InvalidKeyError(
                    "encryption_key is empty: pass a key (statevault.generate_key()) or None "
                    "for no encryption"
                )
            return Keyring(parts)
        return Keyring(list(encryption_key))
    if key_file is not None:
        return Keyring.from_file(key_file)
    if use_env:
        return Keyring.from_env()
    return None
