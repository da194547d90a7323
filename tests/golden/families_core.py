"""Golden families of the standard library, numpy and time zone values.

Each entry builds one state (a dict) holding every kind of value of its family. The values
are frozen once their file is committed: never change an entry (that would make the old file
"wrong"); add a new family instead. A family whose library is missing on this stack raises
ImportError from its builder (naming the module), and the golden test then checks that loading
its file fails with a DecodeError naming the package to install.
"""

from __future__ import annotations

import datetime as dt
import importlib
import pathlib
import uuid
import zoneinfo
from collections import OrderedDict
from collections.abc import Callable
from decimal import Decimal
from typing import Any

__all__ = ["FAMILIES", "REQUIRES"]

UTC = dt.UTC


def builtin() -> dict[str, Any]:
    return {
        "none": None,
        "bools": [True, False],
        "ints": [0, -1, 2**63 - 1, -(2**63), 2**64 - 1, 2**200, -(2**90)],
        "floats": [0.0, -0.0, 1.5, float("inf"), float("-inf"), float("nan"), 5e-324],
        "complex": complex(1.5, -2.0),
        "str": "EURUSD \u00e9\U0001f600",
        "surrogate": "\ud800",
        "bytes": b"\x00\x01\xff",
        "big_bytes": bytes(range(256)) * 3,
        "bytearray": bytearray(b"abc"),
        "tuple": (1, "a", (2.5,)),
        "set": {1, 2, 3},
        "frozenset": frozenset({"x", "y"}),
        "odict": OrderedDict([("b", 1), ("a", 2)]),
        "non_str_keys": {1: "one", (2, "t"): "pair", None: 0},
        "dollar_t": {"$t": "not a tag", "v": 1},
        "range": range(2, 20, 3),
        "decimal": [Decimal("1.10"), Decimal("-0"), Decimal("NaN"), Decimal("sNaN42")],
        "date": dt.date(2024, 2, 29),
        "time": dt.time(13, 30, 0, 250),
        "timedelta": dt.timedelta(days=-1, seconds=5, microseconds=7),
        "naive": dt.datetime(2024, 3, 10, 2, 30, 0, 123456),
        "naive_fold": dt.datetime(2024, 11, 3, 1, 30, fold=1),
        "uuid": uuid.UUID("12345678-1234-5678-1234-567812345678"),
        "paths": [pathlib.PurePosixPath("/var/state/bot.state"), pathlib.PureWindowsPath("C:\\x")],
        "nested": {"pair_states": {"EURUSD-GBPUSD": {"model": [1.0, {"beta": 0.87}]}}},
    }


def zoneinfo_zones() -> dict[str, Any]:
    london = zoneinfo.ZoneInfo("Europe/London")
    new_york = zoneinfo.ZoneInfo("America/New_York")
    return {
        "utc_singleton": dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC),
        "fixed": dt.datetime(2024, 1, 2, tzinfo=dt.timezone(dt.timedelta(hours=-5, minutes=-30))),
        "named_fixed": dt.timezone(dt.timedelta(hours=1), "CET"),
        "named_utc": dt.timezone(dt.timedelta(0), "UTC"),
        "london_summer": dt.datetime(2024, 7, 1, 9, 0, tzinfo=london),
        "new_york_fold0": dt.datetime(2024, 11, 3, 1, 30, tzinfo=new_york),
        "new_york_fold1": dt.datetime(2024, 11, 3, 1, 30, fold=1, tzinfo=new_york),
        "zone": zoneinfo.ZoneInfo("Asia/Tokyo"),
        "time_tz": dt.time(8, 0, tzinfo=dt.timezone(dt.timedelta(hours=9))),
    }


def numpy_arrays() -> dict[str, Any]:
    np: Any = importlib.import_module("numpy")
    return {
        "f8": np.arange(6, dtype="<f8").reshape(2, 3),
        "fortran": np.asfortranarray(np.arange(6, dtype=np.int32).reshape(2, 3)),
        "big_endian": np.array([1, -2, 3], dtype=">i4"),
        "bool": np.array([True, False]),
        "c16": np.array([1 + 2j, -0.0j]),
        "m8": np.array([1, 2], dtype="m8[ms]"),
        "M8": np.array(["2024-01-01T00:00", "NaT"], dtype="M8[ns]"),
        "U": np.array(["ab", "\u00e9"], dtype="<U3"),
        "S": np.array([b"x", b"yz"], dtype="S2"),
        "V": np.zeros(2, dtype="V3"),
        "empty": np.empty((0, 4), dtype=np.float32),
        "zero_d": np.array(7, dtype=np.uint16),
        "objects": np.array([1, "a", None, (2, 3)], dtype=object),
        "scalars": [
            np.float32(1.5),
            np.int8(-3),
            np.uint64(2**64 - 1),
            np.bool_(True),
            np.datetime64("2024-01-01", "D"),
            np.timedelta64(5, "s"),
            np.str_("s"),
            np.bytes_(b"b"),
            np.float64("nan"),
            np.longlong(7),
        ],
    }


def numpy_structured() -> dict[str, Any]:
    np: Any = importlib.import_module("numpy")
    rates_dtype = np.dtype(
        [
            ("time", "<i8"),
            ("open", "<f8"),
            ("high", "<f8"),
            ("low", "<f8"),
            ("close", "<f8"),
            ("tick_volume", "<u8"),
            ("spread", "<i4"),
            ("real_volume", "<u8"),
        ]
    )
    rates = np.array(
        [
            (1704067200, 1.1037, 1.1045, 1.1031, 1.1040, 812, 12, 0),
            (1704067260, 1.1040, 1.1049, 1.1038, 1.1047, 640, 11, 5),
        ],
        dtype=rates_dtype,
    )
    nested = np.dtype(
        [("id", "u2"), ("pos", [("x", "<f4"), ("y", ">f8")]), ("hist", "<i2", (2, 3))],
        align=True,
    )
    nested_arr = np.zeros(3, dtype=nested)
    nested_arr["id"] = [1, 2, 3]
    nested_arr["pos"]["y"] = [0.5, -1.5, 2.5]
    nested_arr["hist"][1] = [[1, 2, 3], [4, 5, 6]]
    titled = np.dtype({"names": ["a", "b"], "formats": ["<i4", "<M8[s]"], "titles": ["A", None]})
    gapped = np.dtype({"names": ["p", "q"], "formats": ["u1", "<f8"], "offsets": [8, 0]})
    recs = np.rec.array(
        [(1, 2.5, b"ab"), (2, -1.0, b"c")], dtype=[("n", "<i4"), ("v", "<f8"), ("s", "S2")]
    )
    return {
        "mt5_rates": rates,
        "mt5_row": rates[1],
        "recarray": recs,
        "record_row": recs[0],
        "nested_aligned": nested_arr,
        "nested_row": nested_arr[1],
        "titled": np.array([(1, 0), (2, 60)], dtype=titled),
        "gapped": np.zeros(2, dtype=gapped),
        "void_scalar": np.void(b"\x00\xffab"),
    }


def pytz_zones() -> dict[str, Any]:
    pytz: Any = importlib.import_module("pytz")
    london = pytz.timezone("Europe/London")
    new_york = pytz.timezone("America/New_York")
    return {
        "utc": pytz.utc,
        "utc_datetime": dt.datetime(2024, 1, 2, 3, 4, tzinfo=pytz.utc),
        "zone": london,
        "localized_summer": london.localize(dt.datetime(2024, 7, 1, 9, 0)),
        "localized_winter": london.localize(dt.datetime(2024, 1, 1, 9, 0)),
        "ambiguous_dst": new_york.localize(dt.datetime(2024, 11, 3, 1, 30), is_dst=True),
        "ambiguous_std": new_york.localize(dt.datetime(2024, 11, 3, 1, 30), is_dst=False),
        "static": pytz.timezone("EST"),
        "fixed": pytz.FixedOffset(-330),
        "fixed_datetime": dt.datetime(2024, 5, 5, tzinfo=pytz.FixedOffset(90)),
    }


def dateutil_zones() -> dict[str, Any]:
    tz: Any = importlib.import_module("dateutil.tz")
    london = tz.gettz("Europe/London")
    return {
        "utc": tz.tzutc(),
        "utc_datetime": dt.datetime(2024, 1, 2, tzinfo=tz.UTC),
        "offset": tz.tzoffset("BRST", -10800),
        "offset_unnamed": dt.datetime(2024, 1, 2, tzinfo=tz.tzoffset(None, 3600)),
        "zone": london,
        "summer": dt.datetime(2024, 7, 1, 9, 0, tzinfo=london),
        "fold1": dt.datetime(2024, 10, 27, 1, 30, fold=1, tzinfo=london),
    }


FAMILIES: dict[str, Callable[[], dict[str, Any]]] = {
    "builtin": builtin,
    "tz_zoneinfo": zoneinfo_zones,
    "numpy_arrays": numpy_arrays,
    "numpy_structured": numpy_structured,
    "tz_pytz": pytz_zones,
    "tz_dateutil": dateutil_zones,
}

REQUIRES: dict[str, str] = {"tz_pytz": "pytz", "tz_dateutil": "python-dateutil"}
"""Families whose library is optional: the package a load without it must name."""
