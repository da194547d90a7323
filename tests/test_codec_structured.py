"""numpy structured and record arrays: MetaTrader5's rates, np.recarray, np.void rows, nested,
aligned, titled and gapped dtypes, subarray fields; raw buffers plus a JSON field description.
"""

from __future__ import annotations

import json
from typing import Any

import hypothesis.extra.numpy as hnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from statevault.codec import Codec, Encoded
from statevault.errors import DecodeError, UnsupportedTypeError

from strategies import assert_same, round_trips

codec = Codec()

# MetaTrader5's copy_rates_* result dtype (mt5.copy_rates_from_pos(...).dtype)
MT5_RATES = np.dtype(
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


def check(value: Any) -> list[Any]:
    outs = round_trips(codec, value)
    for out in outs:
        assert_same(value, out)
    return outs


def rates(n: int = 5) -> Any:
    arr = np.zeros(n, dtype=MT5_RATES)
    arr["time"] = 1704067200 + 60 * np.arange(n)
    arr["open"] = 1.1 + np.arange(n) / 1000
    arr["close"] = arr["open"] + 0.0003
    arr["tick_volume"] = 2**64 - 1
    arr["spread"] = -3
    return arr


def test_mt5_rates_round_trip_as_one_buffer() -> None:
    arr = rates()
    enc = codec.encode(arr)
    assert enc.doc["dtype"] == {
        "names": list(MT5_RATES.names),
        "formats": ["<i8", "<f8", "<f8", "<f8", "<f8", "<u8", "<i4", "<u8"],
        "offsets": [0, 8, 16, 24, 32, 40, 48, 52],
        "itemsize": 60,
    }
    assert [b.nbytes for b in enc.buffers] == [arr.nbytes]
    for out in check({"rates": arr, "last_bar": arr[-1]}):
        assert type(out["last_bar"]) is np.void
        assert out["last_bar"]["spread"] == -3
        assert out["rates"]["close"].tolist() == arr["close"].tolist()


def test_record_arrays_and_rows_keep_their_types() -> None:
    rec = rates(3).view(np.recarray)
    for out in check({"rec": rec, "row": rec[1], "plain_view": rec.view(np.ndarray)}):
        assert type(out["rec"]) is np.recarray
        assert type(out["row"]) is np.record
        assert out["rec"].close[2] == rec.close[2]
        assert out["plain_view"].dtype.type is np.record


def test_nested_aligned_titled_gapped_and_subarray_fields() -> None:
    inner = np.dtype([("x", "<f4"), ("flag", "?")], align=True)
    dtype = np.dtype(
        {
            "names": ["id", "pos", "hist", "when", "sym"],
            "formats": ["u2", inner, ("<i2", (2, 3)), "<M8[ms]", "U6"],
            "titles": ["Identifier", None, None, "Timestamp", None],
        },
        align=True,
    )
    assert dtype.isalignedstruct
    arr = np.zeros((2, 2), dtype=dtype)
    arr["id"] = [[1, 2], [3, 4]]
    arr["hist"][1, 0] = [[1, -2, 3], [4, 5, -6]]
    arr["sym"] = "EURUSD"
    arr["when"] = np.datetime64("2024-01-01T00:00:00.125")
    gapped = np.dtype({"names": ["p", "q"], "formats": [">u4", ">f8"], "offsets": [12, 0]})
    values = {
        "nested": arr,
        "fortran": np.asfortranarray(arr),
        "row": arr[1, 1],
        "gapped": np.array([(1, 2.5)], dtype=gapped),
        "empty": np.zeros(0, dtype=dtype),
        "void": np.void(b"\x00\xffab"),
        "voids": np.zeros(3, dtype="V7"),
    }
    for out in check(values):
        assert out["nested"].dtype.isalignedstruct
        assert out["nested"].dtype.fields["id"][2] == "Identifier"
        assert out["gapped"].dtype.itemsize == 16
        assert out["fortran"].flags.f_contiguous


def test_object_fields_are_refused_with_the_fix() -> None:
    arr = np.zeros(2, dtype=[("px", "f8"), ("note", "O")])
    with pytest.raises(UnsupportedTypeError, match="object fields") as caught:
        codec.encode({"book": arr})
    assert caught.value.path == "state['book']"
    assert "arr.dtype.names" in str(caught.value)
    with pytest.raises(UnsupportedTypeError, match="object fields"):
        codec.encode({"row": arr[0]})


def test_the_description_is_data_never_code() -> None:
    doc = codec.encode(rates(1)).doc
    text = json.dumps(doc)
    assert "descr" not in text  # no repr or pickled dtype
    assert "numpy." not in text
    assert isinstance(doc["dtype"], dict)


def _struct_doc(dtype_desc: Any, nbytes: int = 8) -> Any:
    return Encoded(
        {"$t": "np.ndarray", "dtype": dtype_desc, "shape": [1], "buf": 0},
        [memoryview(bytearray(nbytes))],
    )


@pytest.mark.parametrize(
    "desc",
    [
        {"names": ["a"], "formats": ["<f8"], "offsets": [0]},  # no itemsize
        {"names": ["a"], "formats": ["<f8"], "offsets": [0], "itemsize": 8, "eval": 1},
        {"names": ["a", "a"], "formats": ["<f4", "<f4"], "offsets": [0, 4], "itemsize": 8},
        {"names": ["a"], "formats": ["|O"], "offsets": [0], "itemsize": 8},
        {"names": ["a"], "formats": ["<f8"], "offsets": [4], "itemsize": 8},  # past the end
        {"names": ["a"], "formats": ["<f8"], "offsets": [-1], "itemsize": 8},
        {"names": ["a"], "formats": ["<f8"], "offsets": [0], "itemsize": 2**40},
        {"names": [1], "formats": ["<f8"], "offsets": [0], "itemsize": 8},
        {"names": ["a"], "formats": ["numpy.float64"], "offsets": [0], "itemsize": 8},
        {"names": ["a"], "formats": [{"sub": "<f8", "shape": []}], "offsets": [0], "itemsize": 8},
        {"names": ["a"], "formats": [["<f8"]], "offsets": [0], "itemsize": 8},
        {"names": [], "formats": [], "offsets": [], "itemsize": 0},
        {"names": ["a"], "formats": ["<f8"], "offsets": [0], "itemsize": 8, "titles": [3]},
    ],
)
def test_damaged_descriptions_are_decode_errors(desc: Any) -> None:
    with pytest.raises(DecodeError):
        codec.decode(_struct_doc(desc))


def test_hostile_nesting_is_bounded() -> None:
    desc: Any = "<f8"
    for _ in range(40):
        desc = {"names": ["a"], "formats": [desc], "offsets": [0], "itemsize": 8}
    with pytest.raises(DecodeError, match="nests too deeply"):
        codec.decode(_struct_doc(desc))


def test_buffer_size_must_match_the_dtype() -> None:
    desc = codec.encode(rates(1)).doc["dtype"]
    with pytest.raises(DecodeError, match="damaged"):
        codec.decode(_struct_doc(desc, 59))


# --- random structured dtypes -----------------------------------------------------------------

_leaf_dtypes = st.one_of(
    hnp.boolean_dtypes(),
    hnp.integer_dtypes(endianness="<"),
    hnp.integer_dtypes(endianness=">"),
    hnp.unsigned_integer_dtypes(endianness="="),
    hnp.floating_dtypes(endianness="=", sizes=(16, 32, 64)),
    hnp.complex_number_dtypes(endianness=">"),
    hnp.datetime64_dtypes(endianness="="),
    hnp.timedelta64_dtypes(endianness="="),
    hnp.unicode_string_dtypes(min_len=1, max_len=3),
    hnp.byte_string_dtypes(min_len=1, max_len=3),
)
_names = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1, max_size=4)


@st.composite
def struct_dtypes(draw: st.DrawFn, depth: int = 0) -> Any:
    """Structured dtypes: nested, aligned or packed, optional gaps, titles and subarrays."""
    n = draw(st.integers(1, 4))
    names = draw(st.lists(_names, min_size=n, max_size=n, unique=True))
    formats: list[Any] = []
    for _ in range(n):
        kind = draw(st.sampled_from(["leaf", "leaf", "sub", "nested"] if depth < 2 else ["leaf"]))
        if kind == "leaf":
            formats.append(draw(_leaf_dtypes))
        elif kind == "sub":
            shape = draw(hnp.array_shapes(min_dims=1, max_dims=2, max_side=3))
            formats.append(np.dtype((draw(_leaf_dtypes), shape)))
        else:
            formats.append(draw(struct_dtypes(depth + 1)))
    spec: dict[str, Any] = {"names": names, "formats": formats}
    if draw(st.booleans()):
        # titles: distinct from each other and from every name (names are at most 4 long)
        titles = [f"title {i}" if draw(st.booleans()) else None for i in range(n)]
        spec["titles"] = titles
    align = draw(st.booleans())
    dtype = np.dtype(spec, align=align)
    if not align and draw(st.booleans()):
        # explicit offsets with gaps and trailing padding, fields in a shuffled memory order
        order = draw(st.permutations(range(n)))
        offsets, at = [0] * n, 0
        for i in order:
            at += draw(st.integers(0, 3))
            offsets[i] = at
            at += np.dtype(formats[i]).itemsize
        spec["offsets"] = offsets
        spec["itemsize"] = at + draw(st.integers(0, 5))
        dtype = np.dtype(spec)
    if depth == 0 and draw(st.booleans()):
        dtype = np.dtype((np.record, dtype))
    return dtype


@settings(max_examples=120, deadline=None)
@given(data=st.data())
def test_random_structured_dtypes_round_trip(data: st.DataObject) -> None:
    dtype = data.draw(struct_dtypes(), label="dtype")
    shape = data.draw(hnp.array_shapes(min_dims=0, max_dims=2, min_side=0, max_side=3))
    raw = data.draw(
        st.binary(
            min_size=dtype.itemsize * int(np.prod(shape)),
            max_size=dtype.itemsize * int(np.prod(shape)),
        )
    )
    arr = np.frombuffer(bytearray(raw), dtype=dtype).reshape(shape)  # any bytes, padding too
    value: dict[str, Any] = {"arr": arr}
    if arr.size:
        value["row"] = arr.reshape(-1)[0]
    if dtype.type is np.record:
        value["rec"] = arr.view(np.recarray)
    for out in check(value):
        assert out["arr"].dtype == dtype
