"""CopyPool: freeze() copies into memory that is reused only once nothing else holds it."""

from __future__ import annotations

import gc
import tempfile
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from statevault import StateManager
from statevault.background import BackgroundSaver
from statevault.freeze import freeze
from statevault.pool import KEEP_ROUNDS, MIN_BYTES, CopyPool

from strategies import assert_same

CODEC = StateManager("memory://pool/s.bin").layers.codec.layout.codec
N = MIN_BYTES // 8 * 4  # float64 elements: well above the pool's minimum


def _state(level: float, n: int = N) -> dict[str, Any]:
    index = pd.date_range("2024", periods=n, freq="min", tz="UTC")
    return {
        "s": pd.Series(np.full(n, level), index=index, name="close"),
        "a": np.full((n // 4, 4), level, order="F"),
        "df": pd.DataFrame(np.full((n, 3), level), index=index, columns=["o", "h", "l"]),
    }


def _encoded(state: Any) -> tuple[Any, list[bytes]]:
    encoded = CODEC.encode(state)
    return encoded.doc, [bytes(b) for b in encoded.buffers]


def test_a_written_snapshot_s_memory_is_reused_and_encodes_exactly() -> None:
    pool = CopyPool()
    first = freeze(_state(1.0), CODEC, pool).thaw()
    assert pool.allocated == 3
    assert pool.reused == 0
    del first
    gc.collect()
    state = _state(2.0)
    second = freeze(state, CODEC, pool).thaw()
    assert pool.reused == 3
    assert pool.allocated == 3
    assert _encoded(second) == _encoded(state)
    assert_same(state, second)


def test_memory_still_held_anywhere_is_never_reused() -> None:
    pool = CopyPool()
    first = freeze(_state(1.0), CODEC, pool).thaw()
    expected = _encoded(first)
    view = first["s"].to_numpy()[10:20]  # only a view of one array, the rest dropped
    raw = memoryview(first["a"])
    frame_values = first["df"]["h"].to_numpy()
    del first
    gc.collect()
    second = freeze(_state(2.0), CODEC, pool).thaw()
    assert pool.reused == 0  # every block is still referenced by a view or a memoryview
    assert (view == 1.0).all()
    assert (np.asarray(raw) == 1.0).all()
    assert (frame_values == 1.0).all()
    assert _encoded(second)[1] != expected[1]
    for name in ("s", "a"):
        assert not np.shares_memory(np.asarray(second[name]), view)


def test_a_snapshot_still_being_written_keeps_its_memory() -> None:
    pool = CopyPool()
    first = freeze(_state(1.0), CODEC, pool).thaw()
    before = _encoded(first)
    second = freeze(_state(2.0), CODEC, pool).thaw()
    assert pool.reused == 0
    assert _encoded(first) == before  # untouched by the second copy
    assert not np.shares_memory(first["s"].to_numpy(), second["s"].to_numpy())


def test_a_series_that_grows_by_a_bar_keeps_fitting_its_block() -> None:
    pool = CopyPool()
    for bar in range(5):
        state = _state(float(bar), N + bar)
        frozen = freeze(state, CODEC, pool).thaw()
        assert _encoded(frozen) == _encoded(state)
        del frozen
        gc.collect()
    assert pool.allocated == 3
    assert pool.reused == 12


def test_blocks_held_elsewhere_are_forgotten_after_a_few_rounds() -> None:
    pool = CopyPool()
    kept = freeze(_state(1.0), CODEC, pool).thaw()
    for _ in range(KEEP_ROUNDS + 1):
        freeze({"small": 1}, CODEC, pool)
    del kept
    gc.collect()
    freeze(_state(2.0), CODEC, pool)
    assert pool.reused == 0
    assert pool.allocated == 6


def test_small_arrays_and_objects_are_copied_the_ordinary_way() -> None:
    pool = CopyPool()
    state = {"tiny": np.arange(4.0), "objs": np.array(["a", None], dtype=object)}
    frozen = freeze(state, CODEC, pool).thaw()
    assert pool.allocated == 0
    assert _encoded(frozen) == _encoded(state)


def test_frames_keep_their_attrs_flags_and_axes() -> None:
    columns = pd.MultiIndex.from_tuples([("px", "o"), ("px", "c")])
    df = pd.DataFrame(np.arange(8.0).reshape(4, 2), columns=columns)
    df.attrs["source"] = {"venue": "x"}
    df = df.set_flags(allows_duplicate_labels=False)
    dup = pd.DataFrame(np.ones((2, 2), dtype=np.int32), columns=["a", "a"])
    state = {"df": df, "dup": dup}
    frozen = freeze(state, CODEC, CopyPool()).thaw()
    assert_same(state, frozen)
    assert frozen["df"].attrs == {"source": {"venue": "x"}}
    assert frozen["df"].flags.allows_duplicate_labels is False
    assert frozen["df"].columns is df.columns
    assert _encoded(frozen) == _encoded(state)
    df.attrs["source"]["venue"] = "y"
    df.iloc[0, 0] = -1.0
    assert frozen["df"].attrs == {"source": {"venue": "x"}}
    assert frozen["df"].iloc[0, 0] == 0.0


@settings(max_examples=20)
@given(st.lists(st.tuples(st.floats(-1e6, 1e6), st.integers(0, 40), st.booleans()), max_size=6))
def test_a_pool_over_many_saves_never_changes_an_earlier_copy(
    steps: list[tuple[float, int, bool]],
) -> None:
    pool = CopyPool()
    alive: list[tuple[Any, tuple[Any, list[bytes]]]] = []
    for level, grow, keep in steps:
        state = _state(level, N + grow)
        frozen = freeze(state, CODEC, pool).thaw()
        assert _encoded(frozen) == _encoded(state)
        if keep:  # a snapshot not yet written, or one something kept
            alive.append((frozen, _encoded(frozen)))
        del frozen
        gc.collect()
        for earlier, encoded in alive:
            assert _encoded(earlier) == encoded


def test_background_saves_reuse_memory_and_store_what_each_call_saw() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        sm = StateManager(f"file://{tmp}/s.sv")
        state = _state(0.0)
        with BackgroundSaver(sm) as saver:
            for level in range(1, 5):
                state["s"].iloc[:] = float(level)  # in place, right after each save call
                saver.save(state).wait()
                state["s"].iloc[:] = -1.0
                assert StateManager(f"file://{tmp}/s.sv").load_state()["s"].iloc[-1] == level
            assert saver._pool is not None
            assert saver._pool.reused > 0


def _writable(arr: Any) -> Any:
    """``arr`` made writable the way a bot could (pandas 3 hands out read-only views)."""
    if not arr.flags.writeable:
        arr.flags.writeable = True  # numpy allows it: the view's base is writable
    return arr


_WRITES: dict[str, Any] = {
    "iloc": lambda obj, raw: obj.iloc.__setitem__(0, -7.0),
    "array": lambda obj, raw: obj.array.__setitem__(0, -7.0) if obj.ndim == 1 else None,
    "values": lambda obj, raw: _writable(obj.values).__setitem__(0, -7.0),
    "to_numpy": lambda obj, raw: _writable(obj.to_numpy()).__setitem__(0, -7.0),
    "asarray": lambda obj, raw: _writable(np.asarray(obj)).__setitem__(0, -7.0),
    "passed_array": lambda obj, raw: raw.__setitem__(0, -7.0),
}


@pytest.mark.parametrize("write", sorted(_WRITES))
@pytest.mark.parametrize("pooled", [False, True])
def test_writes_after_the_call_never_reach_the_copy(write: str, pooled: bool) -> None:
    """Series (the ``_values`` short path) and one-block frames, in new and in reused pool
    memory: every way a bot writes in place after the call, pandas' or numpy's, leaves the
    copy what it was at the call."""
    pool = CopyPool(min_bytes=0) if pooled else None
    for level in (1.0, 2.0):  # the second round copies into the first round's arrays
        raw_s = np.full(N, level)
        raw_df = np.full((N, 3), level)
        state = {
            "s": pd.Series(raw_s, copy=False, name="x"),
            "df": pd.DataFrame(raw_df, copy=False, columns=["a", "b", "c"]),
        }
        expected = _encoded(state)
        frozen = freeze(state, CODEC, pool)
        for name, raw in (("s", raw_s), ("df", raw_df)):
            obj = state[name]
            _WRITES[write](
                obj if obj.ndim == 1 else obj.iloc[:, 0] if write == "array" else obj, raw
            )
        assert _encoded(state) != expected  # the write reached the bot's objects
        thawed = frozen.thaw()
        assert _encoded(thawed) == expected
        del frozen, thawed
        gc.collect()
    if pooled:
        assert pool is not None
        assert pool.reused == 2


def test_an_array_or_its_block_held_anywhere_is_never_reused() -> None:
    """The pool lends the same array object again only when neither it nor its block is
    held: not by a Series' ``.array``, not by the block taken from a view's ``base``."""
    for hold in ("array", "block", "view"):
        pool = CopyPool()
        first = freeze(_state(1.0), CODEC, pool).thaw()
        values = np.asarray(first["s"])
        held = {"array": first["s"].array, "block": values.base, "view": values[5:]}[hold]
        before = bytes(memoryview(np.ascontiguousarray(held)).cast("B"))
        del first, values
        gc.collect()
        second = freeze(_state(2.0), CODEC, pool).thaw()
        assert pool.reused == 2, hold  # the frame's and the array's, not the Series'
        assert bytes(memoryview(np.ascontiguousarray(held)).cast("B")) == before, hold
        assert (second["s"] == 2.0).all()


def test_an_array_marked_read_only_is_not_lent_again() -> None:
    pool = CopyPool()
    first = freeze(_state(1.0), CODEC, pool).thaw()
    np.asarray(first["a"]).flags.writeable = False  # marked through the lent array itself
    del first
    gc.collect()
    state = _state(2.0)
    second = freeze(state, CODEC, pool).thaw()  # no "assignment destination is read-only"
    assert pool.reused == 2
    assert _encoded(second) == _encoded(state)
