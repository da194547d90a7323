"""Encryption keys: Fernet keys in an ordered keyring (the first encrypts, every one decrypts).

A key is the standard Fernet key: 32 random bytes as 44 characters of url-safe base64
(``generate_key()``). Several keys make rotation possible, the itsdangerous way: put the new key
first and keep the old ones after it; new states are encrypted with the new key and states
written with an old key still load. See docs/encryption.md.

Nothing here ever puts key material in a message, a ``repr`` or an exception chain: keys are
shown as short key ids (a truncated, domain-separated SHA-256 of the key), which identify a key
without revealing anything usable about it.

The Fernet cipher itself (raw binary tokens, see its module) lives beside its transform in
``statevault.transforms.fernet``; ``Keyring.encrypt``/``decrypt`` are shortcuts to it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
from collections.abc import Sequence
from typing import Final

from .errors import EncryptionError, InvalidKeyError, MissingKeyError

__all__ = [
    "FernetKey",
    "Keyring",
    "SigningKey",
    "SigningKeyring",
    "generate_key",
    "resolve_keyring",
]

Buffer = bytes | bytearray | memoryview

#: The environment variable ``Keyring.from_env`` and ``resolve_keyring`` read by default.
ENV_VAR: Final = "STATEVAULT_KEY"
#: The environment variable naming a key file, read by ``resolve_keyring`` when set.
FILE_ENV_VAR: Final = "STATEVAULT_KEY_FILE"

_KEY_RE: Final = re.compile(rb"[A-Za-z0-9_-]{43}=")
_KEY_ID_DOMAIN: Final = b"statevault key id v1\x00"


def generate_key() -> str:
    """Return a new random Fernet key (44 url-safe base64 characters); keep it secret."""
    return base64.urlsafe_b64encode(os.urandom(32)).decode("ascii")


class FernetKey:
    """One parsed key: its id and its two halves (``signing``, ``encryption``). Never printed."""

    __slots__ = ("encryption", "key_id", "signing")

    def __init__(self, raw: bytes) -> None:
        self.signing = raw[:16]
        self.encryption = raw[16:]
        # Domain separation: the id is not the plain SHA-256 some other tool may publish.
        self.key_id = hashlib.sha256(_KEY_ID_DOMAIN + raw).hexdigest()[:8]

    def __repr__(self) -> str:
        return f"<key {self.key_id}>"


def _parse_key(key: object, where: str) -> FernetKey:
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
    return FernetKey(raw)


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
    def _of(cls, keys: Sequence[FernetKey]) -> Keyring:
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
        keys: list[FernetKey] = []
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

    @property
    def keys(self) -> tuple[FernetKey, ...]:
        """The parsed keys, newest first: what the Fernet cipher (transforms.fernet) works with."""
        return self._keys

    def encrypt(self, data: Buffer) -> bytes:
        """Encrypt ``data`` with the first key; return a raw (binary) Fernet token."""
        # The cipher lives beside its transform; imported here, at call time, because the
        # transforms package depends on this module, not the other way round.
        from .transforms.fernet import encrypt_token

        return bytes(encrypt_token(self, data))

    def decrypt(self, token: Buffer) -> bytes:
        """Decrypt a raw or base64 Fernet token with whichever key fits.

        Raises ``WrongKeyError`` (``InvalidToken`` chained) when no key authenticates the token
        (wrong keys, or an altered token), ``IntegrityError`` when it is not a token at all.
        """
        from .transforms.fernet import decrypt_any_token

        return bytes(decrypt_any_token(self, token))


def _dedupe(keys: Sequence[FernetKey]) -> tuple[FernetKey, ...]:
    seen: set[bytes] = set()
    out: list[FernetKey] = []
    for k in keys:
        whole = k.signing + k.encryption
        if whole not in seen:
            seen.add(whole)
            out.append(k)
    return tuple(out)


_SIGNING_DOMAIN: Final = b"statevault signing key v1\x00"
_MIN_SECRET: Final = 16


class SigningKey:
    """One HMAC-SHA256 signing key derived from a secret: its id and the derived key. Never
    printed."""

    __slots__ = ("key", "key_id")

    def __init__(self, secret: bytes) -> None:
        # Derived, not the secret itself: a secret shared with another tool never signs
        # statevault frames directly (domain separation).
        self.key = hmac.digest(secret, _SIGNING_DOMAIN, "sha256")
        self.key_id = hashlib.sha256(_KEY_ID_DOMAIN + self.key).hexdigest()[:8]

    def __repr__(self) -> str:
        return f"<signing key {self.key_id}>"


class SigningKeyring:
    """Secrets that sign unencrypted states (HMAC-SHA256), newest first: the first signs, all
    verify, so a secret can be rotated the itsdangerous way (new one first, old ones after).

    A secret is any str or bytes of at least 16 bytes (``generate_key()`` makes a good one); a
    single str or bytes is one secret. Immutable; ``repr`` shows key ids only.
    """

    __slots__ = ("_keys",)

    def __init__(self, secrets: str | bytes | Sequence[str | bytes]) -> None:
        if isinstance(secrets, str | bytes):
            secrets = [secrets]
        keys: list[SigningKey] = []
        for i, secret in enumerate(secrets):
            raw = secret.encode("utf-8") if isinstance(secret, str) else secret
            if not isinstance(raw, bytes | bytearray):
                raise InvalidKeyError(
                    f"signing key {i + 1} must be a str or bytes, not {type(secret).__name__}"
                )
            if len(raw) < _MIN_SECRET:
                raise InvalidKeyError(
                    f"signing key {i + 1} is {len(raw)} bytes: use at least {_MIN_SECRET} "
                    "random bytes (statevault.generate_key() makes one)"
                )
            keys.append(SigningKey(bytes(raw)))
        if not keys:
            raise InvalidKeyError("signing_key needs at least one secret")
        self._keys = tuple(keys)

    @property
    def keys(self) -> tuple[SigningKey, ...]:
        """The derived keys, newest first."""
        return self._keys

    @property
    def key_ids(self) -> tuple[str, ...]:
        """The key ids (8 hex digits each, newest first); safe to log and to store in clear."""
        return tuple(k.key_id for k in self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    def __repr__(self) -> str:
        return f"SigningKeyring({', '.join(self.key_ids)})"

    __str__ = __repr__


def resolve_keyring(
    encryption_key: str | bytes | Sequence[str | bytes] | Keyring | None = None,
    *,
    key_file: str | os.PathLike[str] | None = None,
    use_env: bool = True,
) -> Keyring | None:
    """The keyring a manager uses: explicit key(s) > ``key_file`` > ``$STATEVAULT_KEY`` or
    ``$STATEVAULT_KEY_FILE`` (a key file's path; both set is ``InvalidKeyError``) > None.

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
        ring = Keyring.from_env()
        path = os.environ.get(FILE_ENV_VAR, "").strip()
        if path and ring is not None:
            # Two sources and one of them must encrypt: refuse rather than guess which.
            raise InvalidKeyError(f"both ${ENV_VAR} and ${FILE_ENV_VAR} are set: unset one of them")
        if path:
            return Keyring.from_file(path)
        return ring
    return None
