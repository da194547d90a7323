"""Layouts: how a state splits into frame sections and joins back.

Section 0, the root, holds ``{"state": ...}`` plus whatever overview the layout adds; a value
stored in a section of its own is referred to from the root by a private ``SectionRef`` that
only the root's codec knows (so no user data can forge one). ``FlatLayout`` keeps the whole
state in the root; ``TradingLayout`` gives each pair under ``pair_states`` its own section and
puts a small per-pair overview in the root, so a summary reads the header and the root only.
Any layout reads any frame: the join resolves whatever references the root holds.

Error paths name the user's state: ``state['pair_states']['EURUSD-GBPUSD']['model']``, not the
layout's wrapping (``state['state']...`` or ``section[3]``).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, TypeVar

from ..codec import Codec, TypeRegistry
from ..errors import CorruptStateError, StateError
from ..frame import FrameReader
from ..transforms import Buffer
from .legacy import restore_legacy

__all__ = [
    "FlatLayout",
    "Layout",
    "NoSuchName",
    "SectionRef",
    "TradingLayout",
    "pair_overview",
    "pick",
    "state_path",
]

# Tag of the private reference type that links the root section to the other sections.
_SECTION_REF_TAG = "statevault.section"
_ROOT = "state['state']"  # where the codec's paths into the root's state start
_E = TypeVar("_E", bound=BaseException)


class SectionRef:
    """A placeholder in the root section for a value stored in section ``index`` of the frame."""

    __slots__ = ("index",)

    def __init__(self, index: int) -> None:
        self.index = index

    def __repr__(self) -> str:
        return f"SectionRef({self.index})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SectionRef) and other.index == self.index

    def __hash__(self) -> int:
        return hash(("SectionRef", self.index))


def _encode_ref(ref: SectionRef) -> int:
    return ref.index


def _decode_ref(index: Any) -> SectionRef:
    if not isinstance(index, int) or isinstance(index, bool) or index < 1:
        raise CorruptStateError(f"invalid section reference {index!r} in the root section")
    return SectionRef(index)


def _repath(error: _E, old: str, new: str) -> _E:
    """Rewrite the leading ``old`` of an error's state path (and its message) to ``new``."""
    path = getattr(error, "path", None)
    if not isinstance(path, str) or not path.startswith(old):
        return error
    renamed = new + path[len(old) :]
    error.path = renamed  # type: ignore[attr-defined]
    if error.args and isinstance(error.args[0], str):
        error.args = (error.args[0].replace(path, renamed), *error.args[1:])
    return error


def _key_text(key: Any) -> str:
    try:
        return f"[{key!r}]"
    except ValueError:  # an int too long for repr(): name its type, not its digits
        return f"[<{type(key).__name__}>]"


def _key_path(parent: str, key: Any) -> str:
    return parent + _key_text(key)


def state_path(*keys: Any) -> str:
    """How an error names the value at ``state[k1][k2]...``: ``state['pair_states']['P']``."""
    return "state" + "".join(_key_text(k) for k in keys)


class Layout:
    """How one state maps onto the sections of a frame; subclasses choose the split.

    ``encode`` is pure (no I/O): it returns each section's payload chunks. ``join`` and the
    ranged helpers (``root_state``, ``resolve``, ``pick``) read through a ``FrameReader``, so
    only the sections asked for are fetched.
    """

    #: ``kind`` recorded in the frame's meta for states written with this layout.
    kind = "state"

    def __init__(self, registry: TypeRegistry) -> None:
        self.codec = Codec(registry)
        # The root codec knows the private SectionRef type on top of the user's registry, so
        # only the root section can refer to other sections.
        root_registry = registry.child()
        root_registry.register_type(
            SectionRef, _SECTION_REF_TAG, encode=_encode_ref, decode=_decode_ref
        )
        self.root_codec = Codec(root_registry)

    # -- splitting (subclasses)

    def split(self, state: dict[str, Any]) -> tuple[Any, list[tuple[str, Any]]]:
        """The root object and the values stored as sections 1, 2, ... with their state paths.

        The root refers to section ``i`` with ``SectionRef(i)``.
        """
        return {"state": state}, []

    def from_legacy(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Turn a legacy JSON document into a state (see ``legacy``)."""
        return obj

    # -- encoding (no I/O)

    def encode(self, state: dict[str, Any]) -> list[list[Buffer]]:
        """Every section's payload chunks, root first; raises ``SerializationError``."""
        root, parts = self.split(state)
        try:
            sections = [list(self.root_codec.dumps(root, root="state"))]
        except StateError as e:
            raise _repath(e, _ROOT, "state") from e.__cause__
        for path, part in parts:
            sections.append(list(self.codec.dumps(part, root=path)))
        return sections

    # -- reading

    def root(self, reader: FrameReader) -> Any:
        """The decoded root section (``{"state": ..., ...}``), references unresolved."""
        try:
            return self.root_codec.loads_parts(reader.section_parts(0))
        except StateError as e:
            raise _repath(e, _ROOT, "state") from e.__cause__

    def root_state(self, reader: FrameReader, url: str) -> dict[str, Any]:
        """The state dict of the root section, its sections still ``SectionRef``\\ s."""
        root = self.root(reader)
        state = root.get("state") if isinstance(root, dict) else None
        if not isinstance(state, dict):
            raise CorruptStateError(f"the root section of {url} holds no state dict")
        return state

    def resolve(self, value: Any, reader: FrameReader, url: str, path: str = "state") -> Any:
        """``value`` (found at ``path`` of the state) with every section reference in it
        replaced by that section's value; a decode error names the path in the state."""
        try:
            return self._walk(value, reader, url)
        except _InSection as failed:
            keys = "".join(_key_text(k) for k in reversed(failed.keys))
            raise _repath(failed.error, "state", path + keys) from failed.error.__cause__

    def _walk(self, value: Any, reader: FrameReader, url: str) -> Any:
        # References sit in plain dicts of the root (the flat layout has none at all), so a
        # walk over dicts is enough and costs nothing measurable on a small root. The path
        # of a failing section is collected on the way up only, never built on success.
        if isinstance(value, SectionRef):
            return self._load_section(reader, value.index, url)
        if type(value) is dict:
            out = {}
            for k, v in value.items():
                try:
                    out[k] = self._walk(v, reader, url)
                except _InSection as failed:
                    failed.keys.append(k)
                    raise
            return out
        return value

    def join(self, reader: FrameReader, url: str) -> dict[str, Any]:
        """The full state of a frame, every section reference resolved."""
        resolved = self.resolve(self.root_state(reader, url), reader, url)
        assert isinstance(resolved, dict)
        return resolved

    def pick(self, reader: FrameReader, url: str, name: str) -> Any:
        """One top-level key, or one pair under ``pair_states``: reads only its sections.

        ``KeyError`` (with the names there are) when the state has neither.
        """
        state = self.root_state(reader, url)
        return pick(state, name, lambda v, path: self.resolve(v, reader, url, path))

    def _load_section(self, reader: FrameReader, index: int, url: str) -> Any:
        if index >= len(reader.header.sections):
            raise CorruptStateError(
                f"{url}: the root refers to section {index}, the frame has "
                f"{len(reader.header.sections)}"
            )
        try:
            return self.codec.loads_parts(reader.section_parts(index))
        except StateError as e:
            raise _InSection(e) from e


class _InSection(Exception):
    """A section failed to decode; ``keys`` collects where its reference sits in the root."""

    def __init__(self, error: StateError) -> None:
        super().__init__(str(error))
        self.error = error
        self.keys: list[Any] = []


class NoSuchName(KeyError):
    """``pick``: the state has no such top-level key nor pair; ``names`` lists what it has."""

    def __init__(self, name: str, keys: list[Any], pairs: list[Any]) -> None:
        super().__init__(name)
        self.name = name
        self.keys = keys
        self.pairs = pairs


def pick(state: Mapping[str, Any], name: str, resolve: Callable[[Any, str], Any]) -> Any:
    """``state[name]``, else ``state['pair_states'][name]``, through ``resolve(value, path)``."""
    if name in state:
        return resolve(state[name], _key_path("state", name))
    pairs = state.get("pair_states")
    if isinstance(pairs, dict) and name in pairs:
        return resolve(pairs[name], _key_path(_key_path("state", "pair_states"), name))
    raise NoSuchName(name, list(state), list(pairs) if isinstance(pairs, dict) else [])


# -- the trading layout's overview of a pair

_SCALARS = (bool, int, float, datetime, date, time, timedelta, Decimal, type(None))
# Bounds that keep the overview of one pair to a few hundred bytes, whatever the pair holds.
_MAX_TEXT = 200
_MAX_ITEMS = 32
_MAX_DEPTH = 2


def _small(value: Any) -> bool:
    return isinstance(value, _SCALARS) or (isinstance(value, str) and len(value) <= _MAX_TEXT)


def _overview(value: Any, depth: int = 0) -> Any:
    """A few bytes that describe one value of a pair's state, without its bulk data.

    Scalars and short strings are kept; short lists, tuples and sets of those too; dicts are
    described key by key (two levels deep); pandas objects become type, shape, first and last
    index label and (Series) last value; numpy arrays type and shape; anything else its type
    name and length. Duck-typed so that pandas is never imported here.
    """
    if _small(value):
        return value
    if hasattr(value, "item") and getattr(value, "shape", None) == ():
        return value.item()  # a numpy scalar
    if isinstance(value, list | tuple | set | frozenset):
        if len(value) <= _MAX_ITEMS and all(_small(v) for v in value):
            return value
        return {"type": type(value).__name__, "length": len(value)}
    if isinstance(value, Mapping):
        if depth < _MAX_DEPTH and len(value) <= _MAX_ITEMS:
            return {k: _overview(v, depth + 1) for k, v in value.items() if isinstance(k, str)}
        return {"type": type(value).__name__, "length": len(value)}
    shape = getattr(value, "shape", None)
    if isinstance(shape, tuple):
        out: dict[str, Any] = {"type": type(value).__name__, "shape": tuple(int(n) for n in shape)}
        index = getattr(value, "index", None)
        if index is not None and hasattr(index, "__len__") and len(index):
            out["start"], out["end"] = _ends(index)
            if getattr(value, "ndim", 0) == 1:
                last = _last(value)
                try:
                    last = last.item() if hasattr(last, "item") else last
                except (TypeError, ValueError):  # e.g. an array element: not a scalar
                    last = None
                if isinstance(last, _SCALARS):
                    out["last"] = last
        return out
    out = {"type": type(value).__name__}
    if isinstance(value, str | bytes | bytearray):
        out["length"] = len(value)
    return out


# (first or last int64 of a DatetimeIndex, its dtype's str, id of its tz) -> (tz, Timestamp)
_stamps: dict[tuple[int, str, int], tuple[Any, Any]] = {}
_STAMPS_LIMIT = 4096


def _ends(index: Any) -> tuple[Any, Any]:
    """``index[0], index[-1]``; for a DatetimeIndex the Timestamps come from a cache.

    Boxing a Timestamp costs about 7 us, most of a pair's overview, and the series of a bot
    share their first and last times. A Timestamp is immutable and a pure function of its
    int64, unit (in the dtype's str, ``|M8[us]``) and tz object, so a cached one is what
    ``index[0]`` would give. The tz is matched by identity (equal dtypes may hold different
    tz objects, which encode differently) and kept alive by the cache.
    """
    pd = sys.modules.get("pandas")
    if pd is None or type(index) is not pd.DatetimeIndex:
        return index[0], index[-1]
    i8 = index.asi8
    dtype = index.dtype
    unit: str = dtype.str
    tz = getattr(dtype, "tz", None)
    out = []
    for at in (0, -1):
        key = (int(i8[at]), unit, id(tz))
        hit = _stamps.get(key)
        if hit is None or hit[0] is not tz:
            if len(_stamps) >= _STAMPS_LIMIT:
                _stamps.clear()
            hit = _stamps[key] = (tz, index[at])
        out.append(hit[1])
    return out[0], out[1]


def _last(series: Any) -> Any:
    """``series.iloc[-1]``; for a pandas Series read from its array (what ``iloc`` returns,
    item of the same array, without the indexer's 5 us)."""
    pd = sys.modules.get("pandas")
    if pd is not None and type(series) is pd.Series:
        return series.array[-1]
    return series.iloc[-1]


def pair_overview(pair_state: Any) -> Any:
    if isinstance(pair_state, Mapping):
        # Every key of the pair, however many: the summary lists what each pair holds.
        return {k: _overview(v, 1) for k, v in pair_state.items() if isinstance(k, str)}
    return _overview(pair_state)


class FlatLayout(Layout):
    """The whole state in the root section (``StateManager``)."""


class TradingLayout(Layout):
    """Each pair's data in a section of its own, a per-pair overview in the root."""

    kind = "trading"

    def split(self, state: dict[str, Any]) -> tuple[Any, list[tuple[str, Any]]]:
        pair_states = state.get("pair_states")
        if not isinstance(pair_states, dict):
            return super().split(state)
        parts: list[tuple[str, Any]] = []
        refs: dict[Any, SectionRef] = {}
        overview: dict[Any, Any] = {}
        for pair, pair_state in pair_states.items():
            parts.append((state_path("pair_states", pair), pair_state))
            refs[pair] = SectionRef(len(parts))
            overview[pair] = pair_overview(pair_state)
        root_state = dict(state)
        root_state["pair_states"] = refs
        return {"state": root_state, "pairs": overview}, parts

    def from_legacy(self, obj: dict[str, Any]) -> dict[str, Any]:
        return restore_legacy(obj)
