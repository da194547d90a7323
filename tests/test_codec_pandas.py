"""pandas round trips: Series, DataFrame, every index kind and dtype, scalars; data as buffers."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings

from statevault.codec import Codec
from statevault.errors import UnsupportedTypeError

from strategies import assert_same, frames, indexes, pandas_scalars, round_trips, series

SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])

codec = Codec()


def check(value: Any) -> None:
    for result in round_trips(codec, value):
        assert_same(value, result)


@SETTINGS
@given(series())
def test_series_round_trip(value: Any) -> None:
    check(value)


@SETTINGS
@given(frames())
def test_frames_round_trip(value: Any) -> None:
    check(value)


@SETTINGS
@given(indexes())
def test_indexes_round_trip(value: Any) -> None:
    check(value)


@SETTINGS
@given(pandas_scalars())
def test_pandas_scalars_round_trip(value: Any) -> None:
    check(value)


def minute_series(n: int = 50, tz: str = "Europe/London") -> pd.Series:
    index = pd.date_range("2024-03-31", periods=n, freq="min", tz=tz, name="time")
    return pd.Series(np.linspace(1.0, 2.0, n), index=index, name="price1")


def test_trading_series_keeps_tz_freq_unit_and_names() -> None:
    s = minute_series()
    for out in round_trips(codec, {"pair_states": {"EURUSD-GBPUSD": {"price1": s}}}):
        got = out["pair_states"]["EURUSD-GBPUSD"]["price1"]
        assert_same(s, got)
        assert got.index.freqstr == "min"
        assert got.index.tz == s.index.tz  # a ZoneInfo on pandas 3, a pytz zone on pandas 2
        assert type(got.index.tz) is type(s.index.tz)
        assert got.index.unit == s.index.unit


@pytest.mark.parametrize("unit", ["s", "ms", "us", "ns"])
@pytest.mark.parametrize("tz", [None, "UTC", "Asia/Tokyo"])
def test_datetime_columns_all_units(unit: str, tz: str | None) -> None:
    values = pd.date_range("2024-01-01", periods=4, freq="h", unit=unit, tz=tz)
    df = pd.DataFrame({"t": values, "x": [1, 2, 3, 4]})
    df.loc[2, "t"] = pd.NaT
    check(df)


def test_string_dtypes_python_and_pandas3_default() -> None:
    # The stack's default: pandas 3 "str" (python storage without pyarrow, pyarrow storage
    # with it; NaN missing), object on pandas 2.2. Each comes back as itself.
    default = pd.Series(["a", None, "b"])
    python = pd.Series(["a", None, "\udc80"], dtype=pd.StringDtype("python"))  # NA missing
    nullable = pd.Series(["a", None], dtype="string")
    for s in (default, python, nullable):
        for out in round_trips(codec, s):
            assert_same(s, out)
            assert out.dtype == s.dtype


def test_object_column_stays_object_and_holds_any_value() -> None:
    s = pd.Series(
        ["x", 1, (2, 3), dt.date(2020, 1, 1), None, {"k": [1]}], dtype=object, name=("a", 1)
    )
    check(s)
    df = pd.DataFrame({"o": ["a", "b"], "f": [1.0, 2.0]}).astype({"o": object})
    check(df)


def test_nullable_and_categorical_dtypes() -> None:
    df = pd.DataFrame(
        {
            "i8": pd.array([1, None, 3], dtype="Int8"),
            "u64": pd.array([2**64 - 1, None, 0], dtype="UInt64"),
            "f": pd.array([1.5, None, np.nan], dtype="Float64"),
            "b": pd.array([True, None, False], dtype="boolean"),
            "c": pd.Categorical(["lo", "hi", None], categories=["lo", "hi"], ordered=True),
            "ci": pd.Categorical([3, 1, 3], categories=pd.Index([3, 1], dtype="int8")),
        }
    )
    check(df)


def test_index_kinds() -> None:
    for index in (
        pd.RangeIndex(5, -5, -2, name="r"),
        pd.Index([1.5, 2.5], dtype="float32"),
        pd.Index([True, False], dtype=bool),
        pd.Index([1, 2], dtype="uint16"),
        pd.timedelta_range("1D", periods=3, freq="6h", name="td"),
        pd.period_range("2024-01", periods=3, freq="M"),
        pd.MultiIndex.from_product([[1, 2], ["a", "b"]], names=["n", None]),
        pd.CategoricalIndex(["a", "b", "a"], ordered=True, name=0),
        pd.bdate_range("2024-01-01", periods=5, name="business"),
        pd.date_range("2024-01-31", periods=3, freq="ME", tz="UTC"),
        pd.DatetimeIndex(["2024-01-01", "2024-01-03"]).as_unit("s"),
    ):
        check(pd.Series(range(len(index)), index=index, dtype="int64"))


def test_frame_with_duplicate_columns_attrs_and_flags() -> None:
    df = pd.DataFrame([[1, 2.0, "x"], [3, 4.0, "y"]], columns=["a", "a", 7])
    df.attrs = {"source": "feed", "when": dt.datetime(2024, 1, 1, tzinfo=dt.UTC)}
    check(df)
    unique = pd.DataFrame({"a": [1.0]}).set_flags(allows_duplicate_labels=False)
    for out in round_trips(codec, unique):
        assert out.flags.allows_duplicate_labels is False


def test_homogeneous_frame_is_one_zero_copy_block() -> None:
    df = pd.DataFrame(np.arange(12.0).reshape(4, 3), columns=["a", "b", "c"])
    encoded = codec.encode(df)
    assert "block" in encoded.doc
    # one buffer for the block; the string column labels bring their offsets and data
    assert len(encoded.buffers) == 3
    block = encoded.buffers[encoded.doc["block"]["buf"]]
    assert np.shares_memory(np.frombuffer(block, dtype=np.float64), df.to_numpy())
    out = codec.loads(bytearray(b"".join(codec.dumps(df))))
    assert_same(df, out)
    out.iloc[0, 0] = 99.0  # decoded frames are writable


def test_numeric_data_travels_as_buffers_not_lists() -> None:
    s = minute_series(5000)
    encoded = codec.encode({"s": s, "df": s.to_frame()})
    text = json.dumps(encoded.doc)
    assert len(text) < 1500
    assert sum(b.nbytes for b in encoded.buffers) >= 2 * 5000 * 8


def test_shared_index_is_stored_once_and_stays_shared() -> None:
    index = pd.date_range("2024-01-01", periods=1000, freq="min", tz="UTC")
    a = pd.Series(np.arange(1000.0), index=index, name="a")
    b = pd.Series(np.arange(1000.0), index=index, name="b")
    assert a.index is b.index
    encoded = codec.encode([a, b])
    assert len(encoded.buffers) == 3  # one index, two value arrays
    for out in round_trips(codec, [a, b]):
        assert_same([a, b], out)
        assert out[0].index is out[1].index


def test_separate_equal_indexes_stay_separate() -> None:
    a = minute_series(10)
    b = minute_series(10)
    out = codec.decode(codec.encode([a, b]))
    assert out[0].index is not out[1].index
    out[0].index.name = "renamed"
    assert out[1].index.name == "time"


def test_timestamp_timedelta_units_and_tz() -> None:
    for value in (
        pd.Timestamp("2024-07-01 12:00:00.123456789", tz="Europe/London"),
        pd.Timestamp("2024-01-01").as_unit("s"),
        pd.Timestamp("1700-01-01").as_unit("s"),  # outside the ns range
        pd.Timestamp("2024-01-01", tz=dt.timezone(dt.timedelta(hours=5), "X")),
        pd.Timedelta(days=3, nanoseconds=7),
        pd.Timedelta(seconds=5).as_unit("s"),
        pd.Period("2024Q1", freq="Q"),
        pd.NaT,
        pd.NA,
    ):
        check(value)


def test_unsupported_pandas_types_name_type_and_path() -> None:
    wrapped = pd.Series(pd.arrays.NumpyExtensionArray(np.array([1, 2])))
    with pytest.raises(UnsupportedTypeError) as info:
        codec.encode({"x": wrapped.array})
    assert info.value.path == "state['x']"
    assert "NumpyExtensionArray" in info.value.type_name

    class MySeries(pd.Series):
        pass

    with pytest.raises(UnsupportedTypeError) as info2:
        codec.encode([MySeries([1.0])])
    assert info2.value.path == "state[0]"
    assert "MySeries" in str(info2.value)


def test_unsupported_value_in_object_column_has_path() -> None:
    df = pd.DataFrame({"ok": [1.0, 2.0], "bad": pd.Series([1, object()], dtype=object)})
    with pytest.raises(UnsupportedTypeError) as info:
        codec.encode({"pairs": {"EURUSD": df}})
    assert info.value.path == "state['pairs']['EURUSD']['bad'].values[1]"
    assert info.value.type_name == "object"
    idx = pd.Index([1, object()], dtype=object)
    with pytest.raises(UnsupportedTypeError) as info3:
        codec.encode(pd.Series([1, 2], index=idx))
    assert info3.value.path == "state.index.values[1]"


def test_shared_index_inside_mixed_key_dict_is_defined_once() -> None:
    # The str-key attempt of a dict is continued, not redone, when a non-str key shows up: a
    # shared index met before that key must keep its single definition.
    index = pd.date_range("2024-01-01", periods=5, freq="h", tz="UTC")
    a = pd.Series(np.arange(5.0), index=index)
    b = pd.Series(np.arange(5.0), index=index)
    value = {"a": a, "arr": np.arange(3), 1: b, "c": b}
    for out in round_trips(codec, value):
        assert_same(value, out)
        assert out[1].index is out["a"].index
    # index once, values of a, arr, values of b twice (only indexes are shared, not Series)
    assert len(codec.encode(value).buffers) == 5


def test_multiindex_columns_and_tz_levels() -> None:
    columns = pd.MultiIndex.from_tuples([("px", "bid"), ("px", "ask"), ("qty", "")])
    index = pd.MultiIndex.from_arrays(
        [pd.date_range("2024-01-01", periods=2, tz="Europe/London"), ["a", "b"]],
        names=["t", None],
    )
    df = pd.DataFrame(np.arange(6.0).reshape(2, 3), index=index, columns=columns)
    check(df)
