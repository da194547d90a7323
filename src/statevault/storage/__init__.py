"""Storage: one object per state URL, read and replaced whole, through fsspec.

``open_store(url, storage_options)`` returns a ``Store`` for the URL's backend. Each backend
adapter (one module each: ``local``, ``memory``, ``generic``, and ``s3``, ``azure``, ``gcs``,
small subclasses of the shared object-store core in ``objectstore``) owns what differs
between backends: how a replace is made atomic, whether ``write(expect=...)`` is a real
compare-and-swap, and how backend errors become statevault errors. Code outside this package
never asks which backend it has; it reads ``Store.atomic`` and ``Store.conditional``.
"""

from __future__ import annotations

from .base import ANY, Listed, ObjectInfo, Store
from .registry import open_store, register_store

__all__ = ["ANY", "Listed", "ObjectInfo", "Store", "open_store", "register_store"]
