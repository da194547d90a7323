"""The codec: exact, type-tagged serialization of a state into a JSON document plus raw buffers.

Public API::

    from statevault.codec import Codec, TypeRegistry, Encoded, default_registry, Buffer

``Codec(registry).encode(obj)`` gives an ``Encoded`` (doc + buffers); ``dumps``/``loads`` turn a
value into one section payload and back. User types are registered on a ``TypeRegistry``
(``default_registry`` unless a codec is given another); the spec's name-based
``register_serializer``/``register_deserializer`` hooks live there too. Supported types,
encodings and the payload layout are documented in docs/types.md. Built-in handlers come in
families listed in one table (``_families.py``); numpy, pandas, pytz and dateutil are imported
only when a value (or a stored tag) of theirs is met, so importing this package stays light.
"""

from __future__ import annotations

from statevault.codec._core import MAX_DEPTH, Codec, Encoded
from statevault.codec._payload import Buffer
from statevault.codec._registry import TypeRegistry, default_registry, register_type

__all__ = [
    "MAX_DEPTH",
    "Buffer",
    "Codec",
    "Encoded",
    "TypeRegistry",
    "default_registry",
    "register_type",
]
