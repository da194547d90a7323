"""pandas ArrowDtype columns and indexes of any Arrow type, through Arrow IPC, exactly.

Needs pyarrow (CI runs the suite on a stack with it); the missing-pyarrow error path is tested
in test_codec_strings.py in a subprocess with pyarrow blocked, on every stack.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings

from statevault.codec import Codec, Encoded
from statevault.errors import DecodeError

from strategies import assert_same, round_trips

pa = pytest.importorskip("pyarrow")

from strategies_pandas import arrow_arrays  # noqa: E402 (needs pyarrow)

SETTINGS = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])

codec = Codec()


def check(value: Any) -> None:
    for result in round_trips(codec, value):
        assert_same(value, result)
        if isinstance(value, pd.Series | pd.Index):
            assert result.dtype == value.dtype
            assert type(result.array) is type(value.array)
            chunks = [len(c) for c in value.array.__arrow_array__().chunks]
            assert [len(c) for c in result.array.__arrow_array__().chunks] == chunks


@SETTINGS
@given(arrow_arrays())
def test_arrow_arrays_round_trip(arr: Any) -> None:
    check(arr)
    check(pd.Series(arr, name="x"))
    check(pd.DataFrame({"a": arr, "b": np.arange(len(arr))}))


@SETTINGS
@given(arrow_arrays(n=4))
def test_arrow_indexes_round_trip(arr: Any) -> None:
    if not arr.dtype.pyarrow_dtype.equals(pa.struct([])):
        check(pd.Index(arr, name="k"))


def frame() -> pd.DataFrame:
    t = pd.date_range("2024-01-01", periods=4, freq="h", tz="UTC")
    return pd.DataFrame(
        {
            "i": pd.array([1, None, 3, 4], dtype="Int64"),
            "f": [1.5, np.nan, 3.0, 4.0],
            "b": pd.array([True, None, False, True], dtype="boolean"),
            "s": ["EURUSD", None, "GBPUSD", "é"],
            "t": t,
            "d": [Decimal("1.10"), Decimal("2.5"), None, Decimal("-3")],
        }
    )


def test_convert_dtypes_pyarrow_backend() -> None:
    df = frame().convert_dtypes(dtype_backend="pyarrow")
    # (pandas 2.2 keeps the Decimal column as object)
    assert all(isinstance(df[c].dtype, pd.ArrowDtype) for c in "ifbs")
    check(df)
    check(df.set_index("s"))


def test_read_parquet_pyarrow_backend(tmp_path: Path) -> None:
    table = pa.table(
        {
            "ts": pa.array(
                [dt.datetime(2024, 1, 1, tzinfo=dt.UTC), None], pa.timestamp("us", "UTC")
            ),
            "sym": pa.array(["EURUSD", None]).dictionary_encode(),
            "px": pa.array([1.1, None], pa.float64()),
            "qty": pa.array([[1, 2], []], pa.list_(pa.int32())),
            "leg": pa.array([{"a": 1, "b": "x"}, None]),
            "dec": pa.array([Decimal("1.23"), None], pa.decimal128(9, 2)),
            "raw": pa.array([b"\x00\xff", b""], pa.binary()),
            "ls": pa.array(["a", "b"], pa.large_string()),
        }
    )
    path = tmp_path / "bars.parquet"
    import pyarrow.parquet as pq

    pq.write_table(table, path)
    df = pd.read_parquet(path, dtype_backend="pyarrow")
    check(df)
    check({"bars": df, "last": df.iloc[-1]})


def test_arrow_data_is_one_ipc_buffer() -> None:
    arr = pd.array(np.arange(100_000), dtype=pd.ArrowDtype(pa.int64()))
    enc = codec.encode(pd.Series(arr))
    assert len(json.dumps(enc.doc)) < 300
    assert sum(b.nbytes for b in enc.buffers) >= 800_000


def test_damaged_ipc_stream_raises_decode_error() -> None:
    arr = pd.array([1, 2, None], dtype=pd.ArrowDtype(pa.int64()))
    enc = codec.encode({"x": arr})
    good = bytes(enc.buffers[0])
    for bad in (good[:-20], b"\x00" * len(good), b""):
        with pytest.raises(DecodeError) as info:
            codec.decode(Encoded(enc.doc, [memoryview(bad)]))
        assert info.value.path == "state['x']"


def test_ipc_stream_of_two_columns_is_refused() -> None:
    table = pa.table({"v": [1], "w": [2]})
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as w:
        w.write_table(table)
    doc = {"$t": "pd.ArrowArray", "ipc": 0}
    with pytest.raises(DecodeError, match="one-column"):
        codec.decode(Encoded(doc, [memoryview(sink.getvalue())]))
