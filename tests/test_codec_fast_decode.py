"""Loads through pandas' internal constructors (issue 16) build exactly what the public ones do.

The decoders build Series (and the other objects the probes cover) directly where the public
constructor would only re-check data that cannot be wrong here; each fast path is probed at
import and replaced by the public one on a mismatch. These tests check that the probes passed
on this stack, and that whatever the strategies draw decodes to the same objects either way,
fact for fact: types, attributes, blocks and their references, dtypes, names, flags, attrs,
and whether the data is writable and shared with nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings

from statevault.codec import Codec, _pd_frame, _pd_index

from strategies import assert_same, frames, series
from strategies_pandas import string_frames, string_indexes

codec = Codec()

# (module, name of the probed function, its public version)
FAST_PATHS = [
    (_pd_frame, "_make_series", "_series_public"),
    (_pd_frame, "_make_frame", "_frame_public"),
    (_pd_index, "_make_index", "_index_public"),
]


def test_the_fast_decode_paths_are_in_use() -> None:
    for module, name, public in FAST_PATHS:
        assert getattr(module, name) is not getattr(module, public), name


@contextmanager
def public_paths() -> Iterator[None]:
    saved = [(module, name, getattr(module, name)) for module, name, _ in FAST_PATHS]
    for module, name, public in FAST_PATHS:
        setattr(module, name, getattr(module, public))
    try:
        yield
    finally:
        for module, name, fn in saved:
            setattr(module, name, fn)


def facts(obj: Any) -> Any:
    """What a pandas object is, beyond its values: everything a fast path could get wrong."""
    if isinstance(obj, pd.Index):
        refs = getattr(obj, "_references", None)
        return (
            type(obj),
            obj.dtype,
            obj.name,
            getattr(obj, "freq", None),
            sorted(vars(obj)),
            None if refs is None else len(refs.referenced_blocks),
            None if isinstance(obj, pd.MultiIndex) else type(obj.array),
        )
    mgr = obj._mgr
    blocks = [
        (
            type(b),
            b.dtype,
            b.shape,
            list(b.mgr_locs.as_array),
            len(b.refs.referenced_blocks),
            isinstance(b.values, np.ndarray) and b.values.flags.writeable,
            isinstance(b.values, np.ndarray) and b.values.flags.c_contiguous,
        )
        for b in mgr.blocks
    ]
    return (
        type(obj),
        sorted(vars(obj)),
        type(mgr),
        sorted(vars(mgr)),
        getattr(mgr, "_is_consolidated", None),
        getattr(mgr, "_known_consolidated", None),
        blocks,
        [facts(axis) for axis in mgr.axes],
        getattr(obj, "name", None),
        obj.attrs,
        obj.flags.allows_duplicate_labels,
    )


def both_ways(value: Any) -> tuple[Any, Any]:
    data = bytearray(b"".join(bytes(memoryview(c).cast("B")) for c in codec.dumps(value)))
    fast = codec.loads(bytearray(data))
    with public_paths():
        public = codec.loads(bytearray(data))
    return fast, public


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(series())
def test_a_series_decodes_to_the_same_object_either_way(s: Any) -> None:
    fast, public = both_ways(s)
    assert facts(fast) == facts(public)
    assert_same(fast, s)
    assert_same(public, s)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frames())
def test_a_frame_decodes_to_the_same_object_either_way(df: Any) -> None:
    fast, public = both_ways(df)
    assert facts(fast) == facts(public)
    assert_same(fast, df)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(string_indexes())
def test_a_string_index_decodes_to_the_same_object_either_way(idx: Any) -> None:
    fast, public = both_ways(idx)
    assert facts(fast) == facts(public)
    assert_same(fast, idx)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(string_frames())
def test_a_frame_with_string_labels_decodes_to_the_same_object_either_way(df: Any) -> None:
    fast, public = both_ways(df)
    assert facts(fast) == facts(public)
    assert facts(fast.columns) == facts(public.columns)
    assert_same(fast, df)


def test_a_numeric_block_frame_decodes_to_the_same_object_either_way() -> None:
    idx = pd.date_range("2024-01-01", periods=5, freq="min", tz="UTC", name="time")
    for dtype in ("float64", "int32", "bool", "complex64"):
        df = pd.DataFrame(np.ones((5, 3), dtype=dtype), index=idx, columns=["x", "y", "z"])
        df.attrs["k"] = 1
        fast, public = both_ways(df)
        assert facts(fast) == facts(public)
        assert_same(fast, df)
        zero = np.dtype(dtype).type(0)
        fast.iloc[0, 0] = zero  # writable, and the decoded frame owns its block
        assert fast.iloc[0, 0] == zero
        assert public.iloc[0, 0] == 1


def test_a_shared_index_stays_shared_and_values_stay_apart() -> None:
    idx = pd.date_range("2024-01-01", periods=50, freq="min", tz="UTC", name="time")
    state = {"a": pd.Series(np.arange(50.0), idx, name="a"), "b": pd.Series(np.ones(50), idx)}
    fast, public = both_ways(state)
    for got in (fast, public):
        assert got["a"].index is got["b"].index
        assert not np.shares_memory(got["a"].to_numpy(), got["b"].to_numpy())
    assert facts(fast["a"]) == facts(public["a"])
