"""pandas handlers (loaded lazily): Series, DataFrame, every common Index and dtype, scalars.

Numeric data travels as numpy buffers (through the numpy handlers), never as lists. Time zones,
datetime units, index frequencies, names of any supported type, ``attrs`` and
``allows_duplicate_labels`` are kept. A few private pandas constructors are used where the
public ones re-validate data that was valid when written (an index frequency check costs more
than the rest of a Series); they are probed at import and replaced by the public, validating
path if this pandas lacks them.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas
from pandas.tseries.frequencies import to_offset

from statevault.codec import _numpy, _pd_arrow, _pd_more, _pd_strings
from statevault.codec._builtin import decode_tzinfo, field, int_field, list_field, str_field
from statevault.codec._core import TAG, DecodeFn, Decoder, EncodeFn, Encoder
from statevault.errors import DecodeError

pd: Any = pandas  # untyped alias: pandas-stubs do not describe the constructors used here
np: Any = _numpy.np
# The string, Arrow and interval/sparse/offset handlers live in modules of their own; their
# tables join this family's below (one row in _families.py: the pandas family).
HANDLER_MODULES = (_pd_strings, _pd_arrow, _pd_more)

_UNITS = ("s", "ms", "us", "ns")


# --- frequencies ---------------------------------------------------------------------------

_freq_names: dict[Any, str] = {}


def _freq_name(e: Encoder, obj: Any, freq: Any) -> str:
    """The name of an index frequency, checked to parse back to an equal offset (cached)."""
    cached = _freq_names.get(freq)
    if cached is not None:
        return cached
    name: str = freq.freqstr
    try:
        ok = to_offset(name) == freq
    except ValueError:
        ok = False
    if not ok:
        raise e.unsupported(
            obj,
            f"its frequency {freq!r} has no name that parses back to it: set .freq = None "
            f"or use a named frequency such as 'min', 'h', 'D', 'B'",
        )
    _freq_names[freq] = name
    return name


_offsets: dict[str, Any] = {}


def _offset(value: Any) -> Any:
    if value is None:
        return None
    offset = _offsets.get(value) if type(value) is str else None
    if offset is None:
        if type(value) is not str:
            raise DecodeError("a frequency must be stored as a str")
        offset = to_offset(value)
        if len(_offsets) < 1024:  # offsets are immutable; the cache only bounds re-parsing
            _offsets[value] = offset
    return offset


# --- scalars -------------------------------------------------------------------------------


def enc_timestamp(e: Encoder, ts: Any, depth: int) -> Any:
    out: dict[str, Any] = {
        TAG: "pd.Timestamp",
        "v": int(ts.to_datetime64().view(np.int64)),  # UTC-based for aware timestamps
        "unit": ts.unit,
    }
    if ts.tz is not None:
        out["tz"] = e.child(ts.tz, depth, ".tz")
    elif ts.fold:
        out["fold"] = 1
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


# --- arrays --------------------------------------------------------------------------------


def _values(obj: Any) -> Any:
    """The data of a Series/Index: a numpy array for numpy dtypes, else the ExtensionArray."""
    if isinstance(obj.dtype, np.dtype):
        return obj.to_numpy()  # no copy for numpy-backed data
    return obj.array


def _enc_values(e: Encoder, obj: Any, depth: int, segment: str) -> Any:
    """The encoded data of a Series/Index/column: object arrays of str travel as buffers."""
    return _enc_array(e, _values(obj), depth, segment)


def _enc_array(e: Encoder, values: Any, depth: int, segment: str) -> Any:
    """Encode what ``_values`` gives (an ndarray or an ExtensionArray)."""
    if type(values) is np.ndarray and values.dtype.kind == "O":
        doc = _pd_strings.object_strings(e, values, depth + 1)
        if doc is not None:
            return doc
    return e.child(values, depth, segment)


def _ndarray(value: Any, kinds: str, what: str) -> Any:
    if type(value) is not np.ndarray or value.dtype.kind not in kinds or value.ndim != 1:
        raise DecodeError(f"{what} must be a 1-D numpy array of kind {kinds!r}")
    return value


def _m8(dta: Any) -> Any:
    """The UTC-based datetime64 numpy data of a DatetimeArray, without copying."""
    return dta.asi8.view(f"M8[{dta.unit}]")


def enc_datetime_array(e: Encoder, dta: Any, depth: int) -> Any:
    out: dict[str, Any] = {TAG: "pd.DatetimeArray", "v": e.child(_m8(dta), depth, ".values")}
    if dta.tz is not None:
        out["tz"] = e.child(dta.tz, depth, ".tz")
    return out


def _datetime_array_public(m8: Any, tz: Any) -> Any:
    arr = pd.array(m8, copy=False)
    return arr if tz is None else arr.tz_localize("UTC").tz_convert(tz)


def _datetime_array_fast(m8: Any, tz: Any) -> Any:
    dtype = (
        m8.dtype if tz is None else pd.DatetimeTZDtype(unit=np.datetime_data(m8.dtype)[0], tz=tz)
    )
    return pd.arrays.DatetimeArray._simple_new(m8, dtype=dtype)


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


# --- indexes -------------------------------------------------------------------------------


def _name_fields(e: Encoder, idx: Any, depth: int, out: dict[str, Any]) -> dict[str, Any]:
    name = idx.name
    if name is not None:
        out["name"] = e.child(name, depth, ".name")
    return out


def enc_index(e: Encoder, idx: Any, depth: int) -> Any:
    out = {TAG: "pd.Index", "v": _enc_values(e, idx, depth, ".values")}
    return _name_fields(e, idx, depth, out)


def dec_index(_: Decoder, d: dict[str, Any]) -> Any:
    values = field(d, "v")
    return pd.Index(values, dtype=values.dtype, name=d.get("name"), copy=False)


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
        out["freq"] = _freq_name(e, idx, idx.freq)
    return _name_fields(e, idx, depth, out)


def dec_datetime_index(_: Decoder, d: dict[str, Any]) -> Any:
    dta = field(d, "v")
    if type(dta) is not pd.arrays.DatetimeArray:
        raise DecodeError("a DatetimeIndex must hold a DatetimeArray")
    return _make_datetime_index(dta, _offset(d.get("freq")), d.get("name"))


def enc_timedelta_index(e: Encoder, idx: Any, depth: int) -> Any:
    out = {TAG: "pd.TimedeltaIndex", "v": e.child(idx.to_numpy(), depth, ".values")}
    if idx.freq is not None:
        out["freq"] = _freq_name(e, idx, idx.freq)
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


# --- Series and DataFrame ------------------------------------------------------------------


def _extras(e: Encoder, obj: Any, depth: int, out: dict[str, Any]) -> dict[str, Any]:
    if obj.attrs:
        out["attrs"] = e.child(dict(obj.attrs), depth, ".attrs")
    if not obj.flags.allows_duplicate_labels:
        out["nodup"] = True
    return out


def _apply_extras(obj: Any, d: dict[str, Any]) -> Any:
    attrs = d.get("attrs")
    if attrs is not None:
        if type(attrs) is not dict:
            raise DecodeError("'attrs' must be a dict")
        obj.attrs = attrs
    if d.get("nodup") is True:
        obj = obj.set_flags(allows_duplicate_labels=False)
    return obj


def enc_series(e: Encoder, s: Any, depth: int) -> Any:
    out = {
        TAG: "pd.Series",
        "index": e.child(s.index, depth, ".index"),
        "v": _enc_values(e, s, depth, ".values"),
    }
    _name_fields(e, s, depth, out)
    return _extras(e, s, depth, out)


def _column(values: Any, index: Any) -> Any:
    _check_values(values)
    if type(values) is np.ndarray and values.dtype.kind == "O":
        # Without an explicit dtype pandas would infer 'str' from object arrays of strings.
        return pd.Series(values, index=index, dtype=object, copy=False)
    return values


def _check_index(value: Any, what: str) -> Any:
    if not isinstance(value, pd.Index):
        raise DecodeError(f"the {what} of a pandas object must be an Index")
    return value


def _check_values(value: Any) -> Any:
    if type(value) is np.ndarray:
        if value.ndim != 1:
            raise DecodeError("Series data must be 1-D")
    elif not isinstance(value, pd.api.extensions.ExtensionArray):
        raise DecodeError("Series data must be a numpy array or a pandas ExtensionArray")
    return value


def dec_series(_: Decoder, d: dict[str, Any]) -> Any:
    values = _check_values(field(d, "v"))
    _check_index(field(d, "index"), "index")
    dtype = object if type(values) is np.ndarray and values.dtype.kind == "O" else None
    s = pd.Series(values, index=field(d, "index"), dtype=dtype, name=d.get("name"), copy=False)
    return _apply_extras(s, d)


def enc_frame(e: Encoder, df: Any, depth: int) -> Any:
    out: dict[str, Any] = {
        TAG: "pd.DataFrame",
        "index": e.child(df.index, depth, ".index"),
        "columns": e.child(df.columns, depth, ".columns"),
    }
    arrays = _column_arrays(df)
    first = arrays[0].dtype if arrays else None
    if isinstance(first, np.dtype) and first.kind != "O" and all(a.dtype == first for a in arrays):
        # One homogeneous numpy block: a single 2-D buffer (a view, Fortran order, no copy).
        out["block"] = e.child(df.to_numpy(), depth, ".values")
    else:
        columns = df.columns
        out["cols"] = [
            _enc_array(e, values, depth, f"[{_label(columns[j])}].values")
            for j, values in enumerate(arrays)
        ]
    return _extras(e, df, depth, out)


def _column_arrays_public(df: Any) -> list[Any]:
    return [_values(df.iloc[:, j]) for j in range(df.shape[1])]


def _column_arrays_fast(df: Any) -> list[Any]:
    # pandas' own per-column iterator (2.2 to 3.x): each column's array as its block stores
    # it, read-only use only, no Series built; numpy-dtype extension arrays (a naive
    # DatetimeArray) are turned into the ndarray that Series.to_numpy() gives (a view).
    return [
        np.asarray(a) if type(a) is not np.ndarray and isinstance(a.dtype, np.dtype) else a
        for a in df._iter_column_arrays()
    ]


def _same_arrays(a: list[Any], b: list[Any]) -> bool:
    return len(a) == len(b) and all(
        type(x) is type(y)
        and x.dtype == y.dtype
        and len(x) == len(y)
        and bool(np.all(np.asarray(x, dtype=object) == np.asarray(y, dtype=object)))
        for x, y in zip(a, b, strict=True)
    )


def _probe_columns() -> bool:
    """True if the fast column arrays are exactly the public ones on this pandas."""
    try:
        n = 3
        frame = pd.DataFrame(
            {
                "i": np.arange(n, dtype=np.int32),
                "f": np.linspace(0.0, 1.0, n),
                "o": np.array(["a", 1, None], dtype=object),
                "s": pd.array(["x", "y", "z"], dtype="string"),
                "m": np.array([0, 1, 2], dtype="M8[ns]"),
                "t": pd.date_range("2024-01-01", periods=n, tz="UTC"),
                "c": pd.Categorical(["u", "v", "u"]),
                "n": pd.array([1, 2, 3], dtype="Int64"),
                "b": np.array([True, False, True]),
            }
        )
        frame.insert(1, "f2", frame["f"] * 2)  # a second float block, not consolidated
        return _same_arrays(_column_arrays_fast(frame), _column_arrays_public(frame))
    except Exception:  # noqa: BLE001 (any drift in pandas internals: use the public path)
        return False


def _label(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def dec_frame(_: Decoder, d: dict[str, Any]) -> Any:
    index = _check_index(field(d, "index"), "index")
    columns = _check_index(field(d, "columns"), "columns")
    if "block" in d:
        block = field(d, "block")
        if type(block) is not np.ndarray or block.ndim != 2 or block.dtype.kind == "O":
            raise DecodeError("a DataFrame block must be a 2-D numeric numpy array")
        df = pd.DataFrame(block, index=index, columns=columns, copy=False)
    else:
        cols = list_field(d, "cols")
        data = {j: _column(values, index) for j, values in enumerate(cols)}
        df = pd.DataFrame(data, index=index, copy=False)
        df.columns = columns
    return _apply_extras(df, d)


# --- fast constructors (probed) -------------------------------------------------------------


def _datetime_index_public(dta: Any, freq: Any, name: Any) -> Any:
    return pd.DatetimeIndex(dta, freq=freq, name=name)


def _datetime_index_fast(dta: Any, freq: Any, name: Any) -> Any:
    if freq is not None and not _fixed_freq_matches(dta, freq):
        return _datetime_index_public(dta, freq, name)  # non-fixed freq: let pandas check it
    idx = pd.DatetimeIndex._simple_new(dta, name=name)
    idx._freq = freq
    return idx


_NANOS_PER_UNIT = {"s": 1_000_000_000, "ms": 1_000_000, "us": 1_000, "ns": 1}


def _fixed_freq_matches(dta: Any, freq: Any) -> bool:
    """True if ``freq`` is a fixed step that the data's first and last values agree with.

    Like unpickling, this trusts the stored frequency instead of re-checking every step (that
    check costs more than building the rest of a Series); the frame's checksum guards the
    bytes. The endpoint check still catches a frequency that does not belong to the data.
    Non-fixed frequencies (business days, month ends) return False: pandas checks those.
    """
    if not isinstance(freq, pd.offsets.Tick):
        return False
    nanos = freq.nanos
    per_unit = _NANOS_PER_UNIT[dta.unit]
    if nanos % per_unit:
        return False
    i8 = dta.asi8
    n = len(i8)
    if n >= 2 and int(i8[n - 1]) - int(i8[0]) != (n - 1) * (nanos // per_unit):
        raise DecodeError(f"index values do not follow their stored frequency {freq.freqstr!r}")
    return True


def _probe() -> bool:
    try:
        tz = dt.UTC
        m8 = np.array([0, 60_000_000], dtype="M8[us]")
        off = to_offset("min")
        fast = _datetime_index_fast(_datetime_array_fast(m8, tz), off, "x")
        slow = _datetime_index_public(_datetime_array_public(m8.copy(), tz), off, "x")
        return bool(
            fast.equals(slow)
            and fast.dtype == slow.dtype
            and fast.freq == slow.freq
            and fast.name == slow.name
            and type(fast) is type(slow)
        )
    except Exception:  # noqa: BLE001 (any drift in pandas internals: use the public path)
        return False


_column_arrays = _column_arrays_fast if _probe_columns() else _column_arrays_public

if _probe():
    _make_datetime_array = _datetime_array_fast
    _make_datetime_index = _datetime_index_fast
else:  # pragma: no cover - depends on the pandas version
    _make_datetime_array = _datetime_array_public
    _make_datetime_index = _datetime_index_public


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
    pd.Index: enc_index,
    pd.RangeIndex: enc_range_index,
    pd.DatetimeIndex: enc_datetime_index,
    pd.TimedeltaIndex: enc_timedelta_index,
    pd.PeriodIndex: enc_period_index,
    pd.CategoricalIndex: enc_categorical_index,
    pd.MultiIndex: enc_multi_index,
    pd.IntervalIndex: _pd_more.enc_interval_index,
    pd.Series: enc_series,
    pd.DataFrame: enc_frame,
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
    "pd.Index": dec_index,
    "pd.RangeIndex": dec_range_index,
    "pd.DatetimeIndex": dec_datetime_index,
    "pd.TimedeltaIndex": dec_timedelta_index,
    "pd.PeriodIndex": dec_period_index,
    "pd.CategoricalIndex": dec_categorical_index,
    "pd.MultiIndex": dec_multi_index,
    "pd.IntervalIndex": _pd_more.dec_interval_index,
    "pd.Series": dec_series,
    "pd.DataFrame": dec_frame,
}

for _module in HANDLER_MODULES:
    _clash = set(ENCODERS) & set(_module.ENCODERS) or set(DECODERS) & set(_module.DECODERS)
    if _clash:  # a programming error in statevault itself: fail at import, loudly
        raise RuntimeError(f"{_module.__name__} handles {_clash} again")
    ENCODERS.update(_module.ENCODERS)
    DECODERS.update(_module.DECODERS)

for _cls in (
    pd.Index,
    pd.RangeIndex,
    pd.DatetimeIndex,
    pd.TimedeltaIndex,
    pd.PeriodIndex,
    pd.CategoricalIndex,
    pd.MultiIndex,
    pd.IntervalIndex,
):
    ENCODERS[_cls] = _memoised_encoder(ENCODERS[_cls])
for _tag in _INDEX_TAGS:
    DECODERS[_tag] = _memoised_decoder(DECODERS[_tag])
