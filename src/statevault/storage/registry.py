"""Which ``Store`` class serves which URL protocol: a lazy registry with install hints.

Built-in entries are dotted paths (``"statevault.storage.s3:S3Store"``) imported on first
use, so ``import statevault`` never imports s3fs. Users add or replace entries with
``register_store``; the last registration for a protocol wins. A protocol with no entry is
served by ``GenericStore`` over ``fsspec.core.url_to_fs``.

A distribution adds a backend without editing statevault by declaring an entry point in the
group ``statevault.stores``: its name is the protocol, its value the ``Store`` subclass
(``myproto = "mypkg.store:MyStore"``). Precedence, independent of import order: a
``register_store`` call, then statevault's built-in backends, then installed entry points
(looked up when a URL of that protocol is first opened); two installed distributions claiming
one protocol is a ``StorageError`` naming both. Dotted paths only ever come from code or
installed package metadata, never from stored data.
"""

from __future__ import annotations

import importlib
import os
import threading
from collections.abc import Callable, Mapping
from importlib import metadata
from typing import Any, Final, TypeVar, overload

from ..errors import StorageError
from .base import Store

__all__ = ["ENTRY_POINT_GROUP", "open_store", "protocol_of", "register_store", "store_class"]

#: The entry-point group a distribution declares its backends in (name = protocol).
ENTRY_POINT_GROUP: Final = "statevault.stores"

S = TypeVar("S", bound=type[Store])

_BUILTIN: Final[Mapping[str, str]] = {
    "file": "statevault.storage.local:LocalStore",
    "local": "statevault.storage.local:LocalStore",
    "memory": "statevault.storage.memory:MemoryStore",
    "s3": "statevault.storage.s3:S3Store",
    "s3a": "statevault.storage.s3:S3Store",
    "az": "statevault.storage.azure:AzureStore",
    "abfs": "statevault.storage.azure:AzureStore",
    "abfss": "statevault.storage.azure:AzureStore",
    "gs": "statevault.storage.gcs:GCSStore",
    "gcs": "statevault.storage.gcs:GCSStore",
}
_GENERIC: Final = "statevault.storage.generic:GenericStore"
_HINTS: Final[Mapping[str, str]] = {
    "s3": "Install s3fs to use s3:// (pip install 'statevault[s3]')",
    "s3a": "Install s3fs to use s3a:// (pip install 'statevault[s3]')",
    "az": "Install adlfs to use az:// (pip install 'statevault[azure]')",
    "abfs": "Install adlfs to use abfs:// (pip install 'statevault[azure]')",
    "abfss": "Install adlfs to use abfss:// (pip install 'statevault[azure]')",
    "gs": "Install gcsfs to use gs:// (pip install 'statevault[gcs]')",
    "gcs": "Install gcsfs to use gcs:// (pip install 'statevault[gcs]')",
}

_registry: dict[str, str | type[Store]] = dict(_BUILTIN)
_installed: dict[str, type[Store]] = {}
_registry_guard = threading.Lock()


@overload
def register_store(protocol: str, store: str | type[Store]) -> None: ...
@overload
def register_store(protocol: str, store: None = None) -> Callable[[S], S]: ...
def register_store(
    protocol: str, store: str | type[Store] | None = None
) -> Callable[[S], S] | None:
    """Serve URLs of ``protocol`` with ``store``: a ``Store`` subclass or a lazy dotted path.

    The class is constructed as ``store(url, storage_options)``. Without ``store``, returns
    a class decorator. The last registration for a protocol wins; it applies to stores
    opened afterwards.
    """
    key = protocol.lower().removesuffix("://")
    if store is None:

        def decorator(cls: S) -> S:
            register_store(key, cls)
            return cls

        return decorator
    if isinstance(store, str):
        if ":" not in store:
            raise ValueError(f"dotted path must look like 'package.module:Class', got {store!r}")
    elif not (isinstance(store, type) and issubclass(store, Store)):
        raise TypeError(f"register_store needs a Store subclass or a dotted path, got {store!r}")
    with _registry_guard:
        _registry[key] = store
    return None


def protocol_of(url: str) -> str | None:
    """The URL's (first) protocol, lower-cased; ``None`` for a plain local path."""
    first, chained, _ = url.partition("::")
    if "://" in first:
        return first.split("://", 1)[0].lower()
    if chained:
        return first.lower()  # "simplecache::s3://..." -> "simplecache"
    return None


def store_class(protocol: str) -> type[Store]:
    """The ``Store`` class registered for ``protocol`` (``GenericStore`` if none)."""
    with _registry_guard:
        entry = _registry.get(protocol)
        found = _installed.get(protocol)
    if entry is None and found is not None:
        return found
    if entry is None:
        installed = _from_entry_points(protocol)
        if installed is not None:
            with _registry_guard:
                _installed[protocol] = installed
            return installed
        entry = _GENERIC
    if not isinstance(entry, str):
        return entry
    cls = _load(entry, protocol)
    with _registry_guard:
        # Cache the class unless someone re-registered the protocol meanwhile.
        if _registry.get(protocol) == entry:
            _registry[protocol] = cls
    return cls


def _from_entry_points(protocol: str) -> type[Store] | None:
    """The ``Store`` an installed distribution declares for ``protocol``, if exactly one does."""
    found = {ep.value: ep for ep in metadata.entry_points(group=ENTRY_POINT_GROUP, name=protocol)}
    if not found:
        return None
    if len(found) > 1:
        owners = ", ".join(sorted(f"{_dist_name(ep)} ({ep.value})" for ep in found.values()))
        raise StorageError(
            f"several installed packages provide a storage backend for {protocol}://: "
            f"{owners}. Uninstall all but one, or choose one in code with "
            f"statevault.storage.register_store({protocol!r}, ...)"
        )
    (ep,) = found.values()
    return _load(ep.value, protocol, f"entry point of {_dist_name(ep)}")


def _dist_name(ep: metadata.EntryPoint) -> str:
    return "an unknown distribution" if ep.dist is None else str(ep.dist.name)


def _load(dotted: str, protocol: str, origin: str = "registered") -> type[Store]:
    module_name, _, attr = dotted.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        hint = _HINTS.get(protocol) or (
            f"Cannot load the storage backend for {protocol}:// ({dotted}): install the "
            f"package that provides {module_name}"
        )
        raise StorageError(hint) from e
    cls = getattr(module, attr, None)
    if not (isinstance(cls, type) and issubclass(cls, Store)):
        raise StorageError(
            f"The storage backend for {protocol}:// ({dotted}, {origin}) is not a Store "
            "subclass: fix the register_store call or the package's entry point."
        )
    return cls


def open_store(
    url: str | os.PathLike[str], storage_options: Mapping[str, Any] | None = None
) -> Store:
    """Open the ``Store`` for ``url``; nothing is read or written yet.

    Plain paths (relative or absolute, ``~`` expanded) and ``file://`` give a ``LocalStore``;
    ``memory://`` a ``MemoryStore``; ``s3://`` and ``s3a://`` an ``S3Store``; anything else
    (including chained URLs like ``simplecache::s3://...``) a ``GenericStore`` over
    ``fsspec.core.url_to_fs(url, **storage_options)``. Raises ``StorageError`` when the
    backend's package is missing, with the ``pip install`` that fixes it.
    """
    text = os.fspath(url)
    if not isinstance(text, str):
        raise TypeError(f"url must be a str or os.PathLike[str], got {type(url).__name__}")
    protocol = protocol_of(text) or "file"
    return store_class(protocol)(text, storage_options)
