"""The trading layout's per-pair overview: its fast paths give what pandas' indexing gives.

``_ends`` caches the Timestamps at a DatetimeIndex's ends and ``_last`` reads a Series'
last value from its array; both must return exactly ``index[0]``, ``index[-1]`` and
``series.iloc[-1]`` (type, value, unit, tz object, fold), since the overview is encoded into
the root section byte for byte and returned by summaries.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest

from statevault.codec import Codec
from statevault.layers import layout
from statevault.layers.layout import pair_overview


def _same(a: Any, b: Any) -> None:
    assert type(a) is type(b)
    if isinstance(a, pd.Timestamp):
        assert (a.value, a.unit, a.fold) == (b.value, b.unit, b.fold)
        assert a.tz is b.tz
    elif a is pd.NaT or a is pd.NA:
        assert a is b
    elif isinstance(a, float | np.floating) and np.isnan(a):
        assert np.isnan(b)
    else:
        assert a == b


def _indexes() -> list[Any]:
    out: list[Any] = []
    for unit in ("s", "ms", "us", "ns"):
        for tz in (
            None,
            "UTC",
            dt.UTC,
            ZoneInfo("Europe/Berlin"),
            dt.timezone(dt.timedelta(hours=3)),
        ):
            idx = pd.date_range("2024-10-27 00:30", periods=5, freq="30min", tz=tz, unit=unit)
            out.append(idx)
    out.append(pd.DatetimeIndex(["2024-01-01", None], tz="UTC"))  # NaT at the end
    out += [pd.RangeIndex(3), pd.Index(["a", "b"]), pd.period_range("2024", periods=3, freq="M")]
    out.append(pd.MultiIndex.from_tuples([(1, "a"), (2, "b")]))
    out.append(pd.timedelta_range(0, periods=3, freq="h"))
    return out


@pytest.mark.parametrize("index", _indexes(), ids=lambda i: f"{type(i).__name__}-{i.dtype}")
def test_ends_are_what_indexing_gives(index: Any) -> None:
    layout._stamps.clear()
    for _ in range(2):  # the second time from the cache
        start, end = layout._ends(index)
        _same(start, index[0])
        _same(end, index[-1])


def test_ends_match_the_tz_object_not_equal_dtypes() -> None:
    # Equal dtypes can hold different tz objects; a cached Timestamp of one is not the other's.
    a = pd.date_range("2024-01-01", periods=2, freq="min", tz=dt.UTC)
    b = pd.date_range("2024-01-01", periods=2, freq="min", tz=ZoneInfo("UTC"))
    for idx in (a, b, a):
        start, _ = layout._ends(idx)
        assert start.tz is idx[0].tz


@pytest.mark.parametrize(
    "series",
    [
        pd.Series([1.5, 2.5]),
        pd.Series([1, 2], dtype="int32"),
        pd.Series([True, False]),
        pd.Series(["a", "b"], dtype=object),
        pd.Series(["a", None], dtype="string"),
        pd.Series([1, None], dtype="Int64"),
        pd.Series(pd.Categorical(["x", "y"])),
        pd.Series(pd.date_range("2024", periods=2, unit="s")),
        pd.Series(pd.date_range("2024", periods=2, tz="Europe/Berlin")),
        pd.Series([1.0, np.nan], dtype="float32"),
        pd.Series(pd.timedelta_range(0, periods=2)),
    ],
    ids=lambda s: str(s.dtype),
)
def test_last_is_what_iloc_gives(series: Any) -> None:
    _same(layout._last(series), series.iloc[-1])


def test_the_overview_encodes_as_before() -> None:
    # What the root section stores: the encoded overview, as pandas' own indexing builds it.
    idx = pd.date_range("2024-06-01", periods=50, freq="min", tz="UTC", name="time")
    pair = {
        "price": pd.Series(np.arange(50.0), index=idx),
        "stats": pd.DataFrame({"a": np.arange(50.0)}, index=idx),
        "hedge": 1.5,
    }
    fast = pair_overview(pair)
    slow = {
        "price": {"type": "Series", "shape": (50,), "start": idx[0], "end": idx[-1], "last": 49.0},
        "stats": {"type": "DataFrame", "shape": (50, 1), "start": idx[0], "end": idx[-1]},
        "hedge": 1.5,
    }
    codec = Codec()
    assert b"".join(bytes(c) for c in codec.dumps(fast)) == b"".join(
        bytes(c) for c in codec.dumps(slow)
    )
