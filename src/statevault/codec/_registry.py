"""Per-instance type registries with a library default: user types and the spec's name-based hooks.

A ``TypeRegistry`` maps user classes to a stable on-disk name plus an encode and a decode
function, and holds the spec's named serializer/deserializer hooks. Lookups fall back to the
parent registry, so ``default_registry.child()`` sees everything registered on the default
and can override any of it locally. Built-in handlers (datetimes, numpy, pandas, ...) live in a
separate base inside the codec that no registry can remove; a user registration for the same
class simply wins over it. Registration is thread-safe; registries are usually filled at import
time and then only read.
"""

from __future__ import annotations

import dataclasses
import enum
import threading
from collections.abc import Callable
from typing import Any, TypeVar, overload

from statevault.errors import UnsupportedTypeError

__all__ = ["TypeRegistry", "UserType", "default_registry", "register_type"]

T = TypeVar("T")

_lock = threading.RLock()
# Bumped on every change to any registry (and when lazy numpy/pandas handlers load), so a
# Codec can cache its merged lookup tables and rebuild them only when something changed.
_generation = [0]


def bump_generation() -> None:
    """Invalidate every codec's cached lookup tables."""
    with _lock:
        _generation[0] += 1


def generation() -> int:
    """Current registry generation (an int that changes whenever any registry changes)."""
    return _generation[0]


@dataclasses.dataclass(frozen=True)
class UserType:
    """One registration: ``encode(obj)`` returns a codec-encodable value, ``decode`` inverts it."""

    cls: type[Any]
    name: str
    encode: Callable[[Any], Any]
    decode: Callable[[Any], Any]


def _type_label(cls: type[Any]) -> str:
    module = getattr(cls, "__module__", "")
    qual = getattr(cls, "__qualname__", repr(cls))
    return qual if module in ("builtins", "") else f"{module}.{qual}"


def _dataclass_codec(cls: type[Any]) -> tuple[Callable[[Any], Any], Callable[[Any], Any]]:
    # Shallow field dict (not dataclasses.asdict, which deep-copies and flattens nested
    # dataclasses into dicts): nested values go through the codec with their own types.
    fields = dataclasses.fields(cls)
    names = tuple(f.name for f in fields)
    init_names = frozenset(f.name for f in fields if f.init)

    def encode(obj: Any) -> dict[str, Any]:
        return {n: getattr(obj, n) for n in names}

    def decode(value: Any) -> Any:
        if type(value) is not dict:
            raise TypeError(f"expected a dict of fields for {cls.__qualname__}, got {type(value)}")
        obj = cls(**{k: v for k, v in value.items() if k in init_names})
        for k, v in value.items():
            if k not in init_names:
                # init=False fields: set after construction (works for frozen dataclasses too).
                object.__setattr__(obj, k, v)
        return obj

    return encode, decode


def _enum_codec(cls: type[enum.Enum]) -> tuple[Callable[[Any], Any], Callable[[Any], Any]]:
    if issubclass(cls, enum.Flag):
        # Composite flag values have no single member name: store the value.
        return (lambda m: m.value), cls

    def decode(name: Any) -> Any:
        if type(name) is not str:
            raise TypeError(f"expected a member name of {cls.__qualname__}, got {type(name)}")
        return cls[name]

    return (lambda m: m.name), decode


class TypeRegistry:
    """User type handlers and named hooks; lookups fall back to ``parent``.

    Last registration wins, both for a class and for a name. Registering a new class under a
    name that another class had removes that other class's handler here (its values would
    otherwise be written under a name that now decodes to a different class). Registering a
    class under a new name keeps the old name decodable, so renamed types still load.
    Thread-safe.
    """

    def __init__(self, parent: TypeRegistry | None = None) -> None:
        self.parent = parent
        self._by_type: dict[type[Any], UserType] = {}
        self._by_name: dict[str, UserType] = {}
        self._serializers: dict[str, Callable[[Any], Any]] = {}
        self._deserializers: dict[str, Callable[[Any], Any]] = {}

    def __repr__(self) -> str:
        names = sorted(self._by_name)
        return f"TypeRegistry(types={names!r}, parent={'yes' if self.parent else 'no'})"

    @overload
    def register_type(
        self,
        cls: type[T],
        name: str | None = None,
        *,
        encode: Callable[[Any], Any] | None = None,
        decode: Callable[[Any], Any] | None = None,
    ) -> type[T]: ...

    @overload
    def register_type(
        self,
        cls: str | None = None,
        name: str | None = None,
        *,
        encode: Callable[[Any], Any] | None = None,
        decode: Callable[[Any], Any] | None = None,
    ) -> Callable[[type[T]], type[T]]: ...

    def register_type(
        self,
        cls: type[Any] | str | None = None,
        name: str | None = None,
        *,
        encode: Callable[[Any], Any] | None = None,
        decode: Callable[[Any], Any] | None = None,
    ) -> Any:
        """Register ``cls`` under ``name`` (default ``cls.__qualname__``); returns ``cls``.

        Forms: ``register_type(Pos, "Pos", encode=Pos.to_dict, decode=Pos.from_dict)``;
        ``@register_type(name="Pos", encode=..., decode=...)``; bare ``@register_type`` on a
        dataclass (stored as its field dict) or an Enum (members stored by name, Flags by
        value). ``encode(obj)`` may return anything the codec can encode (it is encoded
        recursively); ``decode`` receives that value decoded. Only the exact class is
        matched, not subclasses. The name is the on-disk tag: keep it stable across releases.
        """
        if isinstance(cls, str) and name is None:
            cls, name = None, cls
        if cls is None:

            def decorator(c: type[T]) -> type[T]:
                self._register(c, name, encode, decode)
                return c

            return decorator
        if isinstance(cls, str):
            raise UnsupportedTypeError(
                "register_type(cls, name): pass the class first and the name second",
                type_name=cls,
            )
        self._register(cls, name, encode, decode)
        return cls

    def _register(
        self,
        cls: Any,
        name: str | None,
        encode: Callable[[Any], Any] | None,
        decode: Callable[[Any], Any] | None,
    ) -> None:
        if not isinstance(cls, type):
            raise UnsupportedTypeError(
                f"register_type expects a class, got {cls!r}", type_name=type(cls).__name__
            )
        label = _type_label(cls)
        if name is None:
            name = cls.__qualname__
        if not isinstance(name, str) or not name:
            raise UnsupportedTypeError(
                f"the name for {label} must be a non-empty str, got {name!r}", type_name=label
            )
        if encode is None and decode is None:
            if dataclasses.is_dataclass(cls):
                encode, decode = _dataclass_codec(cls)
            elif issubclass(cls, enum.Enum):
                encode, decode = _enum_codec(cls)
            else:
                raise UnsupportedTypeError(
                    f"{label} is neither a dataclass nor an Enum: pass encode= and decode= "
                    f"(e.g. register_type({cls.__qualname__}, {name!r}, "
                    f"encode=lambda o: o.to_dict(), decode={cls.__qualname__}.from_dict))",
                    type_name=label,
                )
        elif encode is None or decode is None:
            raise UnsupportedTypeError(
                f"register_type({cls.__qualname__}, {name!r}): pass both encode= and decode=",
                type_name=label,
            )
        if not callable(encode) or not callable(decode):
            raise UnsupportedTypeError(
                f"register_type({cls.__qualname__}, {name!r}): encode and decode must be callable",
                type_name=label,
            )
        entry = UserType(cls, name, encode, decode)
        with _lock:
            self._by_type[cls] = entry
            self._by_name[name] = entry
            bump_generation()

    def register_serializer(self, name: str, fn: Callable[[Any], Any]) -> None:
        """Add the spec's named serializer hook: ``fn(obj)`` returns ``obj`` itself to decline.

        It is consulted only for values no type handler covers, in registration order (this
        registry's hooks before its parent's). A replacement value is encoded recursively and
        stored tagged with ``name``; loading it needs ``register_deserializer(name, ...)``.
        """
        if not isinstance(name, str) or not name or not callable(fn):
            raise UnsupportedTypeError(
                "register_serializer(name, fn) needs a non-empty str name and a callable",
                type_name=type(fn).__name__,
            )
        with _lock:
            self._serializers[name] = fn
            bump_generation()

    def register_deserializer(self, name: str, fn: Callable[[Any], Any]) -> None:
        """Add the spec's named deserializer: it gets the value stored by serializer ``name``."""
        if not isinstance(name, str) or not name or not callable(fn):
            raise UnsupportedTypeError(
                "register_deserializer(name, fn) needs a non-empty str name and a callable",
                type_name=type(fn).__name__,
            )
        with _lock:
            self._deserializers[name] = fn
            bump_generation()

    def child(self) -> TypeRegistry:
        """A new registry that sees this one's registrations and can override them locally."""
        return TypeRegistry(parent=self)

    def chain(self) -> list[TypeRegistry]:
        """This registry and its ancestors, most specific first."""
        out: list[TypeRegistry] = []
        reg: TypeRegistry | None = self
        while reg is not None:
            if reg in out:
                break
            out.append(reg)
            reg = reg.parent
        return out

    def merged(
        self,
    ) -> tuple[
        dict[type[Any], UserType],
        dict[str, UserType],
        list[tuple[str, Callable[[Any], Any]]],
        dict[str, Callable[[Any], Any]],
    ]:
        """Effective tables (types, names, serializers in try order, deserializers)."""
        with _lock:
            by_type: dict[type[Any], UserType] = {}
            by_name: dict[str, UserType] = {}
            deserializers: dict[str, Callable[[Any], Any]] = {}
            serializers: dict[str, Callable[[Any], Any]] = {}
            chain = self.chain()
            for reg in reversed(chain):
                by_type.update(reg._by_type)
                by_name.update(reg._by_name)
                deserializers.update(reg._deserializers)
            for reg in chain:
                for n, fn in reg._serializers.items():
                    serializers.setdefault(n, fn)
            # A class whose name was taken over by a later registration of another class is
            # dropped: its values would be written under a name that now decodes to that other
            # class. Encoding it then fails loudly instead of loading as the wrong type.
            by_type = {c: h for c, h in by_type.items() if by_name[h.name].cls is c}
            return by_type, by_name, list(serializers.items()), deserializers


default_registry = TypeRegistry()
"""The library-wide registry every ``Codec()`` uses unless given another one."""

register_type = default_registry.register_type
