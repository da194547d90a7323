"""Byte transforms: bytes -> bytes layers stacked on every section of a frame (zstd, Fernet, yours).

A ``Transform`` is as small as zict's ``Func``: a name, an ``encode`` and a ``decode`` function
and a few JSON parameters. The frame records each applied transform's name and parameters, so
a reader rebuilds the same stack from the frame alone: it asks a ``TransformRegistry`` for a
transform by name, giving it the stored parameters and the reader's keyring. Register your own
with ``register_transform(name, factory)`` (or a manager's ``register_transform``) before
loading states that use it.

``decode`` receives any buffer (usually a ``memoryview``: call ``bytes()`` on it if you need
bytes) and may return any buffer; returning a ``bytearray`` lets the codec use the data in
place. Parameters are stored in clear: never put secrets in them.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final, TypeAlias, TypeVar, overload

import zstandard

from .errors import MissingKeyError, StateError, TransformError, UnknownTransformError
from .keys import Keyring

__all__ = [
    "Buffer",
    "Transform",
    "TransformFactory",
    "TransformRegistry",
    "default_transforms",
    "fernet",
    "register_transform",
    "zstd",
]

Buffer: TypeAlias = bytes | bytearray | memoryview

_NAME_RE: Final = re.compile(r"[A-Za-z0-9_.:-]{1,64}")


@dataclass(frozen=True, repr=False)
class Transform:
    """One reversible bytes -> bytes layer: ``decode(encode(b)) == b`` for every buffer ``b``.

    ``params`` are JSON values recorded in clear in every frame this transform writes (never a
    secret); a registry factory gets them back to rebuild the transform when reading.
    ``encode``/``decode`` may be called from several threads at once: guard any state.
    """

    name: str
    encode: Callable[[Buffer], Buffer]
    decode: Callable[[Buffer], Buffer]
    params: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME_RE.fullmatch(self.name):
            raise ValueError(f"transform name {self.name!r} must be 1-64 letters, digits or _.:-")
        params = dict(self.params)
        if "name" in params:
            raise ValueError(f"transform {self.name!r}: 'name' is reserved, not a parameter")
        try:
            json.dumps(params, allow_nan=False, sort_keys=True)
        except (TypeError, ValueError) as e:
            raise TypeError(
                f"transform {self.name!r}: params must be JSON values with str keys ({e})"
            ) from e
        object.__setattr__(self, "params", MappingProxyType(params))

    def __repr__(self) -> str:
        # Never the callables: a closure may hold a key.
        return f"Transform(name={self.name!r}, params={dict(self.params)!r})"


TransformFactory: TypeAlias = Callable[[Mapping[str, Any], Keyring | None], Transform]
_F = TypeVar("_F", bound=TransformFactory)


class TransformRegistry:
    """Transforms by name, for readers: the name in a frame -> a factory that rebuilds it.

    Lookups fall back to the ``parent`` registry (``child()`` makes a per-manager registry on
    top of ``default_transforms``). The last registration of a name wins. Registration is not
    synchronised: register at start-up, before threads read with the registry.
    """

    def __init__(self, parent: TransformRegistry | None = None) -> None:
        self._parent = parent
        self._factories: dict[str, TransformFactory] = {}

    @overload
    def register(self, name: str, factory: TransformFactory | Transform) -> None: ...

    @overload
    def register(self, name: str, factory: None = None) -> Callable[[_F], _F]: ...

    def register(
        self, name: str, factory: TransformFactory | Transform | None = None
    ) -> Callable[[_F], _F] | None:
        """Register ``factory(params, keyring) -> Transform`` or a fixed ``Transform`` as ``name``.

        A ``Transform`` instance registers a transform without parameters. Without ``factory``
        this is a decorator: ``@registry.register("xor")``.
        """
        if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
            raise ValueError(f"transform name {name!r} must be 1-64 letters, digits or _.:-")
        if factory is None:

            def decorator(fn: _F) -> _F:
                self.register(name, fn)
                return fn

            return decorator
        if isinstance(factory, Transform):
            if factory.name != name:
                raise ValueError(
                    f"cannot register Transform {factory.name!r} under the name {name!r}"
                )
            self._factories[name] = _fixed(factory)
        elif callable(factory):
            self._factories[name] = factory
        else:
            raise TypeError(
                f"register a Transform or a factory(params, keyring), not {type(factory).__name__}"
            )
        return None

    def _lookup(self, name: str) -> TransformFactory | None:
        registry: TransformRegistry | None = self
        while registry is not None:
            found = registry._factories.get(name)
            if found is not None:
                return found
            registry = registry._parent
        return None

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self._lookup(name) is not None

    def build(self, name: str, params: Mapping[str, Any], keyring: Keyring | None) -> Transform:
        """The transform ``name`` with the stored ``params``, using ``keyring`` if it needs keys.

        Raises ``UnknownTransformError`` if nothing is registered under ``name``, the factory's
        own ``StateError`` (e.g. ``MissingKeyError``), or ``TransformError`` if it fails.
        """
        factory = self._lookup(name)
        if factory is None:
            raise UnknownTransformError(
                f"the state was written with the byte transform {name!r}, which is not "
                f"registered here: call statevault.register_transform({name!r}, factory) "
                "(or the manager's register_transform) before loading it"
            )
        try:
            transform = factory(MappingProxyType(dict(params)), keyring)
        except StateError:
            raise
        except Exception as e:
            raise TransformError(
                f"the factory of transform {name!r} failed: {type(e).__name__}"
            ) from e
        if not isinstance(transform, Transform) or transform.name != name:
            raise TransformError(f"the factory of transform {name!r} did not return one")
        return transform

    def child(self) -> TransformRegistry:
        """A new registry that sees this one's transforms and can override them locally."""
        return TransformRegistry(parent=self)


def _fixed(transform: Transform) -> TransformFactory:
    def factory(params: Mapping[str, Any], keyring: Keyring | None) -> Transform:
        if dict(params) != dict(transform.params):
            raise TransformError(
                f"transform {transform.name!r} is registered as a fixed Transform with params "
                f"{dict(transform.params)!r}, but the state has {dict(params)!r}: register a "
                "factory that builds it from the stored params"
            )
        return transform

    return factory


# ---------------------------------------------------------------------------------- zstd

_ZSTD_MIN: Final = -(1 << 17)
_ZSTD_MAX: Final = 22


class _Zstd:
    """zstd with one compressor/decompressor per thread (zstandard's are not thread-safe)."""

    def __init__(self, level: int) -> None:
        self.level = level
        self._local = threading.local()

    def encode(self, data: Buffer) -> Buffer:
        cctx = getattr(self._local, "cctx", None)
        if cctx is None:
            # Content size in the zstd frame header lets decode allocate the output once.
            cctx = zstandard.ZstdCompressor(
                level=self.level, threads=0, write_content_size=True, write_checksum=False
            )
            self._local.cctx = cctx
        try:
            return bytes(cctx.compress(data))
        except zstandard.ZstdError as e:
            raise TransformError(f"zstd could not compress: {e}") from e

    def decode(self, data: Buffer) -> Buffer:
        dctx = getattr(self._local, "dctx", None)
        if dctx is None:
            dctx = zstandard.ZstdDecompressor()
            self._local.dctx = dctx
        try:
            size = zstandard.frame_content_size(data)
            if size < 0:
                # A frame written without its content size (not by us): stream it.
                obj = dctx.decompressobj()
                out: Buffer = bytes(obj.decompress(data))
                if not obj.eof:
                    raise TransformError("zstd data ends before its frame does")
                return out
            # Decompress straight into a bytearray: one allocation, and writable for the codec.
            buf = bytearray(size)
            view = memoryview(buf)
            reader = dctx.stream_reader(data, read_size=1 << 20, read_across_frames=False)
            got = 0
            while got < size:
                n = reader.readinto(view[got:])
                if not n:
                    break
                got += n
            if got != size or reader.read(1):
                raise TransformError(
                    f"zstd data decompressed to {got} bytes, its header says {size}"
                )
            return buf
        except (zstandard.ZstdError, MemoryError, OverflowError, ValueError) as e:
            raise TransformError(f"zstd could not decompress the data: {e}") from e


def zstd(level: int = 3) -> Transform:
    """zstd compression at ``level`` (-131072..22; 3 is fast, 19+ is slow); any level decodes.

    Single-threaded per call (``threads=0``); one compressor per thread is reused.
    """
    if isinstance(level, bool) or not isinstance(level, int):
        raise TypeError(f"zstd level must be an int, not {type(level).__name__}")
    if not _ZSTD_MIN <= level <= _ZSTD_MAX:
        raise ValueError(f"zstd level must be between {_ZSTD_MIN} and {_ZSTD_MAX}, not {level}")
    impl = _Zstd(level)
    return Transform("zstd", impl.encode, impl.decode, {"level": level})


def _zstd_factory(params: Mapping[str, Any], keyring: Keyring | None) -> Transform:
    # Decoding does not depend on the level, so a level this build would reject (or a missing
    # one) must not make a state unreadable.
    level = params.get("level", 3)
    if isinstance(level, bool) or not isinstance(level, int) or not _ZSTD_MIN <= level <= _ZSTD_MAX:
        level = 3
    return zstd(level)


# ---------------------------------------------------------------------------------- fernet


def fernet(keyring: Keyring) -> Transform:
    """Fernet encryption with ``keyring``'s first key; decodes with any of its keys.

    ``params`` hold the key id of the encrypting key (a fingerprint, not the key: see
    docs/encryption.md), so a reader picks the right key at once and can tell a wrong key from
    altered data.
    """
    if not isinstance(keyring, Keyring):
        raise TypeError(f"fernet() needs a Keyring, not {type(keyring).__name__}")
    ring = keyring

    def decode(data: Buffer) -> Buffer:
        return ring._decrypt(data, None)

    return Transform("fernet", ring._encrypt, decode, {"key_id": ring.key_ids[0]})


def _fernet_factory(params: Mapping[str, Any], keyring: Keyring | None) -> Transform:
    if keyring is None:
        raise MissingKeyError(
            "this state is encrypted; pass encryption_key=... or set STATEVAULT_KEY"
        )
    ring = keyring
    key_id = params.get("key_id")
    hint = key_id if isinstance(key_id, str) else None

    def decode(data: Buffer) -> Buffer:
        return ring._decrypt(data, hint)

    # params describe what this instance's encode writes (the reader's first key); decode uses
    # the id stored in the frame being read.
    return Transform("fernet", ring._encrypt, decode, {"key_id": ring.key_ids[0]})


#: The library's registry: "zstd" and "fernet". Managers read through a ``child()`` of it.
default_transforms: TransformRegistry = TransformRegistry()
default_transforms.register("zstd", _zstd_factory)
default_transforms.register("fernet", _fernet_factory)

#: Register a transform for every reader in this process (``default_transforms.register``).
register_transform = default_transforms.register
