"""The ``Transform`` record and the ``TransformRegistry``: what every transform module builds on.

A ``Transform`` is as small as zict's ``Func``: a name, an ``encode`` and a ``decode`` function,
a few JSON parameters, and the properties it declares (``encrypts``, ``compresses``,
``authenticates``). Callers ask for a property, never for a name: the frame reports a state as
encrypted because a transform in its stack declares ``encrypts``, and ``compression=`` takes any
registered transform that declares ``compresses``.

A registry maps the name recorded in a frame to a factory that rebuilds the transform from the
stored parameters and the reader's keyring. Where a name comes from, in order of precedence:
a registration in code (``register``; the last one wins), then the registry's parent, then, for
the library's default registry only, an installed entry point in the group
``statevault.transforms`` (loaded when the name is first looked up). Two installed
distributions providing the same name is an error, never a silent choice. Nothing depends on
import order.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import metadata
from types import MappingProxyType
from typing import Any, Final, TypeAlias, TypeVar, overload

from ..errors import StateError, TransformError, UnknownTransformError
from ..keys import Keyring

__all__ = [
    "ENTRY_POINT_GROUP",
    "Buffer",
    "Transform",
    "TransformFactory",
    "TransformProperties",
    "TransformRegistry",
]

Buffer: TypeAlias = bytes | bytearray | memoryview

#: The entry-point group a distribution declares its transforms in (name = transform name).
ENTRY_POINT_GROUP: Final = "statevault.transforms"

_NAME_RE: Final = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
_PROPERTIES: Final = ("encrypts", "compresses", "authenticates")


def _check_name(name: object) -> str:
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
        raise ValueError(f"transform name {name!r} must be 1-64 letters, digits or _.:-")
    return name


@dataclass(frozen=True)
class TransformProperties:
    """What a transform declares about itself; known from its name, before it is built.

    ``encrypts``: a key is needed to undo it (and its output reveals nothing of its input).
    ``compresses``: it may be chosen as a manager's ``compression=``; it accepts a ``level``
    parameter. ``authenticates``: ``decode`` raises a ``StateError`` for any bytes its
    ``encode`` with the reader's keys did not produce (a MAC check), so edits are detected.
    """

    encrypts: bool = False
    compresses: bool = False
    authenticates: bool = False


@dataclass(frozen=True, repr=False)
class Transform:
    """One reversible bytes -> bytes layer: ``decode(encode(b)) == b`` for every buffer ``b``.

    ``params`` are JSON values recorded in clear in every frame this transform writes (never a
    secret); a registry factory gets them back to rebuild the transform when reading.
    ``encode``/``decode`` may be called from several threads at once: guard any state.
    ``decode_bounded(data, limit)``, when given, decodes like ``decode`` but never allocates
    more than ``limit`` output bytes (it raises ``StateTooLargeError`` instead): readers use it
    so a forged input cannot make them allocate what its header claims. Without it, readers
    call ``decode`` and check the size afterwards.
    """

    name: str
    encode: Callable[[Buffer], Buffer]
    decode: Callable[[Buffer], Buffer]
    params: Mapping[str, Any] = field(default_factory=dict)
    encrypts: bool = False
    compresses: bool = False
    authenticates: bool = False
    decode_bounded: Callable[[Buffer, int], Buffer] | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        _check_name(self.name)
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
        for prop in _PROPERTIES:
            if not isinstance(getattr(self, prop), bool):
                raise TypeError(f"transform {self.name!r}: {prop} must be a bool")

    @property
    def properties(self) -> TransformProperties:
        """The properties this transform declares."""
        return TransformProperties(self.encrypts, self.compresses, self.authenticates)

    def __repr__(self) -> str:
        # Never the callables: a closure may hold a key.
        return f"Transform(name={self.name!r}, params={dict(self.params)!r})"


TransformFactory: TypeAlias = Callable[[Mapping[str, Any], Keyring | None], Transform]
_F = TypeVar("_F", bound=TransformFactory)


@dataclass(frozen=True)
class _Entry:
    factory: TransformFactory
    properties: TransformProperties
    origin: str  # where it came from, for messages


class TransformRegistry:
    """Transforms by name, for readers: the name in a frame -> a factory that rebuilds it.

    Lookups fall back to the ``parent`` registry (``child()`` makes a per-manager registry on
    top of ``default_transforms``), then to installed entry points in ``entry_point_group``
    (the default registry uses ``statevault.transforms``; other registries none). The last
    registration of a name wins. Registration is not synchronised: register at start-up,
    before threads read with the registry.
    """

    def __init__(
        self, parent: TransformRegistry | None = None, *, entry_point_group: str | None = None
    ) -> None:
        self._parent = parent
        self._group = entry_point_group
        self._entries: dict[str, _Entry] = {}
        self._installed: dict[str, _Entry] = {}

    @overload
    def register(
        self,
        name: str,
        factory: TransformFactory | Transform,
        *,
        encrypts: bool | None = None,
        compresses: bool | None = None,
        authenticates: bool | None = None,
    ) -> None: ...

    @overload
    def register(
        self,
        name: str,
        factory: None = None,
        *,
        encrypts: bool | None = None,
        compresses: bool | None = None,
        authenticates: bool | None = None,
    ) -> Callable[[_F], _F]: ...

    def register(
        self,
        name: str,
        factory: TransformFactory | Transform | None = None,
        *,
        encrypts: bool | None = None,
        compresses: bool | None = None,
        authenticates: bool | None = None,
    ) -> Callable[[_F], _F] | None:
        """Register ``factory(params, keyring) -> Transform`` or a fixed ``Transform`` as ``name``.

        A ``Transform`` instance registers a transform without parameters and brings its own
        properties. For a factory, the properties are the keyword arguments, else attributes
        of the same name on the factory (a class with ``compresses = True``), else False; every
        transform it builds must declare the same ones. Without ``factory`` this is a
        decorator: ``@registry.register("xor")``.
        """
        _check_name(name)
        declared = {"encrypts": encrypts, "compresses": compresses, "authenticates": authenticates}
        if factory is None:

            def decorator(fn: _F) -> _F:
                self.register(name, fn, **declared)
                return fn

            return decorator
        self._entries[name] = _make_entry(name, factory, declared, "registered in code")
        return None

    def _own(self, name: str) -> _Entry | None:
        found = self._entries.get(name)
        if found is None and self._group is not None:
            found = self._installed.get(name)
            if found is None:
                found = _from_entry_points(self._group, name)
                if found is not None:
                    self._installed[name] = found
        return found

    def _lookup(self, name: str) -> _Entry | None:
        # Registrations in code (here, then in parents) come before any installed entry point.
        chain: list[TransformRegistry] = []
        registry: TransformRegistry | None = self
        while registry is not None:
            found = registry._entries.get(name)
            if found is not None:
                return found
            chain.append(registry)
            registry = registry._parent
        for registry in chain:
            if registry._group is not None:
                found = registry._own(name)
                if found is not None:
                    return found
        return None

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self._lookup(name) is not None

    def properties(self, name: str) -> TransformProperties | None:
        """The properties ``name`` declares, without building it (None if it is unknown)."""
        entry = self._lookup(name)
        return None if entry is None else entry.properties

    def names(self) -> list[str]:
        """Every name this registry can build (registered here or above, or installed), sorted.

        Lists installed entry points without loading them.
        """
        out: set[str] = set()
        registry: TransformRegistry | None = self
        while registry is not None:
            out.update(registry._entries)
            if registry._group is not None:
                out.update(ep.name for ep in metadata.entry_points(group=registry._group))
            registry = registry._parent
        return sorted(out)

    def build(self, name: str, params: Mapping[str, Any], keyring: Keyring | None) -> Transform:
        """The transform ``name`` with the stored ``params``, using ``keyring`` if it needs keys.

        Raises ``UnknownTransformError`` if nothing is registered under ``name``, the factory's
        own ``StateError`` (e.g. ``MissingKeyError``), or ``TransformError`` if it fails.
        """
        entry = self._lookup(name)
        if entry is None:
            raise UnknownTransformError(
                f"the state was written with the byte transform {name!r}, which is not "
                f"registered here: call statevault.register_transform({name!r}, factory) "
                "(or the manager's register_transform), or install the package that provides "
                "it, before loading it"
            )
        try:
            transform = entry.factory(MappingProxyType(dict(params)), keyring)
        except StateError:
            raise
        except Exception as e:
            raise TransformError(
                f"the factory of transform {name!r} failed: {type(e).__name__}"
            ) from e
        if not isinstance(transform, Transform) or transform.name != name:
            raise TransformError(f"the factory of transform {name!r} did not return one")
        if transform.properties != entry.properties:
            raise TransformError(
                f"transform {name!r} ({entry.origin}) is registered as {entry.properties} but "
                f"its factory built one that declares {transform.properties}: register it with "
                "the properties its transforms declare"
            )
        return transform

    def child(self) -> TransformRegistry:
        """A new registry that sees this one's transforms and can override them locally."""
        return TransformRegistry(parent=self)


def _make_entry(
    name: str, factory: object, declared: Mapping[str, bool | None], origin: str
) -> _Entry:
    if isinstance(factory, Transform):
        if factory.name != name:
            raise ValueError(f"cannot register Transform {factory.name!r} under the name {name!r}")
        given = {k: v for k, v in declared.items() if v is not None}
        own = {k: getattr(factory, k) for k in _PROPERTIES}
        if any(own[k] != v for k, v in given.items()):
            raise ValueError(f"Transform {name!r} declares {factory.properties} itself")
        return _Entry(_fixed(factory), factory.properties, origin)
    if not callable(factory):
        raise TypeError(
            f"register a Transform or a factory(params, keyring), not {type(factory).__name__}"
        )
    props: dict[str, bool] = {}
    for prop in _PROPERTIES:
        value = declared.get(prop)
        if value is None:
            value = getattr(factory, prop, False)
        if not isinstance(value, bool):
            raise TypeError(f"transform {name!r}: {prop} must be a bool, not {value!r}")
        props[prop] = value
    fn: TransformFactory = factory
    return _Entry(fn, TransformProperties(**props), origin)


def _from_entry_points(group: str, name: str) -> _Entry | None:
    """The installed entry point for ``name``; an error if distributions disagree about it."""
    found = {ep.value: ep for ep in metadata.entry_points(group=group, name=name)}
    if not found:
        return None
    if len(found) > 1:
        owners = ", ".join(sorted(f"{_dist_name(ep)} ({ep.value})" for ep in found.values()))
        raise TransformError(
            f"several installed packages provide the transform {name!r} in the entry-point "
            f"group {group!r}: {owners}. Uninstall all but one, or register the one to use "
            f"in code with statevault.register_transform({name!r}, ...)"
        )
    (ep,) = found.values()
    origin = f"entry point {ep.value} of {_dist_name(ep)}"
    try:
        obj = ep.load()
    except Exception as e:
        raise TransformError(
            f"the transform {name!r} ({origin}) cannot be loaded: {type(e).__name__}: {e}. "
            "Reinstall that package or uninstall it"
        ) from e
    try:
        return _make_entry(name, obj, {}, origin)
    except (TypeError, ValueError) as e:
        raise TransformError(f"the transform {name!r} ({origin}) is not usable: {e}") from e


def _dist_name(ep: metadata.EntryPoint) -> str:
    dist = ep.dist
    return "an unknown distribution" if dist is None else str(dist.name)


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
