"""statevault: keep a long-running service's state safe across restarts, crashes and redeploys.

``StateManager(url).save_state(state)`` writes a dict of Python, numpy and pandas objects to any
fsspec location (a path, ``s3://``, ``memory://``, ...) atomically, optionally compressed and
encrypted; ``load_state()`` gives the same objects back, exactly. See docs/quickstart.md.
"""

from __future__ import annotations

from ._version import __version__
from .codec import Codec, TypeRegistry, default_registry, register_type
from .errors import (
    ConfigurationError,
    ConflictError,
    CorruptStateError,
    DecodeError,
    EncryptionError,
    IntegrityError,
    InvalidKeyError,
    MigrationError,
    MissingKeyError,
    NotAStateFileError,
    SchemaVersionError,
    SerializationError,
    StateError,
    StateNotFoundError,
    StateTooLargeError,
    StorageError,
    StoragePermissionError,
    StorageUnavailableError,
    TargetExistsError,
    TransformError,
    TruncatedStateError,
    UnknownTransformError,
    UnknownTypeTagError,
    UnreadableStateError,
    UnsupportedFormatError,
    UnsupportedTypeError,
    ValidationError,
    WrongKeyError,
)
from .info import StateInfo
from .inspection import StateView, open_state
from .keys import Keyring, SigningKeyring, generate_key
from .manager import StateManager
from .trading import TradingStateManager
from .transforms import Transform, TransformRegistry, register_transform

__all__ = [
    "Codec",
    "ConfigurationError",
    "UnreadableStateError",
    "ConflictError",
    "CorruptStateError",
    "DecodeError",
    "EncryptionError",
    "IntegrityError",
    "InvalidKeyError",
    "Keyring",
    "MigrationError",
    "MissingKeyError",
    "NotAStateFileError",
    "SchemaVersionError",
    "SerializationError",
    "SigningKeyring",
    "StateError",
    "StateInfo",
    "StateManager",
    "StateNotFoundError",
    "StateTooLargeError",
    "StateView",
    "StorageError",
    "StoragePermissionError",
    "StorageUnavailableError",
    "TargetExistsError",
    "Transform",
    "TransformError",
    "TransformRegistry",
    "TradingStateManager",
    "TruncatedStateError",
    "TypeRegistry",
    "UnknownTransformError",
    "UnknownTypeTagError",
    "UnsupportedFormatError",
    "UnsupportedTypeError",
    "ValidationError",
    "WrongKeyError",
    "__version__",
    "default_registry",
    "generate_key",
    "open_state",
    "register_transform",
    "register_type",
]
