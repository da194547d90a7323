"""Hypothesis strategies for the pandas types of issue 9: strings of every storage and NA
semantics this stack has, Arrow-typed arrays (when pyarrow is installed), intervals, sparse
arrays and date offsets.

``STRING_KINDS`` lists the (storage, na) pairs this stack can build, so the same strategies
run on pandas 2.2 without pyarrow (python/NA only) and on pandas 3 with pyarrow (all four).
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import inspect
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import hypothesis.extra.numpy as hnp
import hypothesis.extra.pandas as hpd
import numpy as np
import pandas as pd
from hypothesis import strategies as st

from strategies import names, texts

HAS_PYARROW = importlib.util.find_spec("pyarrow") is not None
HAS_NA_VALUE = "na_value" in inspect.signature(pd.StringDtype).parameters


def string_dtype(storage: str, na: str) -> Any:
    """This pandas's spelling of a string dtype (same rule as the codec, written separately)."""
    if HAS_NA_VALUE:
        return pd.StringDtype(storage, na_value=np.nan if na == "nan" else pd.NA)
    if na == "NA":
        return pd.StringDtype(storage)
    assert storage == "pyarrow"
    return pd.StringDtype("pyarrow_numpy")


STRING_KINDS: list[tuple[str, str]] = [("python", "NA")]
if HAS_NA_VALUE:
    STRING_KINDS.append(("python", "nan"))
if HAS_PYARROW:
    STRING_KINDS += [("pyarrow", "NA"), ("pyarrow", "nan")]

string_dtypes = st.sampled_from(STRING_KINDS).map(lambda k: string_dtype(*k))

# Arrow strings are strict UTF-8: no lone surrogates (python storage keeps them).
strict_texts = st.text(st.characters(exclude_categories=("Cs",)), max_size=6)


def _no_surrogates(dtype: Any) -> bool:
    return dtype.storage != "python"


@st.composite
def string_arrays(draw: st.DrawFn, n: int | None = None, dtype: Any = None) -> Any:
    """A pandas string array of any storage / NA semantics of this stack, with missing items."""
    dtype = draw(string_dtypes) if dtype is None else dtype
    size = draw(st.integers(0, 8)) if n is None else n
    item = strict_texts if _no_surrogates(dtype) else texts
    items = draw(st.lists(st.one_of(item, st.none()), min_size=size, max_size=size))
    return pd.array(items, dtype=dtype)


@st.composite
def object_string_arrays(draw: st.DrawFn, n: int | None = None) -> Any:
    """Object arrays of str, with None or NaN missing, or a mix (element-wise fallback)."""
    size = draw(st.integers(1, 8)) if n is None else n
    missing = draw(st.sampled_from([None, np.nan, "mixed"]))
    pool = [st.none(), st.just(np.nan), st.integers()] if missing == "mixed" else [st.just(missing)]
    items = draw(st.lists(st.one_of(texts, *pool), min_size=size, max_size=size))
    arr = np.empty(size, dtype=object)
    for i, x in enumerate(items):
        arr[i] = x
    return arr


@st.composite
def string_indexes(draw: st.DrawFn, n: int | None = None) -> Any:
    """A string Index (any kind), a MultiIndex with string levels, or a categorical of strings."""
    size = draw(st.integers(0, 6)) if n is None else n
    kind = draw(st.sampled_from(["strings", "object", "multi", "categorical"]))
    name = draw(names)
    if kind == "strings":
        return pd.Index(draw(string_arrays(size)), name=name)
    if kind == "object":
        if size == 0:
            return pd.Index([], dtype=object, name=name)
        return pd.Index(draw(object_string_arrays(size)), dtype=object, name=name)
    if kind == "multi":
        dtype = draw(string_dtypes)
        left = draw(
            st.lists(st.sampled_from(["EURUSD", "GBPUSD", "é"]), min_size=size, max_size=size)
        )
        right = draw(st.lists(st.integers(0, 2), min_size=size, max_size=size))
        return pd.MultiIndex.from_arrays(
            [pd.array(left, dtype=dtype), right], names=[name, draw(st.sampled_from([None, "k"]))]
        )
    dtype = draw(string_dtypes)
    cats = pd.Index(pd.array(["lo", "mid", "hi"], dtype=dtype))
    codes = draw(hnp.arrays(np.int8, size, elements=st.integers(-1, 2)))
    cat = pd.Categorical.from_codes(codes, dtype=pd.CategoricalDtype(cats, draw(st.booleans())))
    return pd.CategoricalIndex(cat, name=name)


@st.composite
def string_frames(draw: st.DrawFn) -> Any:
    """DataFrames with string labels, string index and string / categorical / numeric columns."""
    index = draw(string_indexes())
    n = len(index)
    k = draw(st.integers(0, 4))
    labels = pd.Index(
        pd.array([f"c{j}" for j in range(k)], dtype=draw(string_dtypes)) if k else [],
        dtype=None if k else object,
    )
    data: dict[int, Any] = {}
    for j in range(k):
        kind = draw(st.sampled_from(["strings", "object", "float", "categorical"]))
        if kind == "strings":
            data[j] = draw(string_arrays(n))
        elif kind == "object":
            data[j] = pd.Series(
                draw(object_string_arrays(n)) if n else [], index=index, dtype=object
            )
        elif kind == "float":
            data[j] = draw(hnp.arrays(np.float64, n))
        else:
            cats = pd.Index(pd.array(["a", "b"], dtype=draw(string_dtypes)))
            codes = draw(hnp.arrays(np.int8, n, elements=st.integers(-1, 1)))
            data[j] = pd.Categorical.from_codes(codes, dtype=pd.CategoricalDtype(cats))
    df = pd.DataFrame(data, index=index)
    if k:
        df.columns = labels
    return df


# --- Arrow ---------------------------------------------------------------------------------


def arrow_types() -> st.SearchStrategy[Any]:
    """pyarrow types with a matching value strategy: (type, element strategy)."""
    import pyarrow as pa

    def ints(bits: int, signed: bool) -> Any:
        lo, hi = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)
        return st.integers(lo, hi)

    simple = [
        (pa.int8(), ints(8, True)),
        (pa.int16(), ints(16, True)),
        (pa.int32(), ints(32, True)),
        (pa.int64(), ints(64, True)),
        (pa.uint8(), ints(8, False)),
        (pa.uint64(), ints(64, False)),
        (pa.float32(), st.floats(width=32)),
        (pa.float64(), st.floats()),
        (pa.bool_(), st.booleans()),
        (pa.string(), strict_texts),
        (pa.large_string(), strict_texts),
        (pa.binary(), st.binary(max_size=6)),
        (pa.large_binary(), st.binary(max_size=6)),
        (pa.date32(), st.dates()),
        (pa.decimal128(12, 3), st.decimals(min_value=-(10**8), max_value=10**8, places=3)),
        (
            pa.timestamp("us", tz="Europe/London"),
            st.datetimes(
                min_value=dt.datetime(1900, 1, 1),
                max_value=dt.datetime(2200, 1, 1),
                timezones=st.just(dt.UTC),
            ),
        ),
        (pa.timestamp("ns"), st.datetimes(dt.datetime(1970, 1, 1), dt.datetime(2200, 1, 1))),
        (pa.duration("ms"), st.timedeltas(dt.timedelta(days=-999), dt.timedelta(days=999))),
        (pa.time64("us"), st.times()),
    ]
    nested = [
        (pa.list_(pa.int64()), st.lists(ints(64, True), max_size=3)),
        (pa.large_list(pa.string()), st.lists(strict_texts, max_size=3)),
        (
            pa.struct([("bid", pa.float64()), ("sym", pa.string())]),
            st.fixed_dictionaries({"bid": st.floats(), "sym": strict_texts}),
        ),
        (pa.dictionary(pa.int32(), pa.string()), st.sampled_from(["EURUSD", "GBPUSD", "ü"])),
        (
            pa.map_(pa.string(), pa.int32()),
            st.lists(st.tuples(strict_texts, ints(32, True)), max_size=2),
        ),
    ]
    return st.sampled_from(simple + nested)


@st.composite
def arrow_arrays(draw: st.DrawFn, n: int | None = None) -> Any:
    """A pandas ArrowExtensionArray (ArrowDtype) of any of ``arrow_types``, 1-3 chunks, nulls."""
    import pyarrow as pa

    typ, elements = draw(arrow_types())
    size = draw(st.integers(0, 8)) if n is None else n
    items = draw(st.lists(st.one_of(st.none(), elements), min_size=size, max_size=size))
    cut = draw(st.integers(0, size))
    chunks = [items[:cut], items[cut:]] if draw(st.booleans()) else [items]
    if isinstance(typ, pa.DictionaryType):
        arrays = [pa.array(c, type=pa.string()).dictionary_encode() for c in chunks]
        arrays = [a.cast(typ) for a in arrays]
    else:
        arrays = [pa.array(c, type=typ) for c in chunks]
    return pd.arrays.ArrowExtensionArray(pa.chunked_array(arrays, type=typ))


# --- intervals, sparse, offsets ------------------------------------------------------------

closed_sides = st.sampled_from(["right", "left", "both", "neither"])


@st.composite
def intervals(draw: st.DrawFn) -> Any:
    """pd.Interval over ints, floats, Timestamps (tz) or Timedeltas."""
    kind = draw(st.sampled_from(["int", "float", "ts", "td"]))
    closed = draw(closed_sides)
    if kind == "int":
        a, b = sorted(draw(st.lists(st.integers(-(10**6), 10**6), min_size=2, max_size=2)))
    elif kind == "float":
        fl = st.floats(-1e9, 1e9, allow_nan=False)
        a, b = sorted(draw(st.lists(fl, min_size=2, max_size=2)))
    elif kind == "ts":
        tz = draw(st.sampled_from([None, dt.UTC, ZoneInfo("Europe/London")]))
        base = pd.Timestamp("2024-01-01", tz=tz)
        a = base + pd.Timedelta(minutes=draw(st.integers(0, 1000)))
        b = a + pd.Timedelta(minutes=draw(st.integers(0, 1000)))
    else:
        a = pd.Timedelta(seconds=draw(st.integers(-1000, 1000)))
        b = a + pd.Timedelta(seconds=draw(st.integers(0, 1000)))
    return pd.Interval(a, b, closed=closed)


@st.composite
def interval_arrays(draw: st.DrawFn, n: int | None = None) -> Any:
    """IntervalArrays from breaks (numeric, datetime with tz) with missing intervals."""
    size = draw(st.integers(0, 6)) if n is None else n
    closed = draw(closed_sides)
    kind = draw(st.sampled_from(["int", "float", "ts"]))
    if kind == "ts":
        tz = draw(st.sampled_from([None, dt.UTC, ZoneInfo("Asia/Tokyo")]))
        breaks: Any = pd.date_range("2024-01-01", periods=size + 1, freq="h", tz=tz)
    else:
        steps = draw(st.lists(st.integers(1, 100), min_size=size, max_size=size))
        breaks = np.cumsum([0, *steps]).astype("int64" if kind == "int" else "float64")
    arr = pd.arrays.IntervalArray.from_breaks(breaks, closed=closed)
    if size and kind != "int" and draw(st.booleans()):
        arr[draw(st.integers(0, size - 1))] = np.nan
    return arr


@st.composite
def sparse_arrays(draw: st.DrawFn, n: int | None = None) -> Any:
    """SparseArrays of float/int/bool with a drawn fill value and index kind."""
    size = draw(st.integers(0, 10)) if n is None else n
    kind = draw(st.sampled_from(["float", "int", "bool"]))
    sp_kind = draw(st.sampled_from(["integer", "block"]))
    if kind == "float":
        data = draw(
            hnp.arrays(np.float64, size, elements=st.sampled_from([0.0, 1.5, np.nan, -2.0]))
        )
        fill = draw(st.sampled_from([np.nan, 0.0]))
    elif kind == "int":
        data = draw(hnp.arrays(np.int64, size, elements=st.integers(-2, 2)))
        fill = draw(st.sampled_from([0, -1]))
    else:
        data = draw(hnp.arrays(bool, size))
        fill = False
    return pd.arrays.SparseArray(data, fill_value=fill, kind=sp_kind)


def _holidays() -> st.SearchStrategy[list[Any]]:
    return st.lists(
        st.dates(dt.date(2020, 1, 1), dt.date(2030, 1, 1)).map(np.datetime64), max_size=3
    )


def offsets() -> st.SearchStrategy[Any]:
    """Date offsets of the pd.offsets family with drawn n, normalize and parameters."""
    n = st.integers(-5, 5).filter(bool)
    norm = st.booleans()
    o = pd.offsets
    weekmask = st.sampled_from(["Mon Tue Wed Thu Fri", "Sun Mon Tue Wed Thu", "1111100"])
    builders = [
        st.builds(o.BusinessDay, n, normalize=norm),
        st.builds(o.MonthEnd, n, normalize=norm),
        st.builds(o.MonthBegin, n, normalize=norm),
        st.builds(o.BusinessMonthEnd, n, normalize=norm),
        st.builds(o.Week, n, normalize=norm, weekday=st.one_of(st.none(), st.integers(0, 6))),
        st.builds(o.WeekOfMonth, n, week=st.integers(0, 3), weekday=st.integers(0, 6)),
        st.builds(o.LastWeekOfMonth, n, weekday=st.integers(0, 6)),
        st.builds(o.QuarterEnd, n, startingMonth=st.integers(1, 12)),
        st.builds(o.BQuarterBegin, n, startingMonth=st.integers(1, 12)),
        st.builds(o.YearEnd, n, month=st.integers(1, 12)),
        st.builds(o.BYearBegin, n, month=st.integers(1, 12)),
        st.builds(o.SemiMonthEnd, n, day_of_month=st.integers(2, 27)),
        st.builds(
            o.FY5253,
            n,
            weekday=st.integers(0, 6),
            startingMonth=st.integers(1, 12),
            variation=st.sampled_from(["nearest", "last"]),
        ),
        st.builds(o.Easter, n),
        st.builds(o.Hour, n),
        st.builds(o.Minute, n),
        st.builds(o.Nano, n),
        st.builds(o.Day, n),
        st.builds(o.CustomBusinessDay, n, normalize=norm, weekmask=weekmask, holidays=_holidays()),
        st.builds(o.CustomBusinessMonthEnd, n, weekmask=weekmask, holidays=_holidays()),
        st.builds(
            o.BusinessHour,
            n,
            start=st.sampled_from(["09:00", "08:30"]),
            end=st.sampled_from(["17:00", "16:45"]),
        ),
        st.builds(
            lambda kw, n: o.DateOffset(n, **kw),
            st.dictionaries(
                st.sampled_from(["months", "days", "hours", "years", "minutes", "weeks"]),
                st.integers(-3, 3),
                min_size=1,
                max_size=3,
            ),
            n,
        ),
        st.builds(
            lambda kw: o.DateOffset(**kw),
            st.dictionaries(
                st.sampled_from(["month", "day", "hour", "weekday"]),
                st.integers(1, 6),
                min_size=1,
                max_size=2,
            ),
        ),
    ]
    return st.one_of(*builders)


def hpd_string_frames() -> st.SearchStrategy[Any]:
    """hypothesis.extra.pandas frames with string column labels and a str column."""
    return hpd.data_frames(
        columns=[
            hpd.column("sym", elements=strict_texts, dtype=object),
            hpd.column("px", dtype=float),
        ],
        index=hpd.range_indexes(max_size=5),
    )


__all__ = [
    "HAS_NA_VALUE",
    "HAS_PYARROW",
    "STRING_KINDS",
    "Decimal",
    "arrow_arrays",
    "arrow_types",
    "hpd_string_frames",
    "interval_arrays",
    "intervals",
    "object_string_arrays",
    "offsets",
    "sparse_arrays",
    "string_arrays",
    "string_dtype",
    "string_frames",
    "string_indexes",
]
