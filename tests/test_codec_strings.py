"""pandas strings of every storage and NA semantics, as buffers, exactly, on every stack.

The stack decides which string kinds exist: pandas 2.2 without pyarrow has python/NA only;
pandas 3 with pyarrow has all four. ``STRING_KINDS`` lists what this stack can build and every
property test draws from it; CI runs this file on all three stacks. The clear-error paths for
a missing pyarrow run in a subprocess with pyarrow blocked, so they run everywhere.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings

from statevault.codec import Codec, Encoded
from statevault.errors import DecodeError

from strategies import assert_same, round_trips
from strategies_pandas import (
    HAS_NA_VALUE,
    HAS_PYARROW,
    STRING_KINDS,
    hpd_string_frames,
    object_string_arrays,
    string_arrays,
    string_dtype,
    string_frames,
    string_indexes,
)

SETTINGS = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])

codec = Codec()


def check(value: Any) -> None:
    for result in round_trips(codec, value):
        assert_same(value, result)
        if isinstance(value, pd.Series | pd.Index):
            assert result.dtype == value.dtype  # assert_same checks the array class too


@SETTINGS
@given(string_arrays())
def test_string_arrays_round_trip(arr: Any) -> None:
    check(arr)
    check(pd.Series(arr, name="sym"))


@SETTINGS
@given(object_string_arrays())
def test_object_string_arrays_round_trip(arr: Any) -> None:
    check(pd.Series(arr, dtype=object))
    check(pd.Index(arr, dtype=object))


@SETTINGS
@given(string_indexes())
def test_string_indexes_round_trip(idx: Any) -> None:
    check(idx)
    check(pd.Series(np.arange(len(idx), dtype=float), index=idx))


@SETTINGS
@given(string_frames())
def test_string_frames_round_trip(df: Any) -> None:
    check(df)


@SETTINGS
@given(hpd_string_frames())
def test_hypothesis_pandas_frames_round_trip(df: Any) -> None:
    check(df)


# --- the reported failures, as a trader meets them -----------------------------------------


def trades() -> pd.DataFrame:
    index = pd.date_range("2024-03-01 09:00", periods=240, freq="min", tz=ZoneInfo("Europe/London"))
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "pair": np.where(np.arange(240) % 2, "EURUSD", "GBPUSD"),
            "zscore": rng.standard_normal(240),
            "px": 1.1 + rng.standard_normal(240).cumsum() / 1000,
        },
        index=pd.Index(index, name="time"),
    )


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda df: df, id="string-labels"),
        pytest.param(lambda df: df.describe(), id="describe"),
        pytest.param(lambda df: df.groupby("pair").agg(["mean", "last"]), id="groupby-agg"),
        pytest.param(lambda df: df["px"].resample("5min").ohlc(), id="resample-ohlc"),
        pytest.param(lambda df: df.iloc[-1], id="iloc-row"),
        pytest.param(lambda df: df["pair"].astype("category"), id="categorical"),
        pytest.param(lambda df: df.set_index("pair", append=True), id="multiindex"),
        pytest.param(lambda df: df.astype({"pair": "string"}), id="dtype-string"),
        pytest.param(lambda df: df.reset_index().set_index("pair"), id="string-index"),
    ],
)
def test_reported_frames_round_trip_exactly(make: Any) -> None:
    value = make(trades())
    check(value)
    check({"pair_states": {"EURUSD-GBPUSD": {"model": value}}})


@pytest.mark.parametrize(("storage", "na"), STRING_KINDS)
def test_every_string_kind_of_this_stack(storage: str, na: str) -> None:
    dtype = string_dtype(storage, na)
    items = ["EURUSD", None, "", "ü€😀", "x" * 300] if storage == "pyarrow" else ["a\udc80", None]
    s = pd.Series(items, dtype=dtype, index=pd.Index(["a", "b", "c", "d", "e"][: len(items)]))
    check(s)
    df = pd.DataFrame({"s": s, "n": np.arange(len(s))})
    df.columns = pd.Index(["s", "n"], dtype=dtype)
    check(df)


def test_strings_travel_as_buffers_not_json_lists() -> None:
    n = 20_000
    s = pd.Series([f"sym{i}" for i in range(n)], dtype=object)
    for value in (s, s.astype("string"), pd.Index(s), s.astype(string_dtype(*STRING_KINDS[-1]))):
        encoded = codec.encode(value)
        text = json.dumps(encoded.doc)
        assert len(text) < 600, text[:200]
        assert sum(b.nbytes for b in encoded.buffers) >= n * 4


def test_object_column_of_mixed_values_stays_element_by_element() -> None:
    s = pd.Series(["a", 1, None, np.nan], dtype=object)
    check(s)
    assert "pd.Strings" not in json.dumps(codec.encode(s).doc)
    sub = pd.Series([np.str_("numpy str"), "plain"], dtype=object)  # str subclass: kept as is
    check(sub)
    assert "pd.Strings" not in json.dumps(codec.encode(sub).doc)
    negative_nan = pd.Series(["a", -np.nan], dtype=object)  # not the plain NaN bits
    check(negative_nan)


def _strings_doc(storage: str, na: str) -> Encoded:
    from statevault.codec._pd_strings import pack_strings

    offsets, data = pack_strings(["ab", "", "c"])
    doc = {
        "pairs": {
            "$t": "pd.Strings",
            "storage": storage,
            "na": na,
            "n": 3,
            "offsets": {"$t": "np.ndarray", "dtype": offsets.dtype.str, "shape": [4], "buf": 0},
            "data": 1,
        }
    }
    return Encoded(doc, [memoryview(offsets.tobytes()), memoryview(data)])


def test_python_nan_strings_need_pandas_2_3() -> None:
    # What pandas 3 without pyarrow writes for its default "str" dtype.
    enc = _strings_doc("python", "nan")
    if HAS_NA_VALUE:
        out = codec.decode(enc)["pairs"]
        assert out.dtype == pd.StringDtype("python", na_value=np.nan)
        assert out.tolist() == ["ab", "", "c"]
    else:  # pandas 2.2: no such dtype, and no silent swap to another one
        with pytest.raises(DecodeError, match=r"pandas>=2\.3") as info:
            codec.decode(enc)
        assert info.value.path == "state['pairs']"


@pytest.mark.parametrize(
    "doc",
    [
        {"offsets": [0, 2, 1, 3]},  # decreasing
        {"offsets": [0, 1, 2, 4]},  # beyond the data
        {"offsets": [1, 1, 2, 3]},  # not starting at zero
    ],
)
def test_damaged_offsets_raise_decode_error(doc: dict[str, Any]) -> None:
    enc = _strings_doc("object", "None")
    offsets = np.array(doc["offsets"], dtype=np.int32)
    enc.buffers[0] = memoryview(offsets.tobytes())
    with pytest.raises(DecodeError, match="offsets"):
        codec.decode(enc)


@pytest.mark.parametrize("n", [3, 300], ids=["sliced", "split"])  # both decode paths
def test_offset_inside_a_character_raises(n: int) -> None:
    enc = _strings_doc("object", "None")
    enc.doc["pairs"]["n"] = n
    enc.doc["pairs"]["offsets"]["shape"] = [n + 1]
    data = "é".encode() + b"a" * (n - 2)
    offsets = [0, 1, *range(2, n + 1)]  # the second item starts inside the "é"
    enc.buffers[0] = memoryview(np.array(offsets, dtype=np.int32).tobytes())
    enc.buffers[1] = memoryview(data)
    with pytest.raises(DecodeError, match="splits a character"):
        codec.decode(enc)


def _arrow_doc(offsets: list[int], data: bytes) -> Encoded:
    enc = _strings_doc("pyarrow", "NA")
    enc.doc["pairs"]["n"] = len(offsets) - 1
    enc.doc["pairs"]["offsets"]["shape"] = [len(offsets)]
    enc.buffers[0] = memoryview(np.array(offsets, dtype=np.int32).tobytes())
    enc.buffers[1] = memoryview(data)
    return enc


@pytest.mark.skipif(not HAS_PYARROW, reason="Arrow string storage needs pyarrow on this stack")
@pytest.mark.parametrize(
    ("offsets", "data", "match"),
    [
        ([0, 2, 1, 3], b"abc", "offsets"),  # decreasing, ASCII data: no UTF-8 check needed
        ([0, 1, 2, 4], b"abc", "offsets"),  # beyond the data
        ([0, 1, 3], "aé".encode(), None),  # valid non-ASCII: loads
        ([0, 1, 2, 3], "aé".encode(), "damaged"),  # an offset inside "é"
        ([0, 1, 2], b"a\xff", "damaged"),  # not UTF-8
        ([0, 3], "\ud800".encode("utf-8", "surrogatepass"), "damaged"),  # lone surrogate
    ],
)
def test_arrow_string_data_is_validated(offsets: list[int], data: bytes, match: str | None) -> None:
    enc = _arrow_doc(offsets, data)
    if match is None:
        out = codec.decode(enc)["pairs"]
        assert out.tolist() == ["a", "é"]
        return
    with pytest.raises(DecodeError, match=match):
        codec.decode(enc)


def _stored_offsets(enc: Encoded) -> Any:
    spec = enc.doc["$t"] == "pd.Strings" and enc.doc["offsets"]
    assert spec
    return np.dtype(spec["dtype"])


@pytest.mark.skipif(not HAS_PYARROW, reason="Arrow string storage needs pyarrow on this stack")
def test_arrow_strings_are_written_with_int32_offsets_and_load_as_large_string() -> None:
    import pyarrow as pa

    arr = pd.array(["ab", None, "", "é\ud7ff"], dtype=pd.StringDtype("pyarrow"))
    enc = codec.encode(arr)
    assert _stored_offsets(enc) == np.dtype("<i4")
    out = codec.decode(enc)
    assert_same(arr, out)
    assert out._pa_array.type == pa.large_string()  # the exact Arrow type, on every pandas


@pytest.mark.skipif(not HAS_PYARROW, reason="Arrow string storage needs pyarrow on this stack")
@pytest.mark.parametrize("width", ["<i8", ">i4", "<u2"])
def test_arrow_strings_with_other_offset_widths_still_load(width: str) -> None:
    # "<i8" is what statevault wrote for Arrow strings before the offsets went int32.
    import pyarrow as pa

    enc = _arrow_doc([0, 2, 2, 3], b"abc")
    enc.doc["pairs"]["offsets"]["dtype"] = width
    enc.buffers[0] = memoryview(np.array([0, 2, 2, 3], dtype=width).tobytes())
    out = codec.decode(enc)["pairs"]
    assert out.tolist() == ["ab", "", "c"]
    assert out._pa_array.type == pa.large_string()


@pytest.mark.skipif(not HAS_PYARROW, reason="Arrow string storage needs pyarrow on this stack")
@pytest.mark.parametrize("width", ["<i4", "<i8"])
@pytest.mark.parametrize("offsets", [[0, 2, 1, 3], [0, 1, 2, 4], [1, 1, 2, 3]])
def test_damaged_arrow_offsets_raise_in_both_widths(width: str, offsets: list[int]) -> None:
    enc = _arrow_doc(offsets, b"abc")
    enc.doc["pairs"]["offsets"]["dtype"] = width
    enc.buffers[0] = memoryview(np.array(offsets, dtype=width).tobytes())
    with pytest.raises(DecodeError, match="offsets"):
        codec.decode(enc)


@pytest.mark.skipif(not HAS_PYARROW, reason="Arrow string storage needs pyarrow on this stack")
def test_float_arrow_offsets_raise() -> None:
    enc = _arrow_doc([0, 1, 3], b"abc")
    enc.doc["pairs"]["offsets"]["dtype"] = "<f4"
    enc.buffers[0] = memoryview(np.array([0, 1, 3], dtype="<f4").tobytes())
    with pytest.raises(DecodeError, match="int array"):
        codec.decode(enc)


def test_unknown_string_kind_raises() -> None:
    with pytest.raises(DecodeError, match="unknown string kind"):
        codec.decode(_strings_doc("rust", "NA"))


def test_old_list_form_still_loads() -> None:
    doc = {"$t": "pd.StringArray", "storage": "python", "na": "NA", "v": ["a", None]}
    out = codec.decode(Encoded(doc, []))
    assert_same(pd.array(["a", None], dtype=pd.StringDtype("python")), out)


BLOCK_PYARROW = """
import importlib.abc, sys

class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "pyarrow" or name.startswith("pyarrow."):
            raise ImportError(f"blocked for this test: {name}")
        return None

sys.meta_path.insert(0, Block())
"""


def run_without_pyarrow(body: str) -> subprocess.CompletedProcess[str]:
    code = BLOCK_PYARROW + textwrap.dedent(body)
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )


def test_pyarrow_strings_without_pyarrow_name_the_extra() -> None:
    result = run_without_pyarrow(
        """
        import numpy as np
        import pandas as pd
        from statevault.codec import Codec, Encoded
        from statevault.codec._pd_strings import pack_strings
        from statevault.errors import DecodeError

        offsets, data = pack_strings(["EURUSD", "GBPUSD"])
        doc = {"pair_states": {"$t": "pd.Series",
            "index": {"$t": "pd.RangeIndex", "v": [0, 2, 1]},
            "v": {"$t": "pd.Strings", "storage": "pyarrow", "na": "nan", "n": 2,
                  "offsets": {"$t": "np.ndarray", "dtype": "<i4", "shape": [3], "buf": 0},
                  "data": 1}}}
        enc = Encoded(doc, [memoryview(offsets.tobytes()), memoryview(data)])
        try:
            Codec().decode(enc)
        except DecodeError as exc:
            print("PATH", exc.path)
            print("MSG", exc)
        # python storage still loads here
        s = pd.Series(["a", None], dtype="string")
        out = Codec().loads(b"".join(Codec().dumps(s)))
        assert out.dtype == s.dtype and out.isna().tolist() == [False, True]
        print("PYTHON OK")
        """
    )
    assert result.returncode == 0, result.stderr
    assert "PATH state['pair_states']" in result.stdout
    assert "statevault[arrow]" in result.stdout
    assert "PYTHON OK" in result.stdout


def test_arrow_array_without_pyarrow_names_the_extra() -> None:
    result = run_without_pyarrow(
        """
        from statevault.codec import Codec, Encoded
        from statevault.errors import DecodeError

        doc = {"prices": [1, {"$t": "pd.ArrowArray", "ipc": 0}]}
        try:
            Codec().decode(Encoded(doc, [memoryview(b"not read")]))
        except DecodeError as exc:
            print("PATH", exc.path)
            print("MSG", exc)
        """
    )
    assert result.returncode == 0, result.stderr
    assert "PATH state['prices'][1]" in result.stdout
    assert "statevault[arrow]" in result.stdout


@pytest.mark.parametrize(
    "items",
    [
        ["a\x00b", "", "é\x00", "\x00"],  # NUL bytes: the slicing path
        ["é", "ü€😀", "", "a"],  # multi-byte: the NUL-separated split path
        ["\ud800", "\udc00", "\ud800\udc00"],  # lone surrogates stay apart
        ["only"],
        [],
    ],
)
def test_nul_bytes_multibyte_and_surrogates(items: list[str]) -> None:
    arr = np.empty(len(items), dtype=object)
    arr[:] = items
    check(pd.Series(arr, dtype=object))
    check(pd.array(items, dtype=string_dtype("python", "NA")))
    for storage, na in STRING_KINDS:
        if storage == "pyarrow" and any("\ud800" <= c <= "\udfff" for s in items for c in s):
            continue  # Arrow strings are strict UTF-8: pyarrow refuses lone surrogates itself
        check(pd.Series(items, dtype=string_dtype(storage, na)))
