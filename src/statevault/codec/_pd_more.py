"""pandas intervals, sparse arrays and date offsets.

- ``pd.Interval``: its ends (any supported scalar) and ``closed``.
- ``IntervalArray`` (``pd.cut`` categories, interval columns) and ``IntervalIndex``: the left
  and right end arrays (buffers, through the numpy/pandas handlers) and ``closed``.
- ``SparseArray``: the stored values, their integer positions, the length, the fill value and
  the index kind (``integer``/``block``).
- Date offsets (the ``pd.offsets`` family, e.g. ``BusinessDay(2)``, ``Week(weekday=1)``,
  ``CustomBusinessDay(holidays=...)``, ``DateOffset(months=1, hours=3)``): the class name from
  a fixed table below, ``n``, ``normalize`` and the class's public parameters. Loading looks
  the class up in that table only (never imports a stored name) and passes only the
  parameters the table allows for it.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy
import pandas

from statevault.codec._core import TAG, DecodeFn, Decoder, EncodeFn, Encoder
from statevault.codec._fields import field, int_field, str_field
from statevault.errors import DecodeError

pd: Any = pandas
np: Any = numpy

_CLOSED = ("right", "left", "both", "neither")


def _closed(d: dict[str, Any]) -> str:
    closed = str_field(d, "closed")
    if closed not in _CLOSED:
        raise DecodeError(f"an interval's 'closed' must be one of {_CLOSED}")
    return closed


def _array_of(idx: Any) -> Any:
    """The data of an Index: a numpy array for numpy dtypes, else the ExtensionArray."""
    return idx.to_numpy() if isinstance(idx.dtype, np.dtype) else idx.array


# --- intervals -----------------------------------------------------------------------------


def enc_interval(e: Encoder, iv: Any, depth: int) -> Any:
    return {
        TAG: "pd.Interval",
        "left": e.child(iv.left, depth, ".left"),
        "right": e.child(iv.right, depth, ".right"),
        "closed": iv.closed,
    }


def dec_interval(_: Decoder, d: dict[str, Any]) -> Any:
    return pd.Interval(field(d, "left"), field(d, "right"), closed=_closed(d))


def enc_interval_array(e: Encoder, arr: Any, depth: int) -> Any:
    return {
        TAG: "pd.IntervalArray",
        "left": e.child(_array_of(arr.left), depth, ".left"),
        "right": e.child(_array_of(arr.right), depth, ".right"),
        "closed": arr.closed,
    }


def dec_interval_array(_: Decoder, d: dict[str, Any]) -> Any:
    left, right = field(d, "left"), field(d, "right")
    for side in (left, right):
        if not (
            (type(side) is np.ndarray and side.ndim == 1)
            or isinstance(side, pd.api.extensions.ExtensionArray)
        ):
            raise DecodeError("interval ends must be 1-D arrays")
    closed = _closed(d)
    dtype = pd.IntervalDtype(left.dtype, closed=closed)
    return pd.arrays.IntervalArray.from_arrays(left, right, closed=closed, dtype=dtype, copy=False)


def enc_interval_index(e: Encoder, idx: Any, depth: int) -> Any:
    out = {TAG: "pd.IntervalIndex", "v": e.child(idx.array, depth, "")}
    if idx.name is not None:
        out["name"] = e.child(idx.name, depth, ".name")
    return out


def dec_interval_index(_: Decoder, d: dict[str, Any]) -> Any:
    arr = field(d, "v")
    if type(arr) is not pd.arrays.IntervalArray:
        raise DecodeError("an IntervalIndex must hold an IntervalArray")
    return pd.IntervalIndex(arr, name=d.get("name"), copy=False)


# --- sparse --------------------------------------------------------------------------------


def enc_sparse(e: Encoder, arr: Any, depth: int) -> Any:
    sp_index = arr.sp_index
    kind = arr.kind  # "integer" or "block"
    return {
        TAG: "pd.SparseArray",
        "sp": e.child(arr.sp_values, depth, ".sp_values"),
        "at": e.child(sp_index.to_int_index().indices, depth, ".sp_index"),
        "n": len(arr),
        "kind": kind,
        "fill": e.child(arr.fill_value, depth, ".fill_value"),
    }


def dec_sparse(_: Decoder, d: dict[str, Any]) -> Any:
    sp = field(d, "sp")
    at = field(d, "at")
    n = int_field(d, "n")
    kind = str_field(d, "kind")
    if type(sp) is not np.ndarray or sp.ndim != 1:
        raise DecodeError("sparse values must be a 1-D numpy array")
    if type(at) is not np.ndarray or at.dtype.kind not in "iu" or at.shape != sp.shape:
        raise DecodeError("sparse positions must be an int array as long as the values")
    if kind not in ("integer", "block"):
        raise DecodeError("a sparse index kind must be 'integer' or 'block'")
    if n < 0 or (len(at) and (at.min() < 0 or at.max() >= n or np.any(np.diff(at) <= 0))):
        raise DecodeError("sparse positions must be increasing and inside the length")
    fill = field(d, "fill")
    dtype = pd.SparseDtype(sp.dtype, fill)
    from_indices = getattr(pd.arrays.SparseArray, "from_indices", None)
    if from_indices is not None:  # pandas >= 3.1 (sparse_index= is deprecated there)
        return from_indices(sp, at, n, fill_value=fill, kind=kind, dtype=sp.dtype)
    from pandas._libs import sparse as libsparse  # pandas < 3.1: no public constructor

    int_index: Any = libsparse.IntIndex
    index: Any = int_index(n, at.astype(np.int32))
    if kind == "block":
        index = index.to_block_index()
    return pd.arrays.SparseArray(sp, sparse_index=index, fill_value=fill, dtype=dtype)


# --- date offsets ----------------------------------------------------------------------------

_DATEOFFSET_KEYS = (
    "years",
    "months",
    "weeks",
    "days",
    "hours",
    "minutes",
    "seconds",
    "milliseconds",
    "microseconds",
    "nanoseconds",
    "year",
    "month",
    "day",
    "weekday",
    "hour",
    "minute",
    "second",
    "microsecond",
    "nanosecond",
)
_CUSTOM = ("weekmask", "holidays", "offset")
_BUSINESS_HOURS = ("start", "end", "offset")

# Every offset class this package stores, with the public parameters it passes to the
# constructor (beside n and normalize). Names not on this pandas are skipped.
OFFSET_PARAMS: dict[str, tuple[str, ...]] = {
    "DateOffset": _DATEOFFSET_KEYS,
    "Day": (),
    "Hour": (),
    "Minute": (),
    "Second": (),
    "Milli": (),
    "Micro": (),
    "Nano": (),
    "BusinessDay": ("offset",),
    "BusinessHour": _BUSINESS_HOURS,
    "CustomBusinessDay": _CUSTOM,
    "CustomBusinessHour": ("weekmask", "holidays", "start", "end", "offset"),
    "MonthEnd": (),
    "MonthBegin": (),
    "BusinessMonthEnd": (),
    "BusinessMonthBegin": (),
    "CustomBusinessMonthEnd": _CUSTOM,
    "CustomBusinessMonthBegin": _CUSTOM,
    "SemiMonthEnd": ("day_of_month",),
    "SemiMonthBegin": ("day_of_month",),
    "Week": ("weekday",),
    "WeekOfMonth": ("week", "weekday"),
    "LastWeekOfMonth": ("weekday",),
    "QuarterEnd": ("startingMonth",),
    "QuarterBegin": ("startingMonth",),
    "BQuarterEnd": ("startingMonth",),
    "BQuarterBegin": ("startingMonth",),
    "HalfYearEnd": ("startingMonth",),
    "HalfYearBegin": ("startingMonth",),
    "BHalfYearEnd": ("startingMonth",),
    "BHalfYearBegin": ("startingMonth",),
    "YearEnd": ("month",),
    "YearBegin": ("month",),
    "BYearEnd": ("month",),
    "BYearBegin": ("month",),
    "FY5253": ("weekday", "startingMonth", "variation"),
    "FY5253Quarter": ("weekday", "startingMonth", "qtr_with_extra_week", "variation"),
    "Easter": ("method",),  # method: pandas >= 3.1
}
# Parameters newer pandas added, left out when they hold the value older pandas always used,
# so the offset loads there too.
_DROP_DEFAULTS: dict[str, dict[str, Any]] = {"Easter": {"method": 3}}
_TICKS = frozenset({"Hour", "Minute", "Second", "Milli", "Micro", "Nano"})

OFFSET_CLASSES: dict[str, type[Any]] = {}
for _name in OFFSET_PARAMS:
    _cls = getattr(pd.offsets, _name, None)
    if isinstance(_cls, type) and _cls.__name__ == _name:
        OFFSET_CLASSES[_name] = _cls


def _calendar_matches(off: Any) -> bool:
    """True if a custom offset's calendar is the one its weekmask and holidays make."""
    calendar = getattr(off, "calendar", None)
    if calendar is None:
        return True
    holidays = np.array(list(off.holidays), dtype="M8[D]")
    made = np.busdaycalendar(weekmask=off.weekmask, holidays=holidays)
    return bool(
        np.array_equal(made.weekmask, calendar.weekmask)
        and np.array_equal(made.holidays, calendar.holidays)
    )


def enc_offset(e: Encoder, off: Any, depth: int) -> Any:
    name = type(off).__name__
    params = OFFSET_PARAMS[name]
    kwds = dict(off.kwds)
    kwds.pop("calendar", None)
    extra = set(kwds) - set(params)
    if extra:
        raise e.unsupported(
            off, f"its parameters {sorted(extra)} are not among those statevault stores"
        )
    if not _calendar_matches(off):
        raise e.unsupported(
            off,
            "its calendar differs from its weekmask and holidays: give the offset "
            "weekmask= and holidays= instead of a calendar object",
        )
    out: dict[str, Any] = {TAG: "pd.DateOffset", "cls": name, "n": off.n}
    if off.normalize:
        out["normalize"] = True
    drop = _DROP_DEFAULTS.get(name, {})
    kw = {k: v for k, v in kwds.items() if k in params and not (k in drop and drop[k] == v)}
    if name in ("CustomBusinessDay", "CustomBusinessHour") or name.startswith("CustomBusiness"):
        kw["holidays"] = list(off.holidays)
    if kw:
        out["kw"] = e.child(kw, depth, ".kwds")
    return out


def dec_offset(_: Decoder, d: dict[str, Any]) -> Any:
    name = str_field(d, "cls")
    cls = OFFSET_CLASSES.get(name)
    if cls is None:
        if name in OFFSET_PARAMS:
            raise DecodeError(
                f"the state holds a pandas {name} offset, which pandas {pd.__version__} does "
                f"not have: upgrade pandas"
            )
        raise DecodeError(f"unknown date offset class {name[:40]!r}")
    n = int_field(d, "n")
    normalize = d.get("normalize", False)
    if type(normalize) is not bool:
        raise DecodeError("an offset's 'normalize' must be a bool")
    kw = d.get("kw", {})
    if type(kw) is not dict or not set(kw) <= set(OFFSET_PARAMS[name]):
        raise DecodeError(f"a {name} offset holds parameters it does not take")
    if name in _TICKS or (name == "Day" and not normalize):
        return cls(n, **kw)
    return cls(n, normalize=normalize, **kw)


def _offset_encoders() -> dict[type[Any], EncodeFn]:
    return {cls: enc_offset for cls in OFFSET_CLASSES.values()}


ENCODERS: dict[type[Any], EncodeFn] = {
    pd.Interval: enc_interval,
    pd.arrays.IntervalArray: enc_interval_array,
    pd.arrays.SparseArray: enc_sparse,
    **_offset_encoders(),
}
_ = dt  # datetime.time values (BusinessHour start/end) go through the built-in handlers

DECODERS: dict[str, DecodeFn] = {
    "pd.Interval": dec_interval,
    "pd.IntervalArray": dec_interval_array,
    "pd.SparseArray": dec_sparse,
    "pd.DateOffset": dec_offset,
}
