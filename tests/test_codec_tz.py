"""Time zones of every library a trader's code uses: zoneinfo, datetime.timezone, pytz, dateutil.

Each comes back as the class it went in (a pytz zone as that pytz zone, a localized pytz tzinfo
as the same instance, a dateutil zone as dateutil's), in datetimes, Timestamps, DatetimeIndex
and tz-aware columns. A zone library missing at load is a DecodeError naming the package.
Stored zone names are validated before any library sees them (issue 10, item 12).

pytz tests run where pytz is installed (the old and arrow CI stacks); the missing-library
behaviour runs everywhere, with the library blocked in a child process.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import subprocess
import sys
from typing import Any

import hypothesis.extra.dateutil as hdateutil
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from statevault.codec import Codec, Encoded
from statevault.errors import DecodeError, SerializationError, UnsupportedTypeError

from strategies import assert_same, round_trips

codec = Codec()
HAS_PYTZ = importlib.util.find_spec("pytz") is not None
needs_pytz = pytest.mark.skipif(not HAS_PYTZ, reason="pytz is not installed on this stack")


def check(value: Any) -> list[Any]:
    outs = round_trips(codec, value)
    for out in outs:
        assert_same(value, out)
    return outs


def decode_doc(doc: Any) -> Any:
    return codec.decode(Encoded(json.loads(json.dumps(doc)), []))


def run_child(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)


# --- dateutil (a pandas 3 dependency: present on every stack) ------------------------------

tzd: Any = pytest.importorskip("dateutil.tz")


def test_dateutil_zones_come_back_as_dateutil() -> None:
    london = tzd.gettz("Europe/London")
    values = {
        "utc": tzd.tzutc(),
        "utc_dt": dt.datetime(2024, 1, 2, tzinfo=tzd.UTC),
        "offset": tzd.tzoffset("BRST", -10800),
        "offset_us": tzd.tzoffset(None, dt.timedelta(hours=1, microseconds=5)),
        "zone": london,
        "fold": dt.datetime(2024, 10, 27, 1, 30, fold=1, tzinfo=london),
    }
    for out in check(values):
        assert out["utc"] is tzd.UTC
        assert out["zone"] is london  # gettz caches: the same object
        assert out["fold"].utcoffset() == dt.timedelta(0)
    assert codec.encode(london).doc == {"$t": "tz.dateutil.file", "key": "Europe/London"}


def test_dateutil_tzlocal_and_rules_are_refused_with_the_conversion() -> None:
    for tz in (tzd.tzlocal(), tzd.tzstr("EST5EDT"), tzd.tzrange("EST", -18000)):
        with pytest.raises(UnsupportedTypeError, match=r"gettz\('.*'\) or zoneinfo") as caught:
            codec.encode({"t": dt.datetime(2024, 1, 1, tzinfo=tz)})
        assert caught.value.path == "state['t'].tzinfo"
        assert "register_type(" not in str(caught.value)


@settings(max_examples=60, deadline=None)
@given(when=st.datetimes(timezones=hdateutil.timezones()), fold=st.sampled_from([0, 1]))
def test_dateutil_property(when: dt.datetime, fold: int) -> None:
    check(when.replace(fold=fold))


# --- zoneinfo and datetime.timezone ---------------------------------------------------------


@settings(max_examples=80, deadline=None)
@given(
    when=st.datetimes(
        min_value=dt.datetime(1900, 1, 1),
        max_value=dt.datetime(2100, 1, 1),
        timezones=st.timezones(),
        allow_imaginary=True,
    ),
    fold=st.sampled_from([0, 1]),
)
def test_zoneinfo_property_with_folds(when: dt.datetime, fold: int) -> None:
    value = when.replace(fold=fold)
    for out in check(value):
        assert out.tzinfo is value.tzinfo  # ZoneInfo("x") is cached: the same object
        assert out.utcoffset() == value.utcoffset()


@pytest.mark.parametrize(
    "key",
    [
        "X/Y",  # would make zoneinfo import tzdata.zoneinfo.X
        "Europe/../Europe/London",
        "../../etc/passwd",
        "/etc/localtime",
        "Europe//London",
        "Europe/London/",
        "",
        "a" * 300,
        "zone.tab",
        "Europe/Nowhere",
        5,
        None,
    ],
)
def test_stored_zone_names_are_validated(key: Any) -> None:
    for tag, field in (("zoneinfo", "key"), ("tz.dateutil.file", "key"), ("tz.pytz", "zone")):
        if tag == "tz.pytz" and not HAS_PYTZ:
            continue
        with pytest.raises(DecodeError) as caught:
            decode_doc({"when": {"$t": tag, field: key}})
        assert caught.value.path == "state['when']"


def test_a_stored_zone_name_never_chooses_an_import() -> None:
    # A fresh process, so nothing was imported before: the key is refused before zoneinfo
    # (or tzdata's resource loader) sees it.
    code = (
        "import sys\n"
        "from statevault.codec import Codec, Encoded\n"
        "from statevault.errors import DecodeError\n"
        "for key in ('X/Y', 'Europe/X', 'tzdata/zoneinfo'):\n"
        "    try:\n"
        "        Codec().decode(Encoded({'$t': 'zoneinfo', 'key': key}, []))\n"
        "    except DecodeError as e:\n"
        "        assert 'not known on this machine' in str(e), e\n"
        "    else:\n"
        "        raise SystemExit('loaded ' + key)\n"
        "bad = [m for m in sys.modules if m.startswith('tzdata.zoneinfo.')]\n"
        "assert not bad, bad\n"
        "print('ok')\n"
    )
    out = run_child(code)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_custom_tzinfo_suggests_zoneinfo_not_register_type() -> None:
    class Mine(dt.tzinfo):
        def utcoffset(self, d: dt.datetime | None) -> dt.timedelta:
            return dt.timedelta(hours=2)

        def dst(self, d: dt.datetime | None) -> dt.timedelta:
            return dt.timedelta(0)

    with pytest.raises(UnsupportedTypeError, match=r"zoneinfo.ZoneInfo\('Area/City'\)") as caught:
        codec.encode({"a": [dt.datetime(2024, 1, 1, tzinfo=Mine())]})
    assert caught.value.path == "state['a'][0].tzinfo"
    assert "register_type(" not in str(caught.value)


# --- a missing zone library is a clear error -------------------------------------------------


@pytest.mark.parametrize(
    ("doc", "package"),
    [
        ({"$t": "tz.pytz", "zone": "Europe/London"}, "pip install 'statevault[pytz]'"),
        ({"$t": "tz.pytz.fixed", "min": 60}, "pip install 'statevault[pytz]'"),
        ({"$t": "tz.dateutil.utc"}, "pip install 'statevault[dateutil]'"),
        ({"$t": "tz.dateutil.file", "key": "Europe/London"}, "pip install 'statevault[dateutil]'"),
    ],
)
def test_missing_zone_library_names_the_package(doc: dict[str, Any], package: str) -> None:
    lib = "pytz" if "pytz" in doc["$t"] else "dateutil"
    code = (
        "import sys, json, datetime as dt\n"
        f"sys.modules[{lib!r}] = None  # as if {lib} were not installed\n"
        f"sys.modules['{lib}.tz'] = None\n"
        "from statevault.codec import Codec\n"
        "from statevault.errors import DecodeError\n"
        "c = Codec()\n"
        f"doc = {{'pos': {{'opened': {{'$t': 'datetime', 'v': '2024-01-01T00:00:00', "
        f"'tz': {doc!r}}}}}}}\n"
        "data = b''.join(Codec().dumps(0))\n"
        "from statevault.codec import Encoded\n"
        "try:\n"
        "    c.decode(Encoded(doc, []))\n"
        "except DecodeError as e:\n"
        "    print(e.path); print(e)\n"
        "else:\n"
        "    raise SystemExit('decoded without the library')\n"
    )
    out = run_child(code)
    assert out.returncode == 0, out.stderr
    path, message = out.stdout.split("\n", 1)
    assert path == "state['pos']['opened'].tz"
    assert package in message
    assert "never swaps" in message


# --- pytz ------------------------------------------------------------------------------------


@needs_pytz
def test_pytz_zones_and_localized_datetimes_keep_their_tzinfo() -> None:
    import pytz

    london = pytz.timezone("Europe/London")
    new_york = pytz.timezone("America/New_York")
    summer = london.localize(dt.datetime(2024, 7, 1, 9, 0))
    values = {
        "utc": pytz.utc,
        "utc_dt": dt.datetime(2024, 1, 2, 3, 4, tzinfo=pytz.utc),
        "zone": london,
        "summer": summer,
        "dst": new_york.localize(dt.datetime(2024, 11, 3, 1, 30), is_dst=True),
        "std": new_york.localize(dt.datetime(2024, 11, 3, 1, 30), is_dst=False),
        "static": pytz.timezone("EST"),
        "fixed": pytz.FixedOffset(-330),
        "time": dt.time(9, 30, tzinfo=pytz.timezone("Asia/Tokyo")),
    }
    for out in check(values):
        assert out["utc"] is pytz.utc
        assert out["zone"] is london
        assert out["summer"].tzinfo is summer.tzinfo  # the localized instance itself
        assert out["summer"].tzinfo.zone == "Europe/London"
        assert out["summer"].utcoffset() == dt.timedelta(hours=1)
        assert out["dst"].tzinfo is values["dst"].tzinfo
        assert out["std"].utcoffset() == dt.timedelta(hours=-5)
        assert out["fixed"] is pytz.FixedOffset(-330)


@needs_pytz
@settings(max_examples=80, deadline=None)
@given(data=st.data())
def test_pytz_property_localized_with_dst_choice(data: st.DataObject) -> None:
    import hypothesis.extra.pytz as hpytz
    import pytz

    zone = data.draw(hpytz.timezones())
    naive = data.draw(
        st.datetimes(min_value=dt.datetime(1900, 1, 1), max_value=dt.datetime(2100, 1, 1))
    )
    is_dst = data.draw(st.booleans())
    try:
        value = zone.localize(naive, is_dst=is_dst) if hasattr(zone, "localize") else naive
    except (pytz.NonExistentTimeError, pytz.AmbiguousTimeError):
        value = zone.localize(naive)
    if value.tzinfo is None:
        value = value.replace(tzinfo=zone)
    for out in check({"when": value, "zone": zone}):
        assert out["when"].tzinfo is value.tzinfo
        assert out["zone"] is zone


@needs_pytz
def test_pytz_in_pandas_timestamps_indexes_and_columns() -> None:
    import pytz

    london = pytz.timezone("Europe/London")
    idx = pd.date_range("2024-03-30", periods=4, freq="D", tz=london)
    values = {
        "ts": pd.Timestamp("2024-07-01 09:00", tz=london),
        "idx": idx,
        # int labels: string labels on pyarrow stacks are the pandas strings work (issue 9)
        "col": pd.DataFrame({0: [1.0, 2.0, 3.0, 4.0], 1: idx}, index=idx),
        "utc": pd.Series(pd.date_range("2024-01-01", periods=2, tz=pytz.utc)),
    }
    for out in check(values):
        assert out["idx"].tz is london
        assert type(out["ts"].tz) is type(values["ts"].tz)


def test_pandas_named_zone_keeps_its_class() -> None:
    # pandas 2.x turns tz="Europe/London" into a pytz zone, pandas 3 into a ZoneInfo: either
    # way the class that went in comes back (on pandas 2.2 this is the pytz path).
    idx = pd.date_range("2024-03-30", periods=3, freq="h", tz="Europe/London")
    if int(pd.__version__.split(".")[0]) < 3:
        assert type(idx.tz).__module__.startswith("pytz")  # what pandas 2.x users get
    values = {"idx": idx, "ts": idx[1], "s": pd.Series(idx)}
    for out in check(values):
        assert type(out["idx"].tz) is type(idx.tz)
        assert out["idx"].tz == idx.tz


def test_pandas_dateutil_zone() -> None:
    idx = pd.date_range("2024-10-26", periods=3, freq="D", tz="dateutil/Europe/London")
    for out in check({"idx": idx, "ts": idx[2]}):
        assert type(out["idx"].tz) is type(idx.tz)


# --- error paths carry .path -----------------------------------------------------------------


def test_cycle_and_depth_errors_carry_the_path() -> None:
    cycle: list[Any] = []
    cycle.append(cycle)
    with pytest.raises(SerializationError, match="reference cycle") as caught:
        codec.encode({"pairs": {"EURUSD": cycle}})
    assert caught.value.path.startswith("state['pairs']['EURUSD'][0][0]")
    deep: Any = 0
    for _ in range(400):
        deep = {"x": deep}
    with pytest.raises(SerializationError, match="nests deeper") as caught:
        codec.encode({"model": deep}, root="state['bot']")
    assert caught.value.path.startswith("state['bot']['model']['x']")


def _any_zone() -> st.SearchStrategy[Any]:
    zones = [st.timezones(), hdateutil.timezones(), st.just(dt.UTC)]
    if HAS_PYTZ:
        import hypothesis.extra.pytz as hpytz

        zones.append(hpytz.timezones())
    return st.one_of(zones)


@settings(max_examples=60, deadline=None)
@given(
    zone=_any_zone(),
    stamps=st.lists(st.integers(-(2**52), 2**52), min_size=1, max_size=6),
    unit=st.sampled_from(["s", "ms", "us", "ns"]),
)
def test_pandas_property_any_zone_library(zone: Any, stamps: list[int], unit: str) -> None:
    import numpy as np

    raw = np.array(stamps, dtype=np.int64) // {"s": 10**9, "ms": 10**6, "us": 10**3, "ns": 1}[unit]
    idx = pd.DatetimeIndex(raw.view(f"M8[{unit}]")).tz_localize("UTC").tz_convert(zone)
    value = {"idx": idx, "ts": idx[0], "col": pd.Series(idx, name=0)}
    for out in check(value):
        assert type(out["idx"].tz) is type(idx.tz)
        assert out["ts"].utcoffset() == idx[0].utcoffset()
