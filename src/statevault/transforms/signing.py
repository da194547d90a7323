"""HMAC-SHA256 signing (``authenticates=True``): integrity for states that are not encrypted.

A frame's CRCs catch accidents, not edits: whoever can write the stored bytes can recompute
them. This transform appends an HMAC-SHA256 tag over each section's bytes (after compression,
so nothing is decompressed before it is verified) and checks it in constant time on read; the
frame's params record the signing key's id (a fingerprint), so a reader picks the key at once
and tells a missing key from altered bytes. Keys come from a ``SigningKeyring``: the first
signs, all verify (rotation as in itsdangerous).

Written by hand on ``hmac``/``hashlib`` rather than with itsdangerous: its ``Signer`` needs
``bytes`` and copies the value twice (``value + sep + sig``, then ``rsplit``) plus a base64
pass, where this works on the section's buffer in place and stores a raw 32-byte tag; the
construction (HMAC-SHA256 over the data, derived key, key list newest first) is the same.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from typing import Any, Final

from ..errors import IntegrityError, MissingKeyError, WrongKeyError
from ..keys import Keyring, SigningKeyring
from .base import Buffer, Transform, TransformFactory

__all__ = ["NAME", "TAG_SIZE", "hmac_sha256", "signing_factory", "unkeyed_factory"]

#: The name recorded in a frame.
NAME: Final = "hmac-sha256"
#: Bytes appended to each section.
TAG_SIZE: Final = 32


def _transform(keys: SigningKeyring, key_id: str | None) -> Transform:
    signer = keys.keys[0]

    def encode(data: Buffer) -> Buffer:
        view = memoryview(data).cast("B")
        out = bytearray(len(view) + TAG_SIZE)
        out[: len(view)] = view
        out[len(view) :] = hmac.digest(signer.key, view, "sha256")
        return out

    def decode(data: Buffer) -> Buffer:
        view = memoryview(data).cast("B")
        if len(view) < TAG_SIZE:
            raise IntegrityError(
                f"a signed section is {len(view)} bytes, shorter than its signature: the "
                "stored bytes were altered or cut; restore a backup"
            )
        candidates = [k for k in keys.keys if key_id is None or k.key_id == key_id]
        if not candidates:
            raise WrongKeyError(
                f"this state was signed with signing key id {key_id}, which is not among the "
                f"configured signing keys ({', '.join(keys.key_ids)}): pass that key (during a "
                "rotation keep old keys after the new one)"
            )
        body, tag = view[:-TAG_SIZE], view[-TAG_SIZE:]
        for key in candidates:
            if hmac.compare_digest(hmac.digest(key.key, body, "sha256"), tag):
                return body
        raise IntegrityError(
            "the signature of a section does not match: the stored bytes were edited after "
            "they were signed (or signed with another key); restore a backup"
        )

    return Transform(NAME, encode, decode, {"key_id": signer.key_id}, authenticates=True)


def hmac_sha256(keys: SigningKeyring) -> Transform:
    """Sign with ``keys``' first key; verify with whichever key the frame names."""
    if not isinstance(keys, SigningKeyring):
        raise TypeError(f"hmac_sha256() needs a SigningKeyring, not {type(keys).__name__}")
    return _transform(keys, None)


def signing_factory(keys: SigningKeyring) -> TransformFactory:
    """A registry factory that verifies with ``keys`` (a manager registers one for itself)."""

    def factory(params: Mapping[str, Any], keyring: Keyring | None) -> Transform:
        key_id = params.get("key_id")
        return _transform(keys, key_id if isinstance(key_id, str) else None)

    return factory


def unkeyed_factory(params: Mapping[str, Any], keyring: Keyring | None) -> Transform:
    """The library default: a signed state needs the reader's signing key to be verified."""
    raise MissingKeyError(
        "this state is signed (hmac-sha256); pass signing_key=... (the secret it was signed "
        "with) to verify and read it"
    )
