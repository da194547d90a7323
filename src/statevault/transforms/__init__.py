"""Byte transforms: bytes -> bytes layers stacked on every section of a frame (zstd, Fernet, yours).

One module per transform (``zstd``, ``fernet``, ``signing``), each building ``Transform``
records that declare their properties (``encrypts``, ``compresses``, ``authenticates``);
``base`` holds the record and the registry, ``stack`` what a manager writes with. The frame
records each applied transform's name and parameters, so a reader rebuilds the same stack from
the frame alone: it asks a ``TransformRegistry`` for a transform by name, giving it the stored
parameters and the reader's keyring.

Adding a transform is one module plus one registration: ``register_transform(name, factory,
compresses=True)`` in code, or an entry point in the group ``statevault.transforms`` of an
installed distribution (``name = "package.module:factory"``), found when the name is first
looked up. A registration in code wins over an installed entry point; two installed
distributions providing one name is an error.

``decode`` receives any buffer (usually a ``memoryview``: call ``bytes()`` on it if you need
bytes) and may return any buffer; returning a ``bytearray`` lets the codec use the data in
place. Parameters are stored in clear: never put secrets in them.
"""

from __future__ import annotations

from .base import (
    ENTRY_POINT_GROUP,
    Buffer,
    Transform,
    TransformFactory,
    TransformProperties,
    TransformRegistry,
)
from .fernet import fernet, fernet_factory
from .signing import NAME as _SIGNING_NAME
from .signing import hmac_sha256, unkeyed_factory
from .stack import DEFAULT_MAX_STATE_BYTES, TransformConfig
from .zstd import zstd, zstd_factory

__all__ = [
    "DEFAULT_MAX_STATE_BYTES",
    "ENTRY_POINT_GROUP",
    "Buffer",
    "Transform",
    "TransformConfig",
    "TransformFactory",
    "TransformProperties",
    "TransformRegistry",
    "default_transforms",
    "fernet",
    "hmac_sha256",
    "register_transform",
    "zstd",
]

#: The library's registry: "zstd", "fernet", "hmac-sha256", then installed entry points.
#: Managers read through a ``child()`` of it.
default_transforms: TransformRegistry = TransformRegistry(entry_point_group=ENTRY_POINT_GROUP)
default_transforms.register("zstd", zstd_factory, compresses=True)
default_transforms.register("fernet", fernet_factory, encrypts=True, authenticates=True)
default_transforms.register(_SIGNING_NAME, unkeyed_factory, authenticates=True)

#: Register a transform for every reader in this process (``default_transforms.register``).
register_transform = default_transforms.register
