"""Hypothesis strategies for every value the codec supports, and an exact comparison helper.

``values()`` draws nested values of every supported type; ``series()``, ``frames()`` and
``indexes()`` draw pandas objects with the dtypes and index kinds the codec promises to keep;
``assert_same(a, b)`` checks a round trip exactly: the type at every level, NaN and the sign of
zero, tz and fold, dtype and byte order, pandas dtypes, index types and frequencies, attrs, flags.

Importing this module registers ``Color`` (an Enum), ``Flags`` (a Flag) and ``Point`` (a
dataclass) on ``default_registry``, so ``values()`` can include registered user types.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import math
import pathlib
import zoneinfo
from collections import OrderedDict
from decimal import Decimal
from typing import Any

import hypothesis.extra.numpy as hnp
import hypothesis.extra.pandas as hpd
import numpy as np
import pandas as pd
import pandas.testing as pdt
from hypothesis import strategies as st

from statevault.codec import register_type

__all__ = [
    "Color",
    "Flags",
    "Point",
    "arrays",
    "assert_same",
    "frames",
    "hashables",
    "indexes",
    "numpy_scalars",
    "pandas_scalars",
    "round_trips",
    "scalars",
    "series",
    "values",
]


@register_type
class Color(enum.Enum):
    RED = 1
    GREEN = "green"
    BLUE = (3, 4)


@register_type
class Flags(enum.Flag):
    A = 1
    B = 2
    C = 4


@register_type
@dataclasses.dataclass(frozen=True)
class Point:
    x: Any
    y: Any = 0.0
    label: str = dataclasses.field(default="", init=False)


# --- time zones ----------------------------------------------------------------------------

_ZONES = ["UTC", "Europe/London", "America/New_York", "Asia/Tokyo", "Australia/Lord_Howe"]

fixed_timezones = st.one_of(
    st.just(dt.UTC),
    st.builds(
        dt.timezone,
        st.integers(-23 * 60, 23 * 60).map(lambda m: dt.timedelta(minutes=m)),
    ),
    st.builds(
        dt.timezone,
        st.integers(-23 * 3600, 23 * 3600).map(lambda s: dt.timedelta(seconds=s)),
        st.sampled_from(["CET", "EST", "X", "UTC"]),
    ),
)
zone_timezones = st.sampled_from(_ZONES).map(zoneinfo.ZoneInfo)
timezones = st.one_of(fixed_timezones, zone_timezones)

# --- scalars -------------------------------------------------------------------------------

texts = st.one_of(
    st.text(max_size=12),
    st.text(st.characters(categories=["Cs"]), max_size=3),  # lone surrogates
    st.sampled_from(["$t", "kv", "v", "", "\x00", "\U0001f600"]),
)
ints = st.one_of(
    st.integers(),
    st.integers(-(2**70), 2**70),
    st.sampled_from([2**64, -(2**64) - 1, 2**63, -(2**63)]),
    # beyond the 4300-digit str conversion limit (built lazily: repr() of it would fail)
    st.builds(pow, st.sampled_from([10, -10]), st.sampled_from([4301, 5001])),
)
floats = st.one_of(st.floats(), st.sampled_from([0.0, -0.0, math.inf, -math.inf, math.nan]))
datetimes = st.one_of(
    st.datetimes(),
    st.datetimes(timezones=timezones),
    st.datetimes(timezones=zone_timezones).map(lambda d: d.replace(fold=1)),
)
times = st.one_of(st.times(), st.times(timezones=fixed_timezones)).flatmap(
    lambda t: st.sampled_from([t, t.replace(fold=1)])
)
decimals = st.one_of(
    st.decimals(allow_nan=True, allow_infinity=True),
    st.sampled_from(
        ["1.10", "-0", "0E-7", "NaN", "-NaN", "sNaN", "sNaN42", "-Infinity", "1E+30", "123.4500"]
    ).map(Decimal),
)
paths = st.one_of(
    st.builds(pathlib.PurePosixPath, st.text(max_size=8)),
    st.builds(pathlib.PureWindowsPath, st.text(max_size=8)),
    st.builds(pathlib.Path, st.text(max_size=8)),
)


def scalars() -> st.SearchStrategy[Any]:
    """Every supported non-container standard-library value, plus registered user enums."""
    return st.one_of(
        st.none(),
        st.booleans(),
        ints,
        floats,
        st.complex_numbers(),
        texts,
        st.binary(max_size=20),
        st.binary(min_size=600, max_size=700),  # large enough to travel as a buffer
        st.builds(bytearray, st.binary(max_size=20)),
        st.builds(bytearray, st.binary(min_size=600, max_size=700)),
        datetimes,
        st.dates(),
        times,
        st.timedeltas(),
        decimals,
        st.uuids(),
        paths,
        timezones,
        st.sampled_from(list(Color)),
        st.sampled_from([Flags.A, Flags.A | Flags.C, Flags(0)]),
        st.builds(range, st.integers(-5, 5), st.integers(-5, 5), st.sampled_from([1, 2, -1])),
    )


def hashables() -> st.SearchStrategy[Any]:
    """Hashable values usable as dict keys and set elements (no NaN: NaN != NaN)."""
    leaf = st.one_of(
        st.none(),
        st.booleans(),
        ints,
        st.floats(allow_nan=False),
        texts,
        st.binary(max_size=8),
        st.datetimes(timezones=st.one_of(st.none(), timezones)),
        st.dates(),
        st.uuids(),
        st.sampled_from(list(Color)),
        decimals.filter(lambda d: not d.is_nan()),
    )
    return st.recursive(
        leaf,
        lambda inner: st.one_of(
            st.lists(inner, max_size=3).map(tuple), st.frozensets(inner, max_size=3)
        ),
        max_leaves=6,
    )


# --- numpy -----------------------------------------------------------------------------------

_UNITS = ["Y", "M", "D", "h", "m", "s", "ms", "us", "ns"]

numeric_dtypes = st.one_of(
    hnp.boolean_dtypes(),
    hnp.integer_dtypes(endianness="="),
    hnp.unsigned_integer_dtypes(endianness="="),
    hnp.floating_dtypes(endianness="=", sizes=(16, 32, 64)),
    hnp.complex_number_dtypes(endianness="="),
    hnp.integer_dtypes(endianness=">"),
    hnp.floating_dtypes(endianness=">", sizes=(32, 64)),
    st.just(np.dtype(np.longdouble)),
)
array_dtypes = st.one_of(
    numeric_dtypes,
    hnp.datetime64_dtypes(endianness="="),
    hnp.timedelta64_dtypes(endianness="="),
    hnp.unicode_string_dtypes(endianness="=", min_len=1, max_len=4),
    hnp.byte_string_dtypes(min_len=1, max_len=4),
)


@st.composite
def arrays(draw: st.DrawFn) -> Any:
    """numpy arrays of any supported dtype and shape (0-d, empty), C/F order, strided views."""
    dtype = draw(array_dtypes)
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4))
    arr = draw(hnp.arrays(dtype, shape))
    layout = draw(st.sampled_from(["C", "F", "strided", "object"]))
    if layout == "F":
        arr = np.asfortranarray(arr)
    elif layout == "strided" and arr.ndim >= 1:
        arr = arr[::-1] if arr.ndim == 1 else arr[:, ::2]
    elif layout == "object":
        items = draw(st.lists(st.one_of(st.none(), ints, floats, texts), min_size=3, max_size=3))
        arr = np.empty(3, dtype=object)
        for i, item in enumerate(items):
            arr[i] = item
        if draw(st.booleans()):
            arr = np.empty((2, 1), dtype=object)
            arr[0, 0] = (1, "x")
            arr[1, 0] = [1.5, None]
    return arr


def numpy_scalars() -> st.SearchStrategy[Any]:
    """numpy scalars of every numeric kind, bool, datetime64/timedelta64 with unit, str_, bytes_."""
    return st.one_of(
        numeric_dtypes.filter(lambda d: d.isnative).flatmap(hnp.from_dtype),
        hnp.datetime64_dtypes().flatmap(lambda d: hnp.from_dtype(d, allow_nan=True)),
        hnp.timedelta64_dtypes().flatmap(lambda d: hnp.from_dtype(d, allow_nan=True)),
        st.sampled_from([np.datetime64("NaT"), np.datetime64("NaT", "ns"), np.longlong(7)]),
        st.text(max_size=5).map(lambda s: np.str_(s.replace("\x00", ""))),
        st.binary(max_size=5).map(lambda b: np.bytes_(b.rstrip(b"\x00"))),
    )


# --- pandas -------------------------------------------------------------------------------

_PD_UNITS = ["s", "ms", "us", "ns"]
_FREQS = ["s", "min", "15min", "h", "D", "B", "W-SUN", "ME"]
names = st.one_of(
    st.none(),
    st.sampled_from(["time", "", "$t", 0, 1.5, ("a", 1), True]),
    st.datetimes(timezones=st.one_of(st.none(), zone_timezones)),
)


def pandas_scalars() -> st.SearchStrategy[Any]:
    """Timestamp (tz, unit), Timedelta (unit), NaT, NA, Period."""
    return st.one_of(
        st.builds(
            lambda d, tz, unit: pd.Timestamp(d).as_unit(unit).tz_localize(tz),
            st.datetimes(min_value=dt.datetime(1700, 1, 1), max_value=dt.datetime(2200, 1, 1)),
            st.one_of(st.none(), st.sampled_from(["UTC", "Europe/London"]), fixed_timezones),
            st.sampled_from(_PD_UNITS),
        ),
        st.builds(
            lambda n, unit: pd.Timedelta(n, unit="s").as_unit(unit),
            st.integers(-(10**8), 10**8),
            st.sampled_from(_PD_UNITS),
        ),
        st.just(pd.NaT),
        st.just(pd.NA),
        st.builds(
            pd.Period,
            st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(2100, 1, 1)),
            freq=st.sampled_from(["D", "M", "Y", "Q", "h", "W"]),
        ),
    )


@st.composite
def indexes(draw: st.DrawFn, size: int | None = None) -> Any:
    """Indexes of every kind the codec keeps: Range, numeric/str/object/bool Index,
    DatetimeIndex (tz, unit, freq), TimedeltaIndex, PeriodIndex, MultiIndex, CategoricalIndex.
    """
    n = draw(st.integers(0, 5)) if size is None else size
    name = draw(names)
    kind = draw(
        st.sampled_from(
            [
                "range",
                "int",
                "float",
                "uint8",
                "bool",
                "str",
                "object",
                "datetime",
                "datetime_nofreq",
                "timedelta",
                "period",
                "multi",
                "categorical",
            ]
        )
    )
    if kind == "range":
        start = draw(st.integers(-10, 10))
        step = draw(st.sampled_from([1, 2, -3]))
        return pd.RangeIndex(start, start + n * step, step, name=name)
    if kind in ("int", "float", "uint8"):
        dtype = {"int": "int64", "float": "float64", "uint8": "uint8"}[kind]
        return pd.Index(draw(hnp.arrays(dtype, n)), name=name)
    if kind == "bool":
        return pd.Index(draw(hnp.arrays(bool, n)), dtype=bool, name=name)
    if kind == "str":
        items = draw(st.lists(st.one_of(st.text(max_size=4), st.none()), min_size=n, max_size=n))
        return pd.Index(items, dtype=draw(st.sampled_from(["str", "string"])), name=name)
    if kind == "object":
        items = draw(
            st.lists(
                st.one_of(st.text(max_size=3), st.integers(), st.tuples(st.integers())),
                min_size=n,
                max_size=n,
            )
        )
        arr = np.empty(n, dtype=object)
        for i, item in enumerate(items):
            arr[i] = item
        return pd.Index(arr, dtype=object, name=name)
    if kind == "datetime":
        start = draw(
            st.datetimes(min_value=dt.datetime(1990, 1, 1), max_value=dt.datetime(2100, 1, 1))
        ).replace(microsecond=0)
        return pd.date_range(
            start,
            periods=n,
            freq=draw(st.sampled_from(_FREQS)),
            tz=draw(
                st.one_of(st.none(), st.sampled_from(["UTC", "Europe/London"]), fixed_timezones)
            ),
            unit=draw(st.sampled_from(_PD_UNITS)),
            name=name,
        )
    if kind == "datetime_nofreq":
        ints8 = draw(hnp.arrays(np.int64, n, elements=st.integers(-(2**40), 2**40)))
        idx = pd.DatetimeIndex(ints8.view(f"M8[{draw(st.sampled_from(_PD_UNITS))}]"), name=name)
        tz = draw(st.one_of(st.none(), zone_timezones))
        return idx if tz is None else idx.tz_localize("UTC").tz_convert(tz)
    if kind == "timedelta":
        return pd.timedelta_range(
            start=pd.Timedelta(draw(st.integers(-1000, 1000)), unit="s"),
            periods=n,
            freq=draw(st.sampled_from(["s", "min", "h", "D", None])) or "s",
            name=name,
        )
    if kind == "period":
        return pd.period_range(
            start=pd.Period("2020-01-01", freq="D"),
            periods=n,
            freq=draw(st.sampled_from(["D", "M", "h", "Y"])),
            name=name,
        )
    if kind == "multi":
        left = draw(st.lists(st.integers(0, 3), min_size=n, max_size=n))
        right = draw(st.lists(st.sampled_from(["a", "b", "c"]), min_size=n, max_size=n))
        return pd.MultiIndex.from_arrays(
            [left, right], names=[name, draw(st.sampled_from([None, "lvl", 2]))]
        )
    cats = ["x", "y", "z"]
    items = draw(st.lists(st.sampled_from(cats), min_size=n, max_size=n))
    return pd.CategoricalIndex(items, categories=cats, ordered=draw(st.booleans()), name=name)


_COLUMN_KINDS = [
    "float64",
    "float32",
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
    "bool",
    "complex128",
    "datetime",
    "datetime_tz",
    "timedelta",
    "category",
    "Int64",
    "UInt8",
    "Float64",
    "boolean",
    "string",
    "str",
    "object",
    "period",
]


@st.composite
def columns(draw: st.DrawFn, n: int, kind: str | None = None) -> Any:
    """The values of one column of length ``n``: a numpy array or a pandas ExtensionArray."""
    kind = kind or draw(st.sampled_from(_COLUMN_KINDS))
    if kind in ("datetime", "datetime_tz", "timedelta"):
        unit = draw(st.sampled_from(_PD_UNITS))
        i8 = draw(hnp.arrays(np.int64, n, elements=st.integers(-(2**50), 2**50)))
        if draw(st.booleans()) and n:
            i8[0] = np.iinfo(np.int64).min  # NaT
        if kind == "timedelta":
            return i8.view(f"m8[{unit}]")
        m8 = i8.view(f"M8[{unit}]")
        if kind == "datetime":
            return m8
        tz = draw(st.one_of(st.sampled_from(["UTC", "Europe/London"]), fixed_timezones))
        return pd.array(m8).tz_localize("UTC").tz_convert(tz)
    if kind == "category":
        cats = draw(
            st.sampled_from([["a", "b", "c"], [3, 1, 2], pd.Index(["p", "q"], dtype=object)])
        )
        codes = draw(hnp.arrays(np.int8, n, elements=st.integers(-1, len(cats) - 1)))
        return pd.Categorical.from_codes(
            codes, dtype=pd.CategoricalDtype(cats, ordered=draw(st.booleans()))
        )
    if kind in ("Int64", "UInt8", "Float64", "boolean"):
        base = {"Int64": np.int64, "UInt8": np.uint8, "Float64": np.float64, "boolean": bool}[kind]
        data = draw(hnp.arrays(base, n))
        mask = draw(hnp.arrays(bool, n))
        cls = {
            "Int64": pd.arrays.IntegerArray,
            "UInt8": pd.arrays.IntegerArray,
            "Float64": pd.arrays.FloatingArray,
            "boolean": pd.arrays.BooleanArray,
        }[kind]
        return cls(data, mask)
    if kind in ("string", "str"):
        dtype = pd.api.types.pandas_dtype(kind)
        # Arrow storage (pandas 3's "str" with pyarrow) is strict UTF-8: no lone surrogates.
        item = texts if getattr(dtype, "storage", "python") == "python" else st.text(max_size=6)
        items = draw(st.lists(st.one_of(item, st.none()), min_size=n, max_size=n))
        return pd.array(items, dtype=kind)
    if kind == "object":
        items = draw(
            st.lists(
                st.one_of(
                    st.none(),
                    st.integers(),
                    st.floats(),
                    st.text(max_size=4),
                    st.datetimes(timezones=st.one_of(st.none(), zone_timezones)),
                    # pandas' own checks raise on signalling NaN Decimals in object columns
                    decimals.filter(lambda d: not d.is_snan()),
                    st.tuples(st.integers()),
                ),
                min_size=n,
                max_size=n,
            )
        )
        arr = np.empty(n, dtype=object)
        for i, item in enumerate(items):
            arr[i] = item
        return arr
    if kind == "period":
        return pd.period_range("2021-01", periods=n, freq="M").array
    return draw(hnp.arrays(np.dtype(kind), n))


@st.composite
def series(draw: st.DrawFn) -> Any:
    """Series of every supported dtype over every supported index kind, with names and attrs."""
    if draw(st.integers(0, 9)) == 0:  # also some from hypothesis' own pandas strategies
        return draw(
            hpd.series(
                dtype=draw(st.sampled_from([float, int, bool, "datetime64[ns]"])),
                index=hpd.range_indexes(max_size=5),
            )
        )
    idx = draw(indexes())
    s = pd.Series(draw(columns(len(idx))), index=idx, name=draw(names), copy=False)
    if isinstance(s.dtype, np.dtype) and s.dtype.kind == "O":
        s = s.astype(object)
    return _decorate(draw, s)


def _decorate(draw: st.DrawFn, obj: Any) -> Any:
    if draw(st.integers(0, 3)) == 0:
        obj.attrs["source"] = draw(st.one_of(st.text(max_size=5), st.dates(), st.integers()))
    axes_unique = obj.index.is_unique and (
        not isinstance(obj, pd.DataFrame) or obj.columns.is_unique
    )
    if axes_unique and draw(st.integers(0, 4)) == 0:
        obj = obj.set_flags(allows_duplicate_labels=False)
    return obj


@st.composite
def frames(draw: st.DrawFn) -> Any:
    """DataFrames: mixed or homogeneous dtypes, any index, duplicate/odd column labels, attrs."""
    if draw(st.integers(0, 9)) == 0:
        return draw(
            hpd.data_frames(
                columns=hpd.columns(["a", "b"], dtype=float), index=hpd.range_indexes(max_size=4)
            )
        )
    idx = draw(indexes())
    n = len(idx)
    k = draw(st.integers(0, 4))
    homogeneous = draw(st.sampled_from([None, "float64", "int32", "bool"]))
    cols = [draw(columns(n, homogeneous)) for _ in range(k)]
    labels = draw(
        st.one_of(
            st.lists(st.sampled_from(["a", "b", 1, ("x", 2), "$t"]), min_size=k, max_size=k),
            st.just(list(range(k))),
        )
    )
    df = pd.DataFrame({j: c for j, c in enumerate(cols)}, index=idx, copy=False)
    df.columns = pd.Index(labels, dtype=object) if labels else pd.RangeIndex(0)
    if k and draw(st.booleans()):
        df.columns = pd.RangeIndex(k)
    for j in range(k):
        if isinstance(cols[j], np.ndarray) and cols[j].dtype.kind == "O":
            df.isetitem(j, pd.Series(cols[j], index=idx, dtype=object, copy=False))
    return _decorate(draw, df)


# --- everything nested ------------------------------------------------------------------------


def values(max_leaves: int = 12, *, pandas: bool = True) -> st.SearchStrategy[Any]:
    """Nested values of every supported type (containers of scalars, numpy, pandas, user types)."""
    leaves = [scalars(), numpy_scalars(), arrays()]
    if pandas:
        leaves += [pandas_scalars(), series(), frames(), indexes()]
    leaf = st.one_of(*leaves)

    def extend(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
        return st.one_of(
            st.lists(inner, max_size=4),
            st.lists(inner, max_size=4).map(tuple),
            st.dictionaries(texts, inner, max_size=4),
            st.dictionaries(hashables(), inner, max_size=3),
            st.dictionaries(texts, inner, max_size=3).map(OrderedDict),
            st.sets(hashables(), max_size=3),
            st.frozensets(hashables(), max_size=3),
            st.builds(Point, inner, inner),
        )

    return st.recursive(leaf, extend, max_leaves=max_leaves)


# --- exact comparison ---------------------------------------------------------------------------


def _short(value: Any) -> str:
    try:
        text = repr(value)
    except ValueError:  # ints beyond the str conversion limit
        return f"<{type(value).__name__}>"
    return text if len(text) < 40 else text[:37] + "..."


def _same_float(a: float, b: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return a == b and math.copysign(1.0, a) == math.copysign(1.0, b)


def _same_tz(a: Any, b: Any, where: str) -> None:
    assert type(a) is type(b), f"{where}: tz type {type(a)} != {type(b)}"
    assert type(a) is type(b), f"{where}: tz class {type(a)} != {type(b)}"
    if isinstance(a, zoneinfo.ZoneInfo):
        assert a.key == b.key, f"{where}: zone {a.key} != {b.key}"
    elif isinstance(a, dt.timezone):
        # repr shows the offset and a name only if one was given explicitly
        assert repr(a) == repr(b), f"{where}: {a!r} != {b!r}"
    else:
        assert a == b, f"{where}: tz {a!r} != {b!r}"


def _same_index(a: Any, b: Any, where: str) -> None:
    pdt.assert_index_equal(
        a, b, exact=True, check_names=True, check_exact=True, check_categorical=True
    )
    assert type(a) is type(b), f"{where}: {type(a)} != {type(b)}"
    if not isinstance(a, pd.MultiIndex):
        assert type(a.array) is type(b.array), f"{where}: {type(a.array)} != {type(b.array)}"
    for attr in ("freq", "tz", "unit"):
        if hasattr(a, attr):
            assert getattr(a, attr) == getattr(b, attr), f"{where}: {attr} differs"
    if isinstance(a, pd.DatetimeIndex) and a.tz is not None:
        _same_tz(a.tz, b.tz, where)
    assert_same(list(a.names), list(b.names), f"{where}.names")
    if isinstance(a, pd.MultiIndex):
        for i, (la, lb) in enumerate(zip(a.levels, b.levels, strict=True)):
            _same_index(la, lb, f"{where}.levels[{i}]")
    elif a.dtype == object:
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same(x, y, f"{where}[{i}]")


def _dtype_facts(d: Any) -> Any:
    """Everything that tells two dtypes apart, nested fields and subarrays included."""
    if d.subdtype is not None:
        return ("sub", _dtype_facts(d.subdtype[0]), d.subdtype[1])
    if d.fields is None:
        return d.str
    fields = [(n, _dtype_facts(d.fields[n][0]), d.fields[n][1], d.fields[n][2:]) for n in d.names]
    return (fields, d.itemsize, d.isalignedstruct, d.type)


def _same_array(a: Any, b: Any, where: str) -> None:
    assert a.dtype == b.dtype, f"{where}: dtype {a.dtype} != {b.dtype}"
    assert a.dtype.str == b.dtype.str, f"{where}: dtype {a.dtype.str} != {b.dtype.str}"
    if a.dtype.fields is not None:  # structured: == ignores alignment flags and record types
        fa, fb = _dtype_facts(a.dtype), _dtype_facts(b.dtype)
        assert fa == fb, f"{where}: structured dtype {fa} != {fb}"
    assert a.shape == b.shape, f"{where}: shape {a.shape} != {b.shape}"
    assert b.flags.writeable, f"{where}: decoded array is read-only"
    if a.dtype.kind == "O":
        for i, (x, y) in enumerate(zip(a.reshape(-1), b.reshape(-1), strict=True)):
            assert_same(x, y, f"{where}.flat[{i}]")
    elif a.dtype.char in "gG":  # long double carries padding bytes of no meaning
        assert np.array_equal(a, b, equal_nan=True), f"{where}: values differ"
    else:
        assert a.tobytes() == b.tobytes(), f"{where}: values differ bit for bit"


def assert_same(a: Any, b: Any, where: str = "value") -> None:
    """Assert ``b`` is an exact copy of ``a``: same type at every level, bit-identical numbers."""
    assert type(a) is type(b), f"{where}: type {type(a)} != {type(b)}"
    if a is pd.NaT or a is pd.NA:
        assert a is b
    elif dataclasses.is_dataclass(a) and not isinstance(a, type):
        for f in dataclasses.fields(a):
            assert_same(getattr(a, f.name), getattr(b, f.name), f"{where}.{f.name}")
    elif isinstance(a, float):
        assert _same_float(a, b), f"{where}: {a!r} != {b!r}"
    elif isinstance(a, complex):
        assert _same_float(a.real, b.real), f"{where}: real part {a!r} != {b!r}"
        assert _same_float(a.imag, b.imag), f"{where}: imaginary part {a!r} != {b!r}"
    elif isinstance(a, Decimal):
        assert a.as_tuple() == b.as_tuple(), f"{where}: {a!r} != {b!r}"
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), f"{where}: length {len(a)} != {len(b)}"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same(x, y, f"{where}[{i}]")
    elif isinstance(a, dict):
        assert len(a) == len(b), f"{where}: length {len(a)} != {len(b)}"
        for i, ((ka, va), (kb, vb)) in enumerate(zip(a.items(), b.items(), strict=True)):
            assert_same(ka, kb, f"{where}<key {i}>")
            assert_same(va, vb, f"{where}[{_short(ka)}]")
    elif isinstance(a, set | frozenset):
        assert a == b, f"{where}: {a!r} != {b!r}"
        for x in a:
            y = next(y for y in b if y == x and type(y) is type(x))
            assert_same(x, y, f"{where}<element {_short(x)}>")
    elif isinstance(a, dt.datetime | dt.time):
        assert a.replace(tzinfo=None) == b.replace(tzinfo=None), f"{where}: {a!r} != {b!r}"
        assert a.fold == b.fold, f"{where}: fold {a.fold} != {b.fold}"
        if a.tzinfo is None:
            assert b.tzinfo is None, f"{where}: tz added"
        else:
            _same_tz(a.tzinfo, b.tzinfo, where)
        if isinstance(a, pd.Timestamp):
            assert a.unit == b.unit, f"{where}: unit {a.unit} != {b.unit}"
    elif isinstance(a, dt.tzinfo):
        _same_tz(a, b, where)
    elif isinstance(a, pd.Series):
        pdt.assert_series_equal(
            a,
            b,
            check_exact=True,
            check_index_type=True,
            check_series_type=True,
            check_names=True,
            check_freq=True,
            check_flags=True,
            check_categorical=True,
        )
        _same_index(a.index, b.index, f"{where}.index")
        assert type(a.array) is type(b.array), f"{where}: array {type(a.array)} != {type(b.array)}"
        assert_same(a.attrs, b.attrs, f"{where}.attrs")
        assert_same(a.name, b.name, f"{where}.name")
        if a.dtype == object:
            for i, (x, y) in enumerate(zip(a, b, strict=True)):
                assert_same(x, y, f"{where}.iloc[{i}]")
    elif isinstance(a, pd.DataFrame):
        pdt.assert_frame_equal(
            a,
            b,
            check_exact=True,
            check_index_type=True,
            check_column_type=True,
            check_frame_type=True,
            check_names=True,
            check_freq=True,
            check_flags=True,
            check_categorical=True,
        )
        _same_index(a.index, b.index, f"{where}.index")
        _same_index(a.columns, b.columns, f"{where}.columns")
        assert_same(a.attrs, b.attrs, f"{where}.attrs")
        for j in range(a.shape[1]):
            assert_same(a.iloc[:, j], b.iloc[:, j], f"{where}.iloc[:, {j}]")
    elif isinstance(a, pd.Index):
        _same_index(a, b, where)
    elif isinstance(a, np.ndarray):
        _same_array(a, b, where)
    elif isinstance(a, np.generic):
        assert a.dtype.str == b.dtype.str, f"{where}: dtype {a.dtype.str} != {b.dtype.str}"
        _same_array(np.array(a), np.array(b), where)
    elif isinstance(a, pd.Timedelta):
        assert a == b, f"{where}: {a!r} != {b!r}"
        assert a.unit == b.unit, f"{where}: unit {a.unit} != {b.unit}"
    elif isinstance(a, pd.api.extensions.ExtensionArray):
        pdt.assert_extension_array_equal(a, b, check_exact=True)
    elif isinstance(a, pd.Interval):
        assert a.closed == b.closed, f"{where}: closed {a.closed} != {b.closed}"
        assert_same(a.left, b.left, f"{where}.left")
        assert_same(a.right, b.right, f"{where}.right")
    elif isinstance(a, enum.Enum):
        assert a is b, f"{where}: {a!r} is not {b!r}"
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def round_trips(codec: Any, value: Any) -> list[Any]:
    """``value`` through every codec path: decode(encode), decode of the doc after a JSON round
    trip, loads of dumps as bytes (read-only: arrays copied) and as a bytearray (zero copy)."""
    import json

    from statevault.codec import Encoded

    encoded = codec.encode(value)
    # ensure_ascii=False: an escaped surrogate pair would be merged into one character by
    # json.loads; the codec's own dumps writes the document this way too.
    text = json.dumps(encoded.doc, allow_nan=True, ensure_ascii=False)
    payload = b"".join(codec.dumps(value))
    return [
        codec.decode(encoded),
        codec.decode(Encoded(json.loads(text), list(encoded.buffers))),
        codec.loads(payload),
        codec.loads(bytearray(payload)),
        codec.loads(memoryview(b"xx" + payload + b"yy")[2:-2]),
    ]
