"""Fernet encryption (``encrypts=True``, ``authenticates=True``) and the Fernet cipher itself.

The token format is Fernet's (version byte, timestamp, IV, AES-128-CBC ciphertext,
HMAC-SHA256) stored in its raw binary form rather than base64: 25 % smaller, and it skips two
base64 passes that cost more than the cipher itself. ``base64.urlsafe_b64encode(token)`` is a
standard Fernet token that ``cryptography.fernet.Fernet`` decrypts, and ``decrypt_any_token``
accepts both forms. The primitives are ``cryptography``'s; the MAC is checked in constant time
before anything is decrypted. Keys come from a ``Keyring`` (``statevault.keys``): the first
encrypts, every one decrypts.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import os
import struct
import time
from collections.abc import Mapping
from typing import Any, Final

from cryptography.fernet import InvalidToken
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from ..errors import IntegrityError, MissingKeyError, WrongKeyError
from ..keys import FernetKey, Keyring
from .base import Buffer, Transform

__all__ = ["decrypt_any_token", "decrypt_token", "encrypt_token", "fernet", "fernet_factory"]

_VERSION: Final = 0x80  # Fernet's version byte
_HEAD: Final = 25  # version (1) + timestamp (8) + IV (16)
_MAC: Final = 32  # HMAC-SHA256
_BLOCK: Final = 16
_MIN_TOKEN: Final = _HEAD + _BLOCK + _MAC


def encrypt_token(keyring: Keyring, data: Buffer) -> bytearray:
    """Encrypt with the keyring's first key into one new bytearray (no padded copy, no base64)."""
    key = keyring.keys[0]
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


def decrypt_any_token(keyring: Keyring, token: Buffer) -> memoryview:
    """Decrypt a raw or a base64 (standard Fernet) token with whichever key fits."""
    view = memoryview(token).cast("B")
    if len(view) and view[0] != _VERSION and bytes(view[:2]) == b"gA":
        # The base64 form of a token starts with "gA" (the 0x80 version byte).
        try:
            view = memoryview(base64.urlsafe_b64decode(bytes(view)))
        except (binascii.Error, ValueError) as e:
            raise IntegrityError("not a Fernet token: invalid base64") from e
    return decrypt_token(keyring, view, None)


def decrypt_token(keyring: Keyring, token: Buffer, key_id: str | None) -> memoryview:
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
    keys = keyring.keys
    if key_id is not None:
        candidates = [k for k in keys if k.key_id == key_id]
        if not candidates:
            raise WrongKeyError(
                f"this state was encrypted with key id {key_id}, which is not in the "
                f"keyring ({', '.join(keyring.key_ids)}): pass that key (during a rotation "
                "keep old keys after the new one)"
            ) from InvalidToken()
    else:
        candidates = list(keys)
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
        f"none of the {len(keys)} configured key(s) ({', '.join(keyring.key_ids)}) "
        "decrypts this data: pass the key it was written with (or it was altered)"
    ) from InvalidToken()


def _cbc_decrypt(key: FernetKey, iv: memoryview, ciphertext: memoryview) -> memoryview:
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


def _transform(ring: Keyring, hint: str | None) -> Transform:
    def encode(data: Buffer) -> Buffer:
        return encrypt_token(ring, data)

    def decode(data: Buffer) -> Buffer:
        return decrypt_token(ring, data, hint)

    # The output of decrypt is never longer than its input, so decode is bounded already.
    return Transform(
        "fernet", encode, decode, {"key_id": ring.key_ids[0]}, encrypts=True, authenticates=True
    )


def fernet(keyring: Keyring) -> Transform:
    """Fernet encryption with ``keyring``'s first key; decodes with any of its keys.

    ``params`` hold the key id of the encrypting key (a fingerprint, not the key: see
    docs/encryption.md), so a reader picks the right key at once and can tell a wrong key from
    altered data.
    """
    if not isinstance(keyring, Keyring):
        raise TypeError(f"fernet() needs a Keyring, not {type(keyring).__name__}")
    return _transform(keyring, None)


def fernet_factory(params: Mapping[str, Any], keyring: Keyring | None) -> Transform:
    """The registry factory: decodes with the key whose id the frame names."""
    if keyring is None:
        raise MissingKeyError(
            "this state is encrypted; pass encryption_key=... or set STATEVAULT_KEY"
        )
    key_id = params.get("key_id")
    # params describe what this instance's encode writes (the reader's first key); decode uses
    # the id stored in the frame being read.
    return _transform(keyring, key_id if isinstance(key_id, str) else None)
