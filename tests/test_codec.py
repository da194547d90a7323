"""Round trips through the codec: every supported standard-library and numpy value, exactly."""

from __future__ import annotations

import datetime as dt
import json
import math
import pathlib
import subprocess
import sys
import uuid
import zoneinfo
from collections import OrderedDict
from decimal import Decimal
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from statevault.codec import MAX_DEPTH, Codec, Encoded, TypeRegistry, default_registry
from statevault.errors import SerializationError

from strategies import (
    Color,
    Flags,
    Point,
    arrays,
    assert_same,
    hashables,
    numpy_scalars,
    round_trips,
    scalars,
    values,
)

SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])

codec = Codec()


def check(value: Any, c: Codec = codec) -> None:
    for result in round_trips(c, value):
        assert_same(value, result)


@SETTINGS
@given(scalars())
def test_scalars_round_trip(value: Any) -> None:
    check(value)


@SETTINGS
@given(values(pandas=False))
def test_nested_values_round_trip(value: Any) -> None:
    check(value)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(values(max_leaves=6))
def test_nested_values_with_pandas_round_trip(value: Any) -> None:
    check(value)


@SETTINGS
@given(st.dictionaries(hashables(), st.integers(), max_size=5))
def test_dicts_with_any_hashable_keys(value: dict[Any, int]) -> None:
    check(value)


@SETTINGS
@given(arrays())
def test_numpy_arrays_round_trip(value: Any) -> None:
    check(value)


@SETTINGS
@given(numpy_scalars())
def test_numpy_scalars_round_trip(value: Any) -> None:
    check(value)


@pytest.mark.parametrize(
    "value",
    [
        None,
        True,
        0,
        -0.0,
        math.nan,
        -math.inf,
        2**64,
        -(2**64) - 1,
        10**5000,
        "",
        "\udc80 lone surrogate",
        "\U0001f600",
        b"",
        b"\x00" * 600,
        bytearray(b"abc"),
        1 + 2j,
        complex(math.nan, -0.0),
        Decimal("1.10"),
        Decimal("-0"),
        Decimal("sNaN12"),
        Decimal("-Infinity"),
        uuid.UUID(int=7),
        pathlib.PurePosixPath("/a/b"),
        pathlib.PureWindowsPath(r"C:\x\y"),
        pathlib.Path("rel/path"),
        dt.date(1, 1, 1),
        dt.timedelta(days=-3, microseconds=5),
        dt.time(23, 59, 59, 999999, tzinfo=dt.timezone(dt.timedelta(hours=-5), "EST")),
        dt.datetime(2024, 11, 3, 1, 30, fold=1, tzinfo=zoneinfo.ZoneInfo("America/New_York")),
        dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
        dt.datetime(2024, 1, 1, tzinfo=dt.timezone(dt.timedelta(seconds=3600, microseconds=7))),
        dt.datetime(2024, 1, 1, 12, 0, 0, 1),
        zoneinfo.ZoneInfo("Europe/London"),
        range(3, -7, -2),
        Color.BLUE,
        Flags.A | Flags.B,
        Point([1, 2], {"k": (3,)}),
        (),
        (1,),
        frozenset({1, "a"}),
        set(),
        {"$t": "tuple", "v": [1]},
        {"$t": 5, "kv": 1},
        {1: "a", "1": "b", (1,): "c", None: "d", 1.5: "e", dt.date(2020, 1, 1): "f"},
        OrderedDict([("b", 1), ("a", 2)]),
        [[[[]]]],
    ],
    ids=lambda v: type(v).__name__,
)
def test_specific_values_round_trip(value: Any) -> None:
    check(value)


def test_decimal_keeps_exponent_and_timezone_keeps_identity() -> None:
    assert str(codec.decode(codec.encode(Decimal("1.10")))) == "1.10"
    assert codec.decode(codec.encode(dt.UTC)) is dt.UTC
    zone = codec.decode(codec.encode(zoneinfo.ZoneInfo("Asia/Tokyo")))
    assert zone is zoneinfo.ZoneInfo("Asia/Tokyo")


def test_doc_is_plain_json_with_compact_tags() -> None:
    encoded = codec.encode({"a": (1, 2), "b": [1.5, None], 3: {4}})
    text = json.dumps(encoded.doc, allow_nan=True)
    assert json.loads(text) == encoded.doc
    assert encoded.doc == {
        "$t": "dict",
        "kv": ["a", {"$t": "tuple", "v": [1, 2]}, "b", [1.5, None], 3, {"$t": "set", "v": [4]}],
    }
    assert encoded.buffers == []


def test_plain_json_values_are_stored_as_themselves() -> None:
    value = {"a": [1, "x", None, True, 2.5], "b": {"c": "d"}}
    assert codec.encode(value).doc == value


def test_large_bytes_and_arrays_travel_as_buffers() -> None:
    arr = np.arange(1000, dtype=np.float64)
    encoded = codec.encode({"arr": arr, "blob": b"x" * 10_000})
    assert len(encoded.buffers) == 2
    assert encoded.buffers[0].nbytes == arr.nbytes
    assert np.shares_memory(np.frombuffer(encoded.buffers[0], dtype=np.float64), arr)
    text = json.dumps(encoded.doc)
    assert len(text) < 300  # no element lists in the document


def test_loads_from_writable_buffer_is_zero_copy_and_bytes_is_copied() -> None:
    arr = np.arange(64, dtype=np.int32)
    payload = bytearray(b"".join(codec.dumps({"a": arr})))
    out = codec.loads(payload)["a"]
    assert out.flags.writeable
    assert np.shares_memory(out, np.frombuffer(payload, dtype=np.uint8))
    copied = codec.loads(bytes(payload))["a"]
    assert copied.flags.writeable
    copied[0] = 99  # writable even though the input was immutable bytes
    assert_same(arr, codec.loads(memoryview(bytes(payload)))["a"])


def test_decode_of_read_only_buffers_gives_writable_arrays() -> None:
    encoded = codec.encode(np.arange(10.0))
    ro = Encoded(encoded.doc, [memoryview(bytes(b)) for b in encoded.buffers])
    out = codec.decode(ro)
    assert out.flags.writeable
    out[0] = 5.0


def test_fortran_order_and_byte_order_are_kept() -> None:
    arr = np.asfortranarray(np.arange(12, dtype=">i4").reshape(3, 4))
    out = codec.loads(bytearray(b"".join(codec.dumps(arr))))
    assert out.flags.f_contiguous
    assert not out.flags.c_contiguous
    assert out.dtype.str == ">i4"
    assert_same(arr, out)


def test_payload_buffers_are_aligned_to_64_bytes() -> None:
    value = {"a": np.arange(3, dtype=np.int8), "b": np.arange(5.0), "c": b"y" * 1000}
    chunks = codec.dumps(value)
    position = 0
    aligned = 0
    for chunk in chunks:
        if isinstance(chunk, memoryview):
            assert position % 64 == 0
            aligned += 1
        position += len(chunk)
    assert aligned == 3
    assert_same(value, codec.loads(b"".join(chunks)))


def test_dumps_does_not_copy_array_buffers() -> None:
    arr = np.arange(1000.0)
    chunks = codec.dumps(arr)
    views = [c for c in chunks if isinstance(c, memoryview)]
    assert len(views) == 1
    assert np.shares_memory(np.frombuffer(views[0], dtype=np.float64), arr)


def test_nesting_a_few_hundred_levels_deep_round_trips() -> None:
    for levels, wrap in (
        (1, lambda v: [v]),
        (1, lambda v: {"k": v}),
        (1, lambda v: (v,)),
        (1, lambda v: {1: v}),
        (1, lambda v: frozenset([v])),
        (2, Point),  # the registered type, then its field dict
    ):
        value: Any = 0
        for _ in range((MAX_DEPTH - 2) // levels):
            value = wrap(value)
        check(value)


def test_nesting_beyond_the_limit_is_a_clear_error() -> None:
    value: Any = 0
    for _ in range(MAX_DEPTH + 5):
        value = [value]
    with pytest.raises(SerializationError, match="nests deeper than"):
        codec.encode(value)


def test_reference_cycle_is_a_clear_error() -> None:
    cycle: list[Any] = []
    cycle.append(cycle)
    with pytest.raises(SerializationError, match="reference cycle"):
        codec.dumps({"a": cycle})


def test_import_does_not_load_numpy_or_pandas() -> None:
    code = (
        "import sys, statevault.codec as c\n"
        "c.Codec().loads(b''.join(c.Codec().dumps({'a': (1, 2)})))\n"
        "assert 'numpy' not in sys.modules and 'pandas' not in sys.modules, 'eager import'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_numpy_handlers_load_on_decode_without_prior_import() -> None:
    payload = b"".join(codec.dumps({"a": np.arange(3), "s": np.float32(1.5)}))
    code = (
        "import sys, statevault.codec as c\n"
        "data = sys.stdin.buffer.read()\n"
        "value = c.Codec().loads(data)\n"
        "assert 'pandas' not in sys.modules\n"
        "print(type(value['a']).__name__, value['a'].tolist(), type(value['s']).__name__)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], input=payload, capture_output=True, check=True
    )
    assert out.stdout.decode().split() == ["ndarray", "[0,", "1,", "2]", "float32"]


def test_results_do_not_depend_on_import_order() -> None:
    # A registration for a numpy type made before numpy handlers are loaded still wins.
    code = (
        "import statevault.codec as c\n"
        "reg = c.TypeRegistry()\n"
        "import numpy as np\n"
        "reg.register_type(np.ndarray, 'Arr', encode=lambda a: a.tolist(),\n"
        "                  decode=lambda v: np.array(v))\n"
        "doc = c.Codec(reg).encode(np.arange(2)).doc\n"
        "assert doc['$t'] == 'user' and doc['n'] == 'Arr', doc\n"
        "doc2 = c.Codec().encode(np.arange(2)).doc\n"
        "assert doc2['$t'] == 'np.ndarray', doc2\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_codec_uses_default_registry_by_default() -> None:
    assert Codec().registry is default_registry
    own = TypeRegistry()
    assert Codec(own).registry is own
