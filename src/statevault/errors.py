"""The one exception hierarchy of statevault: every failure a caller can act on is a ``StateError``.

Each class says what went wrong in its name; each message says what to do about it. Errors
raised because of another error chain it (``raise ... from e``), so ``__cause__`` holds the
original (an ``OSError``, a botocore error, a ``cryptography`` error, ...). Messages never
contain key material or state contents beyond type names and paths inside the state.

The ladder::

    StateError
    ├── StateNotFoundError          nothing saved at the URL yet
    ├── SerializationError          save side: the state cannot be encoded
    │   └── UnsupportedTypeError    a value of a type with no handler (names type and path)
    ├── DecodeError                 load side: the document cannot be turned back into objects
    │   └── UnknownTypeTagError     a stored type tag that nothing registered here can decode
    ├── CorruptStateError           the stored bytes are damaged or not ours
    │   ├── NotAStateFileError      wrong magic: not a statevault file at all
    │   ├── TruncatedStateError     shorter than its own header says
    │   ├── IntegrityError          a checksum or a signature does not match
    │   └── StateTooLargeError      loading would allocate more than the sizes justify
    ├── UnsupportedFormatError      written by a newer statevault (format version too high)
    ├── TransformError              a byte transform failed
    │   ├── UnknownTransformError   the frame names a transform that is not registered
    │   └── EncryptionError         anything about keys
    │       ├── InvalidKeyError     a key that is not a valid Fernet key
    │       ├── MissingKeyError     the state is encrypted and no key was given
    │       └── WrongKeyError       none of the given keys decrypts the state
    ├── StorageError                the storage backend failed (cause chained)
    │   ├── StorageUnavailableError endpoint unreachable, timeouts
    │   └── StoragePermissionError  access denied
    ├── ConflictError               another writer replaced the state since we last saw it
    ├── TargetExistsError           an export would replace an object already there
    ├── UnreadableStateError        a save would replace a stored state this manager cannot read
    ├── ConfigurationError          the manager's configuration is wrong (never spooled)
    │   └── StorageConfigurationError  ... of the storage (also a StorageError)
    │       └── StorageOptionsError    storage_options for a backend that takes none
    ├── ValidationError             a validator rejected the state
    └── MigrationError              a schema migration failed or is missing
        └── SchemaVersionError      the state's schema is newer than the code
"""

from __future__ import annotations

__all__ = [
    "ConfigurationError",
    "ConflictError",
    "CorruptStateError",
    "DecodeError",
    "EncryptionError",
    "IntegrityError",
    "InvalidKeyError",
    "MigrationError",
    "MissingKeyError",
    "NotAStateFileError",
    "SchemaVersionError",
    "SerializationError",
    "StateError",
    "StateNotFoundError",
    "StorageConfigurationError",
    "StorageOptionsError",
    "StorageError",
    "StoragePermissionError",
    "StorageUnavailableError",
    "StateTooLargeError",
    "TargetExistsError",
    "TransformError",
    "TruncatedStateError",
    "UnknownTransformError",
    "UnknownTypeTagError",
    "UnreadableStateError",
    "UnsupportedFormatError",
    "UnsupportedTypeError",
    "ValidationError",
    "WrongKeyError",
]


class StateError(Exception):
    """Base of every error statevault raises on purpose; catch this to catch them all."""


class StateNotFoundError(StateError):
    """No state is stored at the URL yet (a first run, or it was deleted)."""


class SerializationError(StateError):
    """The state cannot be encoded; nothing was written and the stored state is unchanged.

    ``path`` says where the failing value sits, e.g. ``state['pairs'][0]`` ("" when unknown).
    """

    def __init__(self, message: str, *, path: str = "") -> None:
        super().__init__(message)
        self.path = path


class UnsupportedTypeError(SerializationError, TypeError):
    """A value's type has no handler; ``path`` says where it sits, e.g. ``state['a'][0]``."""

    def __init__(self, message: str, *, type_name: str = "", path: str = "") -> None:
        super().__init__(message, path=path)
        self.type_name = type_name


class DecodeError(StateError):
    """The stored document cannot be turned back into objects; ``path`` says where."""

    def __init__(self, message: str, *, path: str = "") -> None:
        super().__init__(message)
        self.path = path


class UnknownTypeTagError(DecodeError):
    """A stored type tag has no decoder here: register the type (same name) before loading."""

    def __init__(self, message: str, *, tag: str = "", path: str = "") -> None:
        super().__init__(message, path=path)
        self.tag = tag


class CorruptStateError(StateError):
    """The stored bytes are damaged, truncated or not a statevault state."""


class NotAStateFileError(CorruptStateError):
    """The object does not start with the statevault magic bytes."""


class TruncatedStateError(CorruptStateError):
    """The object is shorter than its own header says (an interrupted copy or upload)."""


class IntegrityError(CorruptStateError):
    """A checksum or authentication tag does not match: the bytes were changed after writing."""


class StateTooLargeError(CorruptStateError):
    """Loading would take more memory than the stored sizes justify or ``max_state_bytes`` allows.

    Raised before the memory is allocated: a forged frame (a decompression bomb) or a state
    larger than the reader's limit; raise ``max_state_bytes`` if the state is genuine.
    """


class UnsupportedFormatError(StateError):
    """The state was written in a newer format version than this statevault reads: upgrade."""


class TransformError(StateError):
    """A byte transform (compression, encryption, a user transform) failed."""


class UnknownTransformError(TransformError):
    """The frame names a transform that is not registered in this process."""


class EncryptionError(TransformError):
    """Anything about encryption keys; messages never include key material."""


class InvalidKeyError(EncryptionError, ValueError):
    """A key is not a valid Fernet key (32 url-safe base64-encoded bytes)."""


class MissingKeyError(EncryptionError):
    """The state is encrypted and no key was configured to decrypt it."""


class WrongKeyError(EncryptionError):
    """None of the configured keys decrypts the state (or its ciphertext was altered)."""


class StorageError(StateError):
    """The storage backend failed; the original error is the ``__cause__``."""


class StorageUnavailableError(StorageError):
    """The storage cannot be reached (connection refused, DNS, timeout)."""


class StoragePermissionError(StorageError):
    """The storage refused access (file permissions, S3 access denied)."""


class ConflictError(StateError):
    """Another writer replaced the state since this manager last loaded or saved it.

    ``expected`` is the generation this manager last saw, ``found`` the one stored now. Load
    the state again, merge, and save; or construct the manager with ``on_conflict="overwrite"``.
    """

    def __init__(self, message: str, *, expected: int | None = None, found: int | None = None):
        super().__init__(message)
        self.expected = expected
        self.found = found


class TargetExistsError(StateError):
    """An export would replace an object that is already there: pick another place, or
    force it (``statevault export --force``, ``export_state(..., force=True)``)."""


class UnreadableStateError(StateError):
    """A save would replace a stored state this manager could not read (a wrong or missing
    key, a newer format, damage with no readable retained version); nothing was written.

    Fix the cause and load again, or create the manager with ``on_unreadable="replace"`` to
    replace it on purpose (its bytes are kept at ``<url>.unreadable`` first).
    """


class ConfigurationError(StateError):
    """The manager's configuration is wrong (a missing bucket, an unknown storage option, a
    path that is a directory, an invalid endpoint): fix it; such a save is never spooled."""


class ValidationError(StateError):
    """A validator rejected the state; ``path`` names the failing field when known."""

    def __init__(self, message: str, *, path: str = "") -> None:
        super().__init__(message)
        self.path = path


class MigrationError(StateError):
    """A schema migration failed or a step in the chain is missing; storage is untouched."""


class SchemaVersionError(MigrationError):
    """The stored schema version is newer than the code's: deploy the newer code to read it."""


class StorageConfigurationError(ConfigurationError, StorageError):
    """The storage is misconfigured (a missing bucket, an unknown or invalid storage option,
    a path that is a directory): also a ``StorageError``, but never spooled or retried."""


class StorageOptionsError(StorageConfigurationError, ValueError):
    """``storage_options`` given for a backend that takes none (a local path, ``memory://``);
    also a ``ValueError``, as it was before it had a type of its own."""
