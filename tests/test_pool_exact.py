"""freeze() with and without a CopyPool encodes byte for byte as the live object, on any stack.

The copy pool was once reverted because one-dtype DataFrames copied on pandas 2.2 encoded to
other bytes: the codec stores a frame's block in the layout of ``df.to_numpy()`` (C order, or
``"order": "F"``), pandas 2.2 keeps a 2-D array passed to ``DataFrame(...)`` as its block (so
``to_numpy()`` is C-ordered) while pandas 3 copies it into an F-ordered one, and the copy was
always made in F order. These properties build frames in every layout a bot can get (from a
2-D array in C or F order, ``copy=False``, sliced, transposed, loaded back from a save) and
compare the encoded copy with the encoded original, buffers byte for byte, then compare the
decoded objects (dtype, index type and freq, labels' dtype, tz, names, attrs, flags).
"""

from __future__ import annotations

import gc
import json
from typing import Any

import hypothesis.extra.numpy as hnp
import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from statevault import StateManager
from statevault.codec import Encoded
from statevault.freeze import freeze
from statevault.pool import CopyPool

from strategies import assert_same, frames, indexes, names, series

CODEC = StateManager("memory://pool-exact/s.bin").layers.codec.layout.codec

# numpy dtypes a one-block frame can have (the codec stores such a frame as one 2-D buffer).
_BLOCK_DTYPES = [
    "float64",
    "float32",
    "int64",
    "int32",
    "uint8",
    "bool",
    "complex128",
    "M8[ns]",
    "M8[s]",
    "m8[ns]",
]


def _encoded(state: Any) -> tuple[str, list[bytes]]:
    encoded = CODEC.encode(state)
    return json.dumps(encoded.doc, allow_nan=True, default=repr), [
        bytes(b) for b in encoded.buffers
    ]


def _loaded(value: Any) -> Any:
    """``value`` saved and loaded back (a frame laid out as a loaded state's is)."""
    encoded = CODEC.encode({"v": value})
    copied = Encoded(encoded.doc, [memoryview(bytearray(b)) for b in encoded.buffers])
    return CODEC.decode(copied)["v"]


@st.composite
def _labels(draw: st.DrawFn, k: int) -> Any:
    kind = draw(st.sampled_from(["str", "string", "object", "int", "range", "multi"]))
    if kind == "range":
        return pd.RangeIndex(k)
    if kind == "int":
        return pd.Index(draw(st.lists(st.integers(-5, 5), min_size=k, max_size=k)))
    if kind == "multi":
        return pd.MultiIndex.from_arrays([["px"] * k, [f"c{j}" for j in range(k)]])
    items = draw(st.lists(st.sampled_from(["o", "h", "l", "c", "$t"]), min_size=k, max_size=k))
    return pd.Index(items, dtype=None if kind == "str" else kind)


@st.composite
def laid_out_frames(draw: st.DrawFn) -> Any:
    """One-dtype DataFrames in every memory layout (and so every to_numpy() order)."""
    index = draw(indexes())
    n, k = len(index), draw(st.integers(1, 4))
    dtype = np.dtype(draw(st.sampled_from(_BLOCK_DTYPES)))
    rows, cols = draw(st.sampled_from([1, 2])), draw(st.sampled_from([1, 2]))  # 2: strided
    shape = (n * rows, k * cols)
    if dtype.kind in "mM":
        base = draw(hnp.arrays(np.int64, shape, elements=st.integers(-(2**40), 2**40)))
        base = base.view(dtype)
    else:
        base = draw(hnp.arrays(dtype, shape))
    if draw(st.booleans()):
        base = np.asfortranarray(base)
    values = base[::rows, ::cols]
    df = pd.DataFrame(values, index=index, columns=draw(_labels(k)), copy=draw(st.booleans()))
    how = draw(st.sampled_from(["as built", "loaded", "transposed", "rows sliced", "columns"]))
    if how == "loaded":
        df = _loaded(df)
    elif how == "transposed" and index.is_unique:
        df = df.T
    elif how == "rows sliced":
        df = df.iloc[::2]
    elif how == "columns":
        df = df.iloc[:, ::-1]
    if draw(st.booleans()):
        df.attrs["venue"] = draw(st.sampled_from(["x", "y"]))
    if draw(st.booleans()) and df.index.is_unique and df.columns.is_unique:
        df = df.set_flags(allows_duplicate_labels=False)
    return df


@st.composite
def pandas_values(draw: st.DrawFn) -> Any:
    """Series and frames of every kind, plus a Series sharing the value's index (stored once)."""
    value = draw(
        st.one_of(
            laid_out_frames(),
            frames(),
            series(),
            laid_out_frames().filter(lambda df: df.shape[1] > 0).map(lambda df: df.iloc[:, 0]),
        )
    )
    state: dict[str, Any] = {"v": value}
    if draw(st.booleans()):
        state["shared"] = pd.Series(
            np.arange(len(value), dtype=np.float64), index=value.index, name=draw(names)
        )
    return state


def _check(state: dict[str, Any], frozen: dict[str, Any]) -> None:
    assert _encoded(frozen) == _encoded(state)
    assert_same(state, frozen)
    assert_same(_loaded(state), _loaded(frozen))


@settings(max_examples=150, deadline=None)
@given(pandas_values())
def test_a_copy_encodes_byte_for_byte_as_the_live_object(state: dict[str, Any]) -> None:
    _check(state, freeze(state, CODEC).thaw())


@settings(max_examples=150, deadline=None)
@given(pandas_values())
def test_a_pooled_copy_encodes_byte_for_byte_in_new_and_reused_memory(
    state: dict[str, Any],
) -> None:
    pool = CopyPool(min_bytes=0)  # every numeric array through the pool, however small
    first = freeze(state, CODEC, pool).thaw()
    _check(state, first)
    allocated = pool.allocated
    del first
    gc.collect()
    second = freeze(state, CODEC, pool).thaw()  # into the first copy's memory
    assert pool.allocated == allocated
    _check(state, second)


def _frame_from_array(copy: bool) -> pd.DataFrame:
    return pd.DataFrame(np.arange(12.0).reshape(4, 3), columns=["o", "h", "l"], copy=copy)


def test_a_frame_wrapping_a_2d_array_is_copied_in_its_own_layout() -> None:
    # pandas 2.2 keeps the array as the block (to_numpy() is C-ordered; pandas 3 does so with
    # copy=False): the copy once came out F-ordered and encoded with "order": "F".
    for pool in (None, CopyPool(min_bytes=0)):
        for df in (
            _frame_from_array(False),
            _frame_from_array(True),
            _loaded(_frame_from_array(True)),
        ):
            state = {"df": df}
            frozen = freeze(state, CODEC, pool).thaw()
            assert frozen["df"].to_numpy().flags.c_contiguous == df.to_numpy().flags.c_contiguous
            _check(state, frozen)


def test_an_index_shared_by_a_copied_frame_and_a_series_stays_shared() -> None:
    index = pd.date_range("2024", periods=3, freq="min", tz="UTC")
    mixed = pd.DataFrame({"px": [1.0, 2.0, 3.0], "n": [1, 2, 3]}, index=index)  # deep-copied
    state = {"bars": mixed, "close": pd.Series([1.0, 2.0, 3.0], index=index)}
    frozen = freeze(state, CODEC).thaw()
    assert frozen["bars"].index is index
    assert '"ref"' in _encoded(frozen)[0]
    _check(state, frozen)


def test_masked_series_are_copied_not_round_tripped() -> None:
    # pandas 3 names the masked dtypes' module "pandas" (2.2: "pandas.core..."): such a Series
    # was round-tripped through the codec, and lost the index object it shares.
    index = pd.Index(["a", "b"])
    state = {"n": pd.Series(pd.array([1, None], dtype="Int64"), index=index), "x": index}
    frozen = freeze(state, CODEC).thaw()
    assert frozen["n"].index is index
    _check(state, frozen)
