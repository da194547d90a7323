"""pandas indexes: every common Index class, stored once per save when several values share one.

Indexes are immutable: the encoder stores a shared index once (a ``ref`` for later uses) and
the decoder gives back one shared object, as unpickling does.
"""

from __future__ import annotations

from typing import Any

import pandas
from pandas.api.types import is_hashable

from statevault.codec import _numpy, _pd_more, _pd_strings
from statevault.codec._core import TAG, DecodeFn, Decoder, EncodeFn, Encoder
from statevault.codec._fields import field, list_field
from statevault.codec._pd_common import (
    _enc_values,
    _freq_name,
    _make_datetime_index,
    _name_fields,
    _ndarray,
    _offset,
)
from statevault.errors import DecodeError

pd: Any = pandas  # untyped alias: pandas-stubs do not describe the constructors used here
np: Any = _numpy.np


def enc_index(e: Encoder, idx: Any, depth: int) -> Any:
    out = {TAG: "pd.Index", "v": _enc_values(e, idx, depth, ".values")}
    return _name_fields(e, idx, depth, out)


def dec_index(_: Decoder, d: dict[str, Any]) -> Any:
    values = field(d, "v")
    name = d.get("name")
    if type(values) in _FAST_INDEX_ARRAYS and is_hashable(name):
        return _make_index(values, name)
    return pd.Index(values, dtype=values.dtype, name=name, copy=False)


def _index_public(values: Any, name: Any) -> Any:
    return pd.Index(values, dtype=values.dtype, name=name, copy=False)


def _index_fast(values: Any, name: Any) -> Any:
    # What Index.__new__ ends in for a string array of its own dtype (a DataFrame's column
    # labels): the array kept as it is, with fresh references; 1 us instead of 10.
    return pd.Index._simple_new(values, name=name)


def _string_arrays() -> list[Any]:
    """One python-storage string array of every kind this pandas builds (the fast path's)."""
    out = []
    for na in ("NA", "nan"):
        try:
            dtype = _pd_strings.string_dtype("python", na)
        except DecodeError:  # pandas 2.2: no python storage with NaN
            continue
        out.append(dtype.construct_array_type()._from_sequence(["a", "b"], dtype=dtype))
    return out


def _index_facts(idx: Any, values: Any) -> tuple[Any, ...]:
    refs = getattr(idx, "_references", None)
    return (
        type(idx),
        sorted(vars(idx)),
        idx.dtype,
        idx.name,
        idx._data is values,
        type(refs),
        None if refs is None else len(refs.referenced_blocks),
    )


def _probe_index() -> frozenset[type[Any]]:
    """The string array classes whose fast Index is the public one, fact for fact."""
    try:
        ok = set()
        for values in _string_arrays():
            for name in (None, "x", ("a", 1)):
                fast, slow = _index_fast(values, name), _index_public(values, name)
                if _index_facts(fast, values) != _index_facts(slow, values):
                    return frozenset()
            ok.add(type(values))
        return frozenset(ok)
    except Exception:  # noqa: BLE001 (any drift in pandas internals: use the public path)
        return frozenset()


_FAST_INDEX_ARRAYS = _probe_index()
_make_index = _index_fast if _FAST_INDEX_ARRAYS else _index_public


def enc_range_index(e: Encoder, idx: Any, depth: int) -> Any:
    out = {TAG: "pd.RangeIndex", "v": [idx.start, idx.stop, idx.step]}
    return _name_fields(e, idx, depth, out)


def dec_range_index(_: Decoder, d: dict[str, Any]) -> Any:
    v = list_field(d, "v")
    if len(v) != 3 or not all(type(x) is int for x in v):
        raise DecodeError("a RangeIndex must hold [start, stop, step] ints")
    return pd.RangeIndex(v[0], v[1], v[2], name=d.get("name"))


def enc_datetime_index(e: Encoder, idx: Any, depth: int) -> Any:
    out = {TAG: "pd.DatetimeIndex", "v": e.child(idx.array, depth, "")}
    if idx.freq is not None:
        out["freq"] = _freq_name(e, idx, idx.freq, depth)
    return _name_fields(e, idx, depth, out)


def dec_datetime_index(_: Decoder, d: dict[str, Any]) -> Any:
    dta = field(d, "v")
    if type(dta) is not pd.arrays.DatetimeArray:
        raise DecodeError("a DatetimeIndex must hold a DatetimeArray")
    return _make_datetime_index(dta, _offset(d.get("freq")), d.get("name"))


def enc_timedelta_index(e: Encoder, idx: Any, depth: int) -> Any:
    out = {TAG: "pd.TimedeltaIndex", "v": e.child(idx.to_numpy(), depth, ".values")}
    if idx.freq is not None:
        out["freq"] = _freq_name(e, idx, idx.freq, depth)
    return _name_fields(e, idx, depth, out)


def dec_timedelta_index(_: Decoder, d: dict[str, Any]) -> Any:
    m8 = _ndarray(field(d, "v"), "m", "TimedeltaIndex data")
    return pd.TimedeltaIndex(m8, freq=_offset(d.get("freq")), name=d.get("name"))


def enc_period_index(e: Encoder, idx: Any, depth: int) -> Any:
    out = {TAG: "pd.PeriodIndex", "v": e.child(idx.array, depth, "")}
    return _name_fields(e, idx, depth, out)


def dec_period_index(_: Decoder, d: dict[str, Any]) -> Any:
    arr = field(d, "v")
    if type(arr) is not pd.arrays.PeriodArray:
        raise DecodeError("a PeriodIndex must hold a PeriodArray")
    return pd.PeriodIndex(arr, name=d.get("name"))


def enc_categorical_index(e: Encoder, idx: Any, depth: int) -> Any:
    out = {TAG: "pd.CategoricalIndex", "v": e.child(idx.array, depth, "")}
    return _name_fields(e, idx, depth, out)


def dec_categorical_index(_: Decoder, d: dict[str, Any]) -> Any:
    cat = field(d, "v")
    if type(cat) is not pd.Categorical:
        raise DecodeError("a CategoricalIndex must hold a Categorical")
    return pd.CategoricalIndex(cat, name=d.get("name"))


def enc_multi_index(e: Encoder, idx: Any, depth: int) -> Any:
    return {
        TAG: "pd.MultiIndex",
        "levels": [e.child(lv, depth, f".levels[{i}]") for i, lv in enumerate(idx.levels)],
        "codes": [e.child(c, depth, f".codes[{i}]") for i, c in enumerate(idx.codes)],
        "names": e.child(list(idx.names), depth, ".names"),
    }


def dec_multi_index(_: Decoder, d: dict[str, Any]) -> Any:
    levels = list_field(d, "levels")
    codes = [_ndarray(c, "iu", "MultiIndex codes") for c in list_field(d, "codes")]
    names = list_field(d, "names")
    if not levels or len(codes) != len(levels) or len(names) != len(levels):
        raise DecodeError("a MultiIndex needs as many codes and names as levels")
    return pd.MultiIndex(levels=levels, codes=codes, names=names)


def _memoised_encoder(fn: EncodeFn) -> EncodeFn:
    # Indexes are immutable and typically shared (three Series of one pair, one index): store
    # each once; it decodes to one shared object again.
    def encode(e: Encoder, idx: Any, depth: int) -> Any:
        ref = e.shared(idx)
        if ref is not None:
            return ref
        return e.remember(idx, fn(e, idx, depth))

    return encode


def _memoised_decoder(fn: DecodeFn) -> DecodeFn:
    def decode(dec: Decoder, d: dict[str, Any]) -> Any:
        return dec.shared(d, fn(dec, d))

    return decode


_INDEX_TAGS = frozenset(
    {
        "pd.Index",
        "pd.RangeIndex",
        "pd.DatetimeIndex",
        "pd.TimedeltaIndex",
        "pd.PeriodIndex",
        "pd.CategoricalIndex",
        "pd.MultiIndex",
        "pd.IntervalIndex",
    }
)


ENCODERS: dict[type[Any], EncodeFn] = {
    pd.Index: enc_index,
    pd.RangeIndex: enc_range_index,
    pd.DatetimeIndex: enc_datetime_index,
    pd.TimedeltaIndex: enc_timedelta_index,
    pd.PeriodIndex: enc_period_index,
    pd.CategoricalIndex: enc_categorical_index,
    pd.MultiIndex: enc_multi_index,
    pd.IntervalIndex: _pd_more.enc_interval_index,
}
ENCODERS = {cls: _memoised_encoder(fn) for cls, fn in ENCODERS.items()}

DECODERS: dict[str, DecodeFn] = {
    "pd.Index": dec_index,
    "pd.RangeIndex": dec_range_index,
    "pd.DatetimeIndex": dec_datetime_index,
    "pd.TimedeltaIndex": dec_timedelta_index,
    "pd.PeriodIndex": dec_period_index,
    "pd.CategoricalIndex": dec_categorical_index,
    "pd.MultiIndex": dec_multi_index,
    "pd.IntervalIndex": _pd_more.dec_interval_index,
}
DECODERS = {tag: _memoised_decoder(fn) for tag, fn in DECODERS.items()}
if set(DECODERS) != _INDEX_TAGS:  # a programming error in statevault itself
    raise RuntimeError(f"index tags out of step: {set(DECODERS) ^ _INDEX_TAGS}")
