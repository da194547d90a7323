"""pandas handlers (loaded lazily): Series, DataFrame, every common Index and dtype, scalars.

Numeric data travels as numpy buffers (through the numpy handlers), never as lists. Time zones,
datetime units, index frequencies, names of any supported type, ``attrs`` and
``allows_duplicate_labels`` are kept. The family's
handlers live in modules by concept: scalars and arrays here, indexes in ``_pd_index``, Series
and DataFrame in ``_pd_frame``, strings in ``_pd_strings``, Arrow dtypes in ``_pd_arrow``,
intervals, sparse arrays and offsets in ``_pd_more``, shared helpers in ``_pd_common``.
"""

from __future__ import annotations

from typing import Any

import pandas

from statevault.codec import _numpy, _pd_arrow, _pd_frame, _pd_index, _pd_more, _pd_strings
from statevault.codec._core import TAG, DecodeFn, Decoder, EncodeFn, Encoder
from statevault.codec._fields import decode_tzinfo, field, int_field, str_field
from statevault.codec._pd_common import (
    _UNITS,
    _m8,
    _make_datetime_array,
    _ndarray,
)
from statevault.errors import DecodeError

pd: Any = pandas  # untyped alias: pandas-stubs do not describe the constructors used here
np: Any = _numpy.np

# The string, Arrow, interval/sparse/offset, index and Series/DataFrame handlers live in
# modules of their own; their tables join this family's below (one row in _families.py).
HANDLER_MODULES = (_pd_strings, _pd_arrow, _pd_more, _pd_index, _pd_frame)


# --- scalars -------------------------------------------------------------------------------


def enc_timestamp(e: Encoder, ts: Any, depth: int) -> Any:
    seen = e.docs.get(id(ts))
    if seen is not None and seen[0] is ts:  # immutable: the doc of its first use
        return seen[1]
    out: dict[str, Any] = {
        TAG: "pd.Timestamp",
        "v": int(ts.to_datetime64().view(np.int64)),  # UTC-based for aware timestamps
        "unit": ts.unit,
    }
    if ts.tz is not None:
        out["tz"] = e.child(ts.tz, depth, ".tz")
    elif ts.fold:
        out["fold"] = 1
    e.docs[id(ts)] = (ts, out)
    return out


def _unit(d: dict[str, Any]) -> str:
    unit = str_field(d, "unit")
    if unit not in _UNITS:
        raise DecodeError(f"unsupported time unit {unit!r}")
    return unit


def dec_timestamp(_: Decoder, d: dict[str, Any]) -> Any:
    ts = pd.Timestamp(np.datetime64(int_field(d, "v"), _unit(d)))
    tz = decode_tzinfo(d.get("tz"))
    if tz is not None:
        return ts.tz_localize("UTC").tz_convert(tz)
    if d.get("fold") == 1:
        return ts.replace(fold=1)
    return ts


def enc_timedelta(e: Encoder, td: Any, depth: int) -> Any:
    return {
        TAG: "pd.Timedelta",
        "v": int(td.to_timedelta64().view(np.int64)),
        "unit": td.unit,
    }


def dec_timedelta(_: Decoder, d: dict[str, Any]) -> Any:
    return pd.Timedelta(np.timedelta64(int_field(d, "v"), _unit(d)))


def enc_nat(e: Encoder, obj: Any, depth: int) -> Any:
    return {TAG: "pd.NaT"}


def enc_na(e: Encoder, obj: Any, depth: int) -> Any:
    return {TAG: "pd.NA"}


def enc_period(e: Encoder, p: Any, depth: int) -> Any:
    return {TAG: "pd.Period", "ord": p.ordinal, "freq": p.freqstr}


def dec_period(_: Decoder, d: dict[str, Any]) -> Any:
    return pd.Period(ordinal=int_field(d, "ord"), freq=str_field(d, "freq"))


def enc_datetime_array(e: Encoder, dta: Any, depth: int) -> Any:
    out: dict[str, Any] = {TAG: "pd.DatetimeArray", "v": e.child(_m8(dta), depth, ".values")}
    if dta.tz is not None:
        out["tz"] = e.child(dta.tz, depth, ".tz")
    return out


def dec_datetime_array(_: Decoder, d: dict[str, Any]) -> Any:
    m8 = _ndarray(field(d, "v"), "M", "DatetimeArray data")
    if np.datetime_data(m8.dtype)[0] not in _UNITS:
        raise DecodeError(f"unsupported datetime unit in {m8.dtype}")
    return _make_datetime_array(m8, decode_tzinfo(d.get("tz")))


def enc_timedelta_array(e: Encoder, tda: Any, depth: int) -> Any:
    return {TAG: "pd.TimedeltaArray", "v": e.child(tda.to_numpy(), depth, ".values")}


def dec_timedelta_array(_: Decoder, d: dict[str, Any]) -> Any:
    return pd.array(_ndarray(field(d, "v"), "m", "TimedeltaArray data"), copy=False)


def enc_period_array(e: Encoder, arr: Any, depth: int) -> Any:
    return {
        TAG: "pd.PeriodArray",
        "v": e.child(arr.asi8, depth, ".values"),
        "freq": arr.freqstr,  # the period alias ("M"), not the offset name ("ME")
    }


def dec_period_array(_: Decoder, d: dict[str, Any]) -> Any:
    ordinals = _ndarray(field(d, "v"), "i", "PeriodArray ordinals")
    return pd.arrays.PeriodArray(ordinals, dtype=pd.PeriodDtype(str_field(d, "freq")))


def enc_categorical(e: Encoder, cat: Any, depth: int) -> Any:
    return {
        TAG: "pd.Categorical",
        "codes": e.child(cat.codes, depth, ".codes"),
        "categories": e.child(cat.categories, depth, ".categories"),
        "ordered": bool(cat.ordered),
    }


def dec_categorical(_: Decoder, d: dict[str, Any]) -> Any:
    codes = _ndarray(field(d, "codes"), "i", "Categorical codes")
    ordered = field(d, "ordered")
    if type(ordered) is not bool:
        raise DecodeError("Categorical 'ordered' must be a bool")
    dtype = pd.CategoricalDtype(field(d, "categories"), ordered=ordered)
    return pd.Categorical.from_codes(codes, dtype=dtype)


def enc_masked(e: Encoder, arr: Any, depth: int) -> Any:
    # _data/_mask hold the exact content (a FloatingArray can hold NaN that is not NA).
    return {
        TAG: "pd.MaskedArray",
        "data": e.child(arr._data, depth, ".values"),
        "mask": e.child(arr._mask, depth, ".mask"),
    }


def dec_masked(_: Decoder, d: dict[str, Any]) -> Any:
    data = _ndarray(field(d, "data"), "biuf", "masked array data")
    mask = _ndarray(field(d, "mask"), "b", "masked array mask")
    kind = data.dtype.kind
    if kind == "b":
        return pd.arrays.BooleanArray(data, mask)
    if kind == "f":
        return pd.arrays.FloatingArray(data, mask)
    return pd.arrays.IntegerArray(data, mask)


ENCODERS: dict[type[Any], EncodeFn] = {
    pd.Timestamp: enc_timestamp,
    pd.Timedelta: enc_timedelta,
    type(pd.NaT): enc_nat,
    type(pd.NA): enc_na,
    pd.Period: enc_period,
    pd.arrays.DatetimeArray: enc_datetime_array,
    pd.arrays.TimedeltaArray: enc_timedelta_array,
    pd.arrays.PeriodArray: enc_period_array,
    pd.Categorical: enc_categorical,
    pd.arrays.IntegerArray: enc_masked,
    pd.arrays.FloatingArray: enc_masked,
    pd.arrays.BooleanArray: enc_masked,
}

DECODERS: dict[str, DecodeFn] = {
    "pd.Timestamp": dec_timestamp,
    "pd.Timedelta": dec_timedelta,
    "pd.NaT": lambda _, d: pd.NaT,
    "pd.NA": lambda _, d: pd.NA,
    "pd.Period": dec_period,
    "pd.DatetimeArray": dec_datetime_array,
    "pd.TimedeltaArray": dec_timedelta_array,
    "pd.PeriodArray": dec_period_array,
    "pd.Categorical": dec_categorical,
    "pd.MaskedArray": dec_masked,
}

for _module in HANDLER_MODULES:
    _clash = set(ENCODERS) & set(_module.ENCODERS) or set(DECODERS) & set(_module.DECODERS)
    if _clash:  # a programming error in statevault itself: fail at import, loudly
        raise RuntimeError(f"{_module.__name__} handles {_clash} again")
    ENCODERS.update(_module.ENCODERS)
    DECODERS.update(_module.DECODERS)
