"""Consistent snapshots of a state without encoding it: copy what can change, keep the rest.

``freeze(state, codec)`` returns a state equal to ``state`` (same types, same values, the same
pandas indexes) that shares nothing mutable with it: the caller may mutate its objects as soon
as it returns, and encoding the copy later, in another thread, writes what the state held at
the call, byte for byte what encoding it then would have written (sets excepted: a copied
set may iterate in another order; it is equal). ``BackgroundSaver.save`` does this on the
caller's thread instead of a full encode: on the benchmark's M state it costs about a third
of the encode (bench/README.md), and the worker does the encode. ``Frozen.thaw()`` gives the
state to encode.

Size: over 400 lines on purpose: one walk whose per-type rules and pandas short paths
(each argued exact against what the codec stores) read best side by side.

How each value is taken (by exact type: a subclass falls under "anything else"):

- kept as it is, being immutable: None, bool, int, float, complex, str, bytes, Decimal,
  datetime/date/time/timedelta, timezone, ZoneInfo, UUID, range, paths, numpy scalars (not
  ``np.void``, which can be a view into an array), pandas Timestamp/Timedelta/Period/NaT/NA,
  and every pandas Index (immutable; keeping the object also keeps the codec storing an
  index shared by several Series once); frozenset and tuple when their items are;
- rebuilt around frozen items: dict, OrderedDict, list, tuple, set (dict keys and set items
  must be immutable values as above); bytearray is copied;
- copied: numpy arrays (one memcpy, in the memory order the codec stores); pandas Series as
  their values (one memcpy, a third of what ``Series.copy`` costs), rebuilt around the same
  index object by ``thaw``; one-dtype numpy DataFrames as their ``to_numpy()`` array (one
  2-D memcpy in that array's layout, which the codec stores: C order when pandas 2.2 or
  ``copy=False`` wraps the bot's 2-D array, F order when pandas built the block), rebuilt
  around the same axes; other DataFrames by ``copy(deep=True)`` (one memcpy per block, the
  codec storing them column by column). Copies with new Index objects (deep copies, round
  trips of a Series or a DataFrame) get the original ones back where another value shares
  them, so the codec still stores a shared index once. With a ``CopyPool``, numeric arrays
  are copied into reused memory (``statevault.pool``). Not pandas 3's lazy copies: a shallow
  copy still sees ``series.array[i] = x``. Values of
  object dtype are copied only when they hold immutable scalars (pandas ``infer_dtype``: str,
  bytes, numbers, dates and times; a list or a dict is not);
- anything else (registered types, dataclasses, object arrays of mutable items, deques,
  subclasses of the types above, dicts with other keys): round-tripped through the codec on
  the caller's thread, i.e. encoded (so what cannot be saved raises ``SerializationError``
  there, with its path in the state) and decoded into a private copy. That value costs what
  its synchronous encode costs, plus its decode. A round trip that does not give back the
  value's type (a one-way ``register_serializer`` hook) raises ``Unfreezable``: the caller
  then encodes the whole state instead.

Not covered: an index that a round-tripped value holds inside it (a Series in a dataclass)
and the rest of the state shares is stored twice from the copy (equal on load); a value kept
as immutable whose memory is written around its API, i.e. a pandas Index built on a numpy
array without a copy (``pd.Index(a, copy=False)``) that the bot still writes to, or writes
through pandas' private attributes. Everything copied is copied at the call, so later writes
to the original's memory (views, ``np.frombuffer``) never reach it.
"""

from __future__ import annotations

import datetime as dt
import pathlib
import sys
import uuid
import zoneinfo
from collections import OrderedDict
from decimal import Decimal
from types import NoneType
from typing import Any

from .codec import MAX_DEPTH, Codec, Encoded
from .errors import StateError
from .layers import state_path
from .pool import CopyPool
from .thaw import FrameCopy, Frozen, SeriesCopy

__all__ = ["Frozen", "Unfreezable", "freeze"]

_ATOMS: set[type[Any]] = {
    NoneType,
    bool,
    int,
    float,
    complex,
    str,
    bytes,
    Decimal,
    dt.datetime,
    dt.date,
    dt.time,
    dt.timedelta,
    dt.timezone,
    zoneinfo.ZoneInfo,
    uuid.UUID,
    range,
    pathlib.PurePosixPath,
    pathlib.PureWindowsPath,
    pathlib.PosixPath,
    pathlib.WindowsPath,
}
# Python objects in an object-dtype column or array that are immutable scalars.
# fmt: off
_IMMUTABLE_INFERRED = frozenset({
    "empty", "string", "bytes", "floating", "integer", "mixed-integer-float", "decimal",
    "complex", "boolean", "datetime64", "datetime", "date", "timedelta64", "timedelta", "time",
    "period",
})
# fmt: on
# numpy dtype classes (float64, int32, datetime64...) whose values hold no Python objects,
# learnt as met; structured ("V") dtypes are left out: one may or may not hold objects.
_PLAIN_DTYPES: set[type[Any]] = set()
_seen_types: dict[type[Any], str] = {}  # type -> "atom" | "numpy" | "pandas" | "other"


class Unfreezable(Exception):
    """A value whose round trip through the codec did not give back its type."""


def _kind(t: type[Any]) -> str:
    kind = _seen_types.get(t)
    if kind is not None:
        return kind
    kind = "other"
    root = (getattr(t, "__module__", "") or "").partition(".")[0]
    if root == "numpy":
        np = sys.modules["numpy"]
        if t is np.ndarray:
            kind = "numpy"
        elif issubclass(t, np.generic) and not issubclass(t, np.void):
            kind = "atom"
    elif root == "pandas":
        pd = sys.modules["pandas"]
        if t in (pd.Series, pd.DataFrame):
            kind = "pandas"
        elif issubclass(t, pd.Index) or t in (
            pd.Timestamp,
            pd.Timedelta,
            pd.Period,
            type(pd.NaT),
            type(pd.NA),
        ):
            kind = "atom"
    _seen_types[t] = kind
    return kind


def _is_index(t: type[Any]) -> bool:
    pd = sys.modules.get("pandas")
    return pd is not None and issubclass(t, pd.Index)


def _immutable(value: Any) -> bool:
    """Whether a dict key or set item is an immutable value (tuples of them included)."""
    t = type(value)
    if t in _ATOMS:
        return True
    if t is tuple or t is frozenset:
        return all(_immutable(v) for v in value)
    return _kind(t) == "atom"


def _objects_immutable(values: Any) -> bool:
    """Whether an object-dtype array (any shape) holds only immutable scalars."""
    pd = sys.modules.get("pandas")
    if pd is None:  # numpy without pandas: check the items one by one
        return all(_immutable(v) for v in values.ravel(order="K").tolist())
    flat = values.ravel(order="K")
    return pd.api.types.infer_dtype(flat, skipna=True) in _IMMUTABLE_INFERRED


def _plain(dtype: Any) -> bool:
    """Whether ``dtype`` is a numpy dtype whose values hold no Python objects."""
    t = type(dtype)
    if t in _PLAIN_DTYPES:
        return True
    np = sys.modules["numpy"]
    if not isinstance(dtype, np.dtype) or dtype.hasobject:
        return False
    # Learnt by class: numpy (>= 1.25) has one per type. A structured dtype may or may not
    # hold objects, and a numpy with no such classes would give np.dtype itself: not learnt.
    if dtype.kind != "V" and t is not np.dtype:
        _PLAIN_DTYPES.add(t)
    return True


def _frame_dtypes(df: Any) -> list[Any]:
    """The column dtypes of a DataFrame (the block manager's own array where pandas has it:
    ``df.dtypes`` builds a Series, about 40 us, most of the copy's cost for a small frame)."""
    try:
        return list(df._mgr.get_dtypes())
    except AttributeError:  # pragma: no cover - a pandas without it
        return list(df.dtypes)


def _one_block(df: Any, ndarray: Any) -> Any:
    """The values of a DataFrame held in one numpy block of a plain dtype, as ``to_numpy()``
    gives them (pandas 2.2 and 3: the block's array transposed, the same memory and strides;
    0.4 us where ``_frame_dtypes`` and ``to_numpy()`` cost 2-4), else None."""
    try:
        blocks = df._mgr.blocks
    except AttributeError:  # pragma: no cover - a pandas without it
        return None
    if len(blocks) == 1:
        values = blocks[0].values
        if type(values) is ndarray and _plain(values.dtype):
            return values.T
    return None  # other frames need every column's dtype


class _TooDeep(Exception):
    pass


class _Freezer:
    """One ``freeze`` call: the codec for round trips and the path of the current value."""

    def __init__(self, codec: Codec, pool: CopyPool | None) -> None:
        self.codec = codec
        self.pool = pool
        self.path: list[Any] = []
        self.axes: list[tuple[Any, Any, Any]] = []  # (copy, original index, columns)
        # Every Index met in the state, counted by identity only if a copy needs it
        # (``restore_shared``): an append is all a Series pays here.
        self.met: list[Any] = []
        self.series = 0  # values taken apart (SeriesCopy, FrameCopy), rebuilt by thaw
        np = sys.modules.get("numpy")
        self.ndarray: Any = np.ndarray if np is not None else None

    def value(self, obj: Any, depth: int) -> Any:
        t = type(obj)
        if t in _ATOMS:
            return obj
        if depth >= MAX_DEPTH:  # a cycle or a very deep state: the codec's error says which
            raise _TooDeep
        kind = _seen_types.get(t)
        if kind == "pandas":  # most of a trading state's data: tested first
            return self.pandas(obj, depth)
        if t is dict or t is OrderedDict:
            # Keys of atom types (str, nearly always) checked in C; others one by one.
            if not set(map(type, obj)) <= _ATOMS and not all(_immutable(k) for k in obj):
                return self.round_trip(obj)
            # Immutable leaves are taken in line: most of a state's values, no path to track.
            atoms = _ATOMS
            if t is dict:
                return {
                    k: v if type(v) in atoms else self.child(k, v, depth) for k, v in obj.items()
                }
            return t(
                (k, v if type(v) in atoms else self.child(k, v, depth)) for k, v in obj.items()
            )
        if t is list:
            atoms = _ATOMS
            return [v if type(v) in atoms else self.child(i, v, depth) for i, v in enumerate(obj)]
        if t is tuple:
            items = tuple(self.child(i, v, depth) for i, v in enumerate(obj))
            return obj if all(a is b for a, b in zip(items, obj, strict=True)) else items
        if t is set or t is frozenset:
            if not all(_immutable(v) for v in obj):
                return self.round_trip(obj)
            return set(obj) if t is set else obj
        if t is bytearray:
            return bytearray(obj)
        kind = kind or _kind(t)
        if kind == "atom":
            if _is_index(t):
                self.count(obj)
            return obj
        if kind == "numpy":
            return self.array(obj)
        if kind == "pandas":
            return self.pandas(obj, depth)
        return self.round_trip(obj)

    def child(self, key: Any, value: Any, depth: int) -> Any:
        # No try/finally: an exception out of here ends the whole freeze (and its path).
        path = self.path
        path.append(key)
        result = self.value(value, depth + 1)
        path.pop()
        return result

    def array(self, arr: Any) -> Any:
        if arr.dtype.hasobject and not (arr.dtype.kind == "O" and _objects_immutable(arr)):
            return self.round_trip(arr)
        return self.copy(arr)

    def copy(self, arr: Any) -> Any:
        """A copy of a numpy array in the memory order the codec stores for it: into the pool's
        memory when there is one."""
        # codec/_numpy.py array_buffer stores C order, or F order ("order": "F") for an array
        # that is F- but not C-contiguous, and copies any other to C order: a copy in another
        # order would encode to other bytes (and decode to another layout).
        if arr.ndim == 1:  # C order, contiguous or not (most arrays: not worth the flags)
            order = "C"
        else:
            flags = arr.flags
            order = "F" if flags.f_contiguous and not flags.c_contiguous else "C"
        pool = self.pool
        nbytes = arr.nbytes
        if pool is None or nbytes < pool.min_bytes or arr.dtype.hasobject:
            return arr.copy(order=order)
        out = pool.empty(arr.shape, arr.dtype, order, nbytes)
        out[...] = arr
        return out

    def pandas(self, obj: Any, depth: int) -> Any:
        # Every axis met counts (a Series' index too): a copy with new Index objects (a deep
        # copy, a round trip) gets the originals back when any other value shares them.
        index = obj.index
        self.met.append(index)
        if obj.ndim == 1:
            # The block's own values (what pandas' ``Series._values`` returns): an ndarray for
            # a numpy dtype, else an extension array (datetimes among them). 0.15 us, where
            # ``dtype`` and ``to_numpy()`` cost 1.4.
            values = obj._mgr.internal_values()
            numpy_values = type(values) is self.ndarray
            dtype = values.dtype if numpy_values else obj.dtype
            if _plain(dtype):
                # Plain numeric values (the common case, kept short: the bot thread pays it per
                # Series): one memcpy (pandas' own copy() costs 3x more, and its lazy copy on
                # pandas 3 still lets ``s.array[i] = x`` through); the Series is rebuilt
                # around them and its original Index object in the worker (``thaw``).
                self.series += 1
                return SeriesCopy(
                    # The copy of the values (the same bytes ``to_numpy()`` views).
                    self.copy(values if numpy_values else obj.to_numpy()),
                    index,
                    obj.name,
                    dtype,
                    attrs=self.value(dict(obj.attrs), depth + 1) if obj.attrs else None,
                    nodup=not obj.flags.allows_duplicate_labels,
                )
            dtypes = [dtype]
        else:
            self.met.append(obj.columns)
            values = _one_block(obj, self.ndarray)
            dtypes = [values.dtype] if values is not None else _frame_dtypes(obj)
            if dtypes and _plain(dtypes[0]) and all(d == dtypes[0] for d in dtypes):
                # One plain dtype: its values as one 2-D copy (pandas' copy() costs ~40 us a
                # frame, most of a small frame's share), rebuilt around the same axes. The
                # codec stores to_numpy() (a view of a single block) in its layout: F order
                # when pandas built the block, C order when the block wraps a 2-D array the
                # bot passed (pandas 2.2, or copy=False): ``copy`` keeps that layout.
                self.series += 1
                return FrameCopy(
                    self.copy(obj.to_numpy() if values is None else values),
                    index,
                    obj.columns,
                    attrs=self.value(dict(obj.attrs), depth + 1) if obj.attrs else None,
                    nodup=not obj.flags.allows_duplicate_labels,
                )
        np = sys.modules["numpy"]
        for j, dtype in enumerate(dtypes):
            if isinstance(dtype, np.dtype):
                if dtype.kind != "O":
                    continue
                column = obj if obj.ndim == 1 else obj.iloc[:, j]
                if _objects_immutable(column.to_numpy()):
                    continue
            elif (type(dtype).__module__ or "").partition(".")[0] == "pandas":
                # pandas' own extension arrays copy their data or are immutable (the masked
                # dtypes' module is "pandas" itself on pandas 3, "pandas.core..." on 2.2)
                continue
            return self.axes_kept(obj, self.round_trip(obj))
        if obj.ndim == 1:  # object values of immutable scalars, or a pandas extension array
            self.series += 1
            return SeriesCopy(
                obj.array.copy(),
                obj.index,
                obj.name,
                dtype,
                attrs=self.value(dict(obj.attrs), depth + 1) if obj.attrs else None,
                nodup=not obj.flags.allows_duplicate_labels,
            )
        return self.axes_kept(obj, obj.copy(deep=True))  # one memcpy per block, attrs copied

    def axes_kept(self, obj: Any, copy: Any) -> Any:
        """``copy`` of ``obj``, noted to get ``obj``'s own Index objects back if they are shared.

        A deep copy or a round trip gives new Index objects (equal ones). An index that several
        values share is stored once by the codec (by identity): ``restore_shared`` gives those
        copies the original back.
        """
        self.axes.append((copy, obj.index, obj.columns if obj.ndim == 2 else None))
        return copy

    def count(self, index: Any) -> None:
        self.met.append(index)

    def restore_shared(self) -> None:
        """Give back the original Index objects to copies whose index is shared."""
        if not self.axes:  # every copy kept its original axes
            return
        seen: dict[int, int] = {}
        for index in self.met:
            seen[id(index)] = seen.get(id(index), 0) + 1
        for copy, index, columns in self.axes:
            if seen[id(index)] > 1:
                copy.index = index
            if columns is not None and seen[id(columns)] > 1:
                copy.columns = columns

    def round_trip(self, obj: Any) -> Any:
        """Encode ``obj`` (raising here what cannot be saved) and decode a private copy."""
        encoded = self.codec.encode(obj, root=state_path(*self.path))
        # Writable copies of the buffers: the decoded arrays use them, not the state's memory.
        copied = Encoded(encoded.doc, [memoryview(bytearray(b)) for b in encoded.buffers])
        try:
            decoded = self.codec.decode(copied)
        except StateError as e:  # a hook without its deserializer: stored, not loadable
            raise Unfreezable(f"{state_path(*self.path)}: {e}") from e
        if type(decoded) is not type(obj):
            raise Unfreezable(
                f"{state_path(*self.path)}: a {type(obj).__name__} decodes as a "
                f"{type(decoded).__name__}"
            )
        return decoded


def freeze(state: dict[str, Any], codec: Codec, pool: CopyPool | None = None) -> Frozen:
    """A private copy of ``state`` that encodes exactly as ``state`` does now (see the module).

    With a ``pool`` (``statevault.pool``), numeric arrays are copied into its reusable memory;
    one thread at a time may use a pool.

    Raises ``SerializationError`` for a value that cannot be saved (found while
    round-tripping it), ``Unfreezable`` when a value's round trip changes its type.
    """
    freezer = _Freezer(codec, pool)
    if pool is not None:
        pool.begin()
    try:
        result: dict[str, Any] = freezer.value(state, 0)
    except _TooDeep:
        codec.encode(state)  # raises the codec's own error, with the path
        raise Unfreezable("the state nests too deeply to copy") from None
    finally:
        if pool is not None:
            pool.end()
    freezer.restore_shared()
    return Frozen(result, freezer.series)
