"""Golden-corpus families for the pandas types of issue 9 (collected by the golden generator).

Each family returns a deterministic state dict. ``FAMILIES`` maps its name to the builder.
``REQUIRES`` names what a family needs beyond pandas: a stack without it cannot *write* that
family (the generator runs on the stack that has it); a reader without it gets the documented
DecodeError instead of the values. ``MIN_PANDAS`` gives the oldest pandas that can represent a
family (python-storage strings with NaN semantics need pandas 2.3).
"""

from __future__ import annotations

import datetime as dt
import inspect
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd

_HAS_NA_VALUE = "na_value" in inspect.signature(pd.StringDtype).parameters


def _string_dtype(storage: str, na: str) -> Any:
    if _HAS_NA_VALUE:
        return pd.StringDtype(storage, na_value=np.nan if na == "nan" else pd.NA)
    if na == "NA":
        return pd.StringDtype(storage)
    if storage == "pyarrow":
        return pd.StringDtype("pyarrow_numpy")
    raise ImportError("python-storage strings with NaN semantics need pandas >= 2.3")


_ITEMS = ["EURUSD", None, "", "GBPUSD", "ü€😀", "x" * 70]


def _strings(storage: str, na: str) -> Callable[[], dict[str, Any]]:
    def build() -> dict[str, Any]:
        dtype = _string_dtype(storage, na)
        values = pd.array(_ITEMS, dtype=dtype)
        index = pd.Index(pd.array([f"t{i}" for i in range(len(_ITEMS))], dtype=dtype), name="k")
        df = pd.DataFrame({"sym": values, "px": np.linspace(1.0, 2.0, len(_ITEMS))}, index=index)
        df.columns = pd.Index(pd.array(["sym", "px"], dtype=dtype))
        cats = pd.Index(pd.array(["lo", "hi"], dtype=dtype))
        return {
            "values": values,
            "series": pd.Series(values, index=index, name="sym"),
            "frame": df,
            "row": df.iloc[-1],
            "categorical": pd.Categorical.from_codes(
                [0, 1, -1, 0], dtype=pd.CategoricalDtype(cats)
            ),
            "multi": pd.MultiIndex.from_arrays(
                [pd.array(["a", "a", "b"], dtype=dtype), [1, 2, 1]], names=["pair", "leg"]
            ),
        }

    return build


def strings_object() -> dict[str, Any]:
    plain = np.array(["EURUSD", "GBPUSD", "é"], dtype=object)
    with_none = np.array(["a", None, "c"], dtype=object)
    with_nan = np.array(["a", np.nan, "c"], dtype=object)
    return {
        "series": pd.Series(plain, dtype=object, name="sym"),
        "index": pd.Index(with_none, dtype=object, name="k"),
        "nan": pd.Series(with_nan, dtype=object),
        "mixed": pd.Series(["a", 1, None], dtype=object),
    }


def arrow_dtypes() -> dict[str, Any]:
    import pyarrow as pa

    def arr(values: list[Any], typ: Any) -> Any:
        return pd.array(values, dtype=pd.ArrowDtype(typ))

    ts = [dt.datetime(2024, 1, 1, 9, tzinfo=dt.UTC), None]
    df = pd.DataFrame(
        {
            "i8": arr([1, None], pa.int8()),
            "u64": arr([2**64 - 1, None], pa.uint64()),
            "f32": arr([1.5, None], pa.float32()),
            "b": arr([True, None], pa.bool_()),
            "ts": arr(ts, pa.timestamp("us", tz="Europe/London")),
            "dict": pd.Series(
                pd.arrays.ArrowExtensionArray(pa.array(["EURUSD", "EURUSD"]).dictionary_encode())
            ),
            "list": arr([[1, 2], None], pa.list_(pa.int64())),
            "struct": arr(
                [{"bid": 1.0, "ask": 1.1}, None],
                pa.struct([("bid", pa.float64()), ("ask", pa.float64())]),
            ),
            "dec": arr([Decimal("1.23"), None], pa.decimal128(9, 2)),
            "s": arr(["a", None], pa.string()),
            "ls": arr(["b", "c"], pa.large_string()),
            "bin": arr([b"\x00\xff", None], pa.binary()),
        },
        index=pd.Index(arr(["r0", "r1"], pa.string()), name="row"),
    )
    df.columns = pd.Index(list(df.columns), dtype=object)  # not the stack's default labels
    return {"frame": df, "column": df["ts"], "index": df.index}


def intervals() -> dict[str, Any]:
    px = pd.Series(np.linspace(1.0, 2.0, 12), name="px")
    return {
        "interval": pd.Interval(1.5, 2.5, closed="left"),
        # Explicit units and object-dtype labels: a family's value must not depend on the
        # stack that builds it (pandas 2 and 3 infer different units and string dtypes).
        "ts_interval": pd.Interval(
            pd.Timestamp("2024-01-01", tz="UTC").as_unit("ns"),
            pd.Timestamp("2024-01-02", tz="UTC").as_unit("ns"),
        ),
        "index": pd.interval_range(0, 5, closed="both", name="bucket"),
        "column": pd.Series(
            pd.arrays.IntervalArray.from_arrays([0.0, 1.0, np.nan], [1.0, 2.5, np.nan])
        ),
        "cut": pd.cut(px, bins=3),
    }


def sparse() -> dict[str, Any]:
    return {
        "float": pd.arrays.SparseArray([0.0, np.nan, 1.5, np.nan], fill_value=np.nan),
        "int_block": pd.arrays.SparseArray([0, 0, 3, 4, 0], fill_value=0, kind="block"),
        "frame": pd.DataFrame(
            {"s": pd.arrays.SparseArray([False, True, False])},
            columns=pd.Index(["s"], dtype=object),
        ),
    }


def offsets() -> dict[str, Any]:
    o = pd.offsets
    return {
        "bday": o.BusinessDay(2),
        "month_end": o.MonthEnd(normalize=True),
        "week": o.Week(weekday=1),
        "cbd": o.CustomBusinessDay(
            holidays=["2024-12-25", "2024-12-26"], weekmask="Mon Tue Wed Thu Fri"
        ),
        "date_offset": o.DateOffset(months=1, hours=3),
        "business_hour": o.BusinessHour(start="08:00", end="16:30"),
        "quarter": o.QuarterEnd(startingMonth=3),
        "fy": o.FY5253(weekday=4, startingMonth=12, variation="last"),
        "minute": o.Minute(15),
        "day": o.Day(2),
        "schedule": [o.BusinessDay(), o.MonthBegin(-1)],
    }


FAMILIES: dict[str, Callable[[], dict[str, Any]]] = {
    "pandas_strings_python_na": _strings("python", "NA"),
    "pandas_strings_python_nan": _strings("python", "nan"),
    "pandas_strings_pyarrow_na": _strings("pyarrow", "NA"),
    "pandas_strings_pyarrow_nan": _strings("pyarrow", "nan"),
    "pandas_strings_object": strings_object,
    "pandas_arrow_dtypes": arrow_dtypes,
    "pandas_intervals": intervals,
    "pandas_sparse": sparse,
    "pandas_offsets": offsets,
}

REQUIRES: dict[str, str] = {
    "pandas_strings_pyarrow_na": "pyarrow",
    "pandas_strings_pyarrow_nan": "pyarrow",
    "pandas_arrow_dtypes": "pyarrow",
}

MIN_PANDAS: dict[str, str] = {"pandas_strings_python_nan": "2.3"}
