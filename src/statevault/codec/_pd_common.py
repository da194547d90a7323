"""What the pandas handlers share: values of a Series/Index, frequencies, probed constructors.

A few private pandas constructors are used where the public ones re-validate data that was
valid when written (an index frequency check costs more than the rest of a Series); they are
probed at import and replaced by the public, validating path if this pandas lacks them.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas
from pandas.tseries.frequencies import to_offset

from statevault.codec import _numpy, _pd_strings
from statevault.codec._core import Encoder
from statevault.errors import DecodeError

pd: Any = pandas  # untyped alias: pandas-stubs do not describe the constructors used here
np: Any = _numpy.np

_UNITS = ("s", "ms", "us", "ns")


# --- frequencies ---------------------------------------------------------------------------

_freq_names: dict[Any, str] = {}


def _freq_name(e: Encoder, obj: Any, freq: Any, depth: int) -> Any:
    """An index frequency as stored: its name when that parses back to an equal offset
    (cached; what every older reader reads), else the offset itself, encoded with its
    parameters like any offset value (``DateOffset(months=1, hours=3)``,
    ``CustomBusinessDay(holidays=...)``). ``obj`` is the index, for the error path.
    """
    cached = _freq_names.get(freq)
    if cached is not None:
        return cached
    name: str = freq.freqstr
    try:
        ok = to_offset(name) == freq
    except ValueError:
        ok = False
    if not ok:
        del obj  # the offset encoder names its own path (.freq) if it refuses
        return e.child(freq, depth, ".freq")
    _freq_names[freq] = name
    return name


_offsets: dict[str, Any] = {}


def _offset(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, pd.offsets.BaseOffset):  # stored as an offset (no parseable name)
        return value
    offset = _offsets.get(value) if type(value) is str else None
    if offset is None:
        if type(value) is not str:
            raise DecodeError("a frequency must be stored as a str or a date offset")
        offset = to_offset(value)
        if len(_offsets) < 1024:  # offsets are immutable; the cache only bounds re-parsing
            _offsets[value] = offset
    return offset


# --- arrays --------------------------------------------------------------------------------


def _values(obj: Any) -> Any:
    """The data of a Series/Index: a numpy array for numpy dtypes, else the ExtensionArray."""
    if _VALUES_FAST:
        # pandas' own array behind a numpy-backed object (0.4 us, where .dtype and
        # .to_numpy() cost 4.5 us): the array to_numpy() views, probed below.
        v = obj._values
        if type(v) is np.ndarray:
            return v
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
    if _M8_FAST:
        m8 = dta._ndarray  # the array pandas keeps (probed below): 0.4 us against 3 us
        if type(m8) is np.ndarray and m8.dtype.kind == "M":
            return m8
    return dta.asi8.view(f"M8[{dta.unit}]")


def _same_view(a: Any, b: Any) -> bool:
    return bool(
        type(a) is type(b) is np.ndarray
        and a.dtype == b.dtype
        and a.dtype.str == b.dtype.str
        and a.shape == b.shape
        and a.strides == b.strides
        and a.__array_interface__["data"][0] == b.__array_interface__["data"][0]
    )


def _probe_encode_views() -> tuple[bool, bool]:
    """Whether pandas' private ``_values`` and ``DatetimeArray._ndarray`` are the arrays the
    public paths view (same memory, dtype, shape, strides); else the public paths are used."""
    try:
        objs = [
            pd.Series([1.5, 2.5], index=[3, 4]),
            pd.Series(np.arange(6, dtype="<i4")[::2]),
            pd.Series(["a", 1], dtype=object),
            pd.Index([1.0, 2.0]),
            pd.Index(["a", "b"], dtype=object),
        ]
        values = all(_same_view(o._values, o.to_numpy()) for o in objs)
        m8 = True
        for tz in (None, "UTC", "Europe/Berlin"):
            for unit in _UNITS:
                dta = pd.date_range("2024-01-01", periods=3, freq="h", tz=tz, unit=unit).array
                m8 = m8 and _same_view(dta._ndarray, dta.asi8.view(f"M8[{dta.unit}]"))
        return values, m8
    except Exception:  # noqa: BLE001 (any drift in pandas internals: use the public paths)
        return False, False


def _datetime_array_public(m8: Any, tz: Any) -> Any:
    arr = pd.array(m8, copy=False)
    return arr if tz is None else arr.tz_localize("UTC").tz_convert(tz)


def _datetime_array_fast(m8: Any, tz: Any) -> Any:
    dtype = (
        m8.dtype if tz is None else pd.DatetimeTZDtype(unit=np.datetime_data(m8.dtype)[0], tz=tz)
    )
    return pd.arrays.DatetimeArray._simple_new(m8, dtype=dtype)


def _name_fields(e: Encoder, idx: Any, depth: int, out: dict[str, Any]) -> dict[str, Any]:
    name = idx.name
    if name is not None:
        out["name"] = e.child(name, depth, ".name")
    return out


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


_VALUES_FAST, _M8_FAST = _probe_encode_views()

if _probe():
    _make_datetime_array = _datetime_array_fast
    _make_datetime_index = _datetime_index_fast
else:  # pragma: no cover - depends on the pandas version
    _make_datetime_array = _datetime_array_public
    _make_datetime_index = _datetime_index_public
