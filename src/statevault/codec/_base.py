"""The built-in handler tables, filled from the family table as families load, and the
per-registry lookup tables merged from them (what ``Encoder`` and ``Decoder`` consult).

See ``_families.py`` for the rules a family follows; ``load_family`` enforces them.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable
from types import NoneType
from typing import TYPE_CHECKING, Any

from statevault.codec._fail import PATH, Fail, type_label
from statevault.codec._families import FAMILIES, Family
from statevault.codec._registry import TypeRegistry, UserType, bump_generation
from statevault.errors import SerializationError

if TYPE_CHECKING:
    from statevault.codec._decoder import Decoder
    from statevault.codec._encoder import Encoder

__all__ = [
    "BASE_DECODERS",
    "BASE_ENCODERS",
    "BASE_SUBCLASS_ENCODERS",
    "MAX_DEPTH",
    "TAG",
    "DecodeFn",
    "EncodeFn",
    "Tables",
    "ensure_base",
    "family_of_tag",
    "families_of_root",
    "is_loaded",
    "load_family",
]

TAG = "$t"
"""The key that marks a JSON object as a tagged value; plain dicts holding it are escaped."""

MAX_DEPTH = 300
"""Deepest container nesting the codec accepts; deeper values (or cycles) raise a clear error."""

EncodeFn = Callable[["Encoder", Any, int], Any]
DecodeFn = Callable[["Decoder", dict[str, Any]], Any]

# The base the user cannot break: built-in handlers by exact type and by tag, merged from the
# handler modules of the family table (codec/_families.py) as each family is loaded.
BASE_ENCODERS: dict[type[Any], EncodeFn] = {}
BASE_DECODERS: dict[str, DecodeFn] = {}
# Base class -> encoder for types built at run time (pytz makes one class per zone), consulted
# only after the exact lookup missed.
BASE_SUBCLASS_ENCODERS: dict[type[Any], EncodeFn] = {}
_EAGER = tuple(f for f in FAMILIES if f.eager)
_BY_ROOT: dict[str, tuple[Family, ...]] = {}
for _family in FAMILIES:
    for _root in _family.roots:
        _BY_ROOT[_root] = (*_BY_ROOT.get(_root, ()), _family)
# Longest prefix first, so a family may own a narrower prefix inside another's ("pd.x." in "pd.").
_BY_PREFIX = sorted((f for f in FAMILIES if not f.eager), key=lambda f: -len(f.prefix))
_loaded: set[str] = set()
_load_lock = threading.Lock()
_base_ready = False


def family_of_tag(tag: str) -> Family | None:
    """The lazy family whose prefix a tag starts with (the longest such prefix), if any."""
    return next((f for f in _BY_PREFIX if tag.startswith(f.prefix)), None)


def load_family(family: Family) -> bool:
    """Import a family's handler module once and merge its tables; True if newly loaded.

    Raises ImportError when the module (or the library it needs) cannot be imported, and
    RuntimeError for a handler module that breaks the table's rules (a type or tag another
    family already handles, a tag outside its prefix): either would make results depend on
    which family happened to load first.
    """
    if family.module in _loaded:
        return False
    with _load_lock:
        if family.module in _loaded:
            return False
        module = importlib.import_module(family.module)
        encoders: dict[type[Any], EncodeFn] = module.ENCODERS
        decoders: dict[str, DecodeFn] = module.DECODERS
        subclass: dict[type[Any], EncodeFn] = getattr(module, "SUBCLASS_ENCODERS", {})
        clash = [type_label(t) for t in encoders if t in BASE_ENCODERS]
        clash += [type_label(t) for t in subclass if t in BASE_SUBCLASS_ENCODERS]
        clash += [t for t in decoders if t in BASE_DECODERS]
        clash += [t for t in decoders if family_of_tag(t) is not (None if family.eager else family)]
        if clash:
            raise RuntimeError(f"codec family {family.module} breaks the family table: {clash}")
        BASE_ENCODERS.update(encoders)
        BASE_DECODERS.update(decoders)
        BASE_SUBCLASS_ENCODERS.update(subclass)
        _loaded.add(family.module)
        bump_generation()  # codecs rebuild their tables with the new handlers
        return True


def ensure_base() -> None:
    global _base_ready  # noqa: PLW0603 (a one-way flag: the eager families are loaded once)
    if not _base_ready:
        for family in _EAGER:
            load_family(family)
        _base_ready = True


def is_loaded(family: Family) -> bool:
    """True once ``family``'s handler module is merged into the base tables."""
    return family.module in _loaded


def families_of_root(root: str) -> tuple[Family, ...]:
    """The lazy families that handle values of the top-level module ``root``."""
    return _BY_ROOT.get(root, ())


class Tables:
    """Merged lookup tables for one registry at one registry generation."""

    def __init__(self, registry: TypeRegistry, gen: int) -> None:
        by_type, by_name, serializers, deserializers = registry.merged()
        self.gen = gen
        encoders = dict(BASE_ENCODERS)
        for cls, entry in by_type.items():
            encoders[cls] = _user_encoder(entry)
        self.encoders = encoders
        self.plain = frozenset(t for t in (str, float, bool, NoneType) if t not in by_type)
        self.inline_list = list not in by_type
        self.inline_dict = dict not in by_type
        self.decoders = dict(BASE_DECODERS)
        self.user_types = by_name
        self.serializers = serializers
        self.deserializers = deserializers


def _user_encoder(entry: UserType) -> EncodeFn:
    name, encode, label = entry.name, entry.encode, type_label(entry.cls)

    def encode_user(e: Encoder, obj: Any, depth: int) -> Any:
        try:
            value = encode(obj)
        except Exception as exc:
            raise Fail(
                SerializationError,
                f"the encode function registered as {name!r} failed on a {label} at {PATH}: "
                f"{type(exc).__name__}: {exc}",
                cause=exc,
            ) from exc
        if value is obj:
            raise Fail(
                SerializationError,
                f"the encode function registered as {name!r} returned the {label} itself at "
                f"{PATH}: it must return a value the codec can store (e.g. a dict)",
            )
        return {TAG: "user", "n": name, "v": e.enc(value, depth + 1)}

    return encode_user
