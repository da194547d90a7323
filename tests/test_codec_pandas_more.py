"""pd.Interval, IntervalIndex, interval columns (pd.cut), SparseArray and date offsets, exactly."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings

from statevault.codec import Codec, Encoded
from statevault.errors import DecodeError, UnsupportedTypeError

from strategies import assert_same, round_trips
from strategies_pandas import interval_arrays, intervals, offsets, sparse_arrays

SETTINGS = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])

codec = Codec()


def check(value: Any) -> None:
    for result in round_trips(codec, value):
        assert_same(value, result)


def check_offset(off: Any) -> None:
    for result in round_trips(codec, {"schedule": off}):
        got = result["schedule"]
        assert type(got) is type(off)
        assert got == off
        assert (got.n, got.normalize, got.kwds.keys()) == (off.n, off.normalize, off.kwds.keys())
        assert repr(got) == repr(off)
        start = pd.Timestamp("2024-02-28 10:30")
        assert start + got == start + off


@SETTINGS
@given(intervals())
def test_intervals_round_trip(iv: Any) -> None:
    check(iv)
    check([iv, {"window": iv}])


@SETTINGS
@given(interval_arrays())
def test_interval_arrays_indexes_and_columns_round_trip(arr: Any) -> None:
    check(arr)
    check(pd.IntervalIndex(arr, name="bucket"))
    check(pd.Series(arr, name="iv"))
    check(pd.Series(np.arange(len(arr), dtype=float), index=pd.IntervalIndex(arr)))


@SETTINGS
@given(sparse_arrays())
def test_sparse_arrays_round_trip(arr: Any) -> None:
    check(arr)
    check(pd.DataFrame({"s": arr, "d": np.arange(len(arr))}))


@SETTINGS
@given(offsets())
def test_offsets_round_trip(off: Any) -> None:
    check_offset(off)


def test_pd_cut_results_round_trip() -> None:
    px = pd.Series(np.linspace(1.0, 2.0, 50), name="px")
    binned = pd.cut(px, bins=5)
    check(binned)
    check(pd.cut(px, bins=[0.0, 1.2, 1.7, 3.0], right=False, labels=None))
    check(px.groupby(binned, observed=True).mean())
    q = pd.qcut(px, 4)
    check(q)
    check(q.cat.categories)


def test_named_offsets_from_the_issue() -> None:
    o = pd.offsets
    for off in (
        o.BusinessDay(),
        o.BusinessDay(3, normalize=True),
        o.MonthEnd(),
        o.Week(weekday=1),
        o.CustomBusinessDay(holidays=["2024-12-25", "2024-12-26"], weekmask="Mon Tue Wed Thu Fri"),
        o.CustomBusinessDay(weekmask="Sun Mon Tue Wed Thu"),
        o.DateOffset(months=1, hours=3),
        o.DateOffset(2, months=1, normalize=True),
        o.DateOffset(),
        o.BusinessHour(start="08:00", end="16:30"),
        o.CustomBusinessHour(start="10:00", holidays=["2024-01-01"]),
        o.FY5253Quarter(weekday=4, startingMonth=3, qtr_with_extra_week=1),
        o.Easter(),
        o.Minute(15),
    ):
        check_offset(off)


def test_offset_with_a_calendar_object_is_refused_with_advice() -> None:
    cal = np.busdaycalendar(weekmask="1111000", holidays=["2024-01-01"])
    off = pd.offsets.CustomBusinessDay(calendar=cal)
    with pytest.raises(UnsupportedTypeError, match="weekmask= and holidays=") as info:
        codec.encode({"sched": off})
    assert info.value.path == "state['sched']"


def test_offset_subclass_is_refused() -> None:
    class MyDay(pd.offsets.DateOffset):
        pass

    with pytest.raises(UnsupportedTypeError):
        codec.encode(MyDay(days=1))


@pytest.mark.parametrize(
    ("doc", "match"),
    [
        ({"$t": "pd.DateOffset", "cls": "os.system", "n": 1}, "unknown date offset class"),
        ({"$t": "pd.DateOffset", "cls": "Week", "n": 1, "kw": {"calendar": 1}}, "does not take"),
        ({"$t": "pd.DateOffset", "cls": "Week", "n": 1, "normalize": 1}, "normalize"),
        ({"$t": "pd.Interval", "left": 1, "right": 2, "closed": "up"}, "closed"),
    ],
)
def test_damaged_docs_raise_decode_error(doc: dict[str, Any], match: str) -> None:
    with pytest.raises(DecodeError, match=match):
        codec.decode(Encoded({"x": doc}, []))


def test_sparse_positions_are_checked() -> None:
    arr = pd.arrays.SparseArray([0.0, 1.0, 0.0, 2.0], fill_value=0.0)
    enc = codec.encode(arr)
    doc = json.loads(json.dumps(enc.doc))
    doc["n"] = 3  # a position beyond the length
    with pytest.raises(DecodeError, match="inside the length"):
        codec.decode(Encoded(doc, list(enc.buffers)))


def _family_params() -> list[Any]:
    import importlib.util

    from golden import families_pandas as fam

    out = []
    for name in fam.FAMILIES:
        need = fam.REQUIRES.get(name)
        floor = fam.MIN_PANDAS.get(name)
        buildable = (need is None or importlib.util.find_spec(need) is not None) and (
            floor is None
            or tuple(int(p) for p in pd.__version__.split(".")[:2])
            >= tuple(int(p) for p in floor.split("."))
        )
        out.append(pytest.param(name, buildable, id=name))
    return out


@pytest.mark.parametrize(("name", "buildable"), _family_params())
def test_golden_pandas_families_round_trip_on_this_stack(name: str, buildable: bool) -> None:
    # Each family of tests/golden/families_pandas.py is exact here when this stack can build
    # it; when it cannot, building it fails the way the family module documents.
    from golden import families_pandas as fam

    if not buildable:
        with pytest.raises(ImportError):
            fam.FAMILIES[name]()
        return
    check(fam.FAMILIES[name]())


# -- index frequencies without a parseable name ---------------------------------------------


@pytest.mark.parametrize(
    "freq",
    [
        pd.DateOffset(months=1, hours=3),
        pd.offsets.CustomBusinessDay(holidays=["2024-01-03", "2024-01-09"]),
        pd.offsets.BusinessHour(start="10:00", end="16:00"),
    ],
    ids=repr,
)
def test_an_index_frequency_without_a_name_round_trips_as_an_offset(freq: Any) -> None:
    idx = pd.date_range("2024-01-01", periods=6, freq=freq, tz="Europe/London", name="t")
    s = pd.Series(np.arange(6.0), index=idx)
    back = Codec().loads(b"".join(Codec().dumps({"s": s})))["s"]
    pd.testing.assert_series_equal(back, s, check_freq=True)
    assert back.index.freq == freq
    assert type(back.index.freq) is type(freq)


def test_a_named_frequency_is_still_stored_by_name_and_an_unnamed_one_as_an_offset() -> None:
    named = Codec().encode(pd.date_range("2024-01-01", periods=3, freq="15min")).doc
    unnamed = Codec().encode(pd.date_range("2024-01-01", periods=3, freq=pd.DateOffset(days=2)))
    assert named["freq"] == "15min"  # what every earlier release reads
    assert unnamed.doc["freq"]["cls"] == "DateOffset"
