"""``statevault.diff.diff_states``: what changed between two states, as a pure function."""

from __future__ import annotations

import copy
import json
import math
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from statevault.codec import Codec
from statevault.diff import as_dict, diff_states, path_text

from strategies import values

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))

keys = st.text(min_size=1, max_size=6)
plain = st.recursive(
    st.one_of(st.integers(), st.floats(), st.text(max_size=5), st.booleans(), st.none()),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(keys, inner, max_size=4)),
    max_leaves=15,
)


def minutes(start: int, n: int) -> pd.DatetimeIndex:
    return pd.date_range(
        datetime(2024, 7, 1, tzinfo=UTC) + timedelta(minutes=start), periods=n, freq="min"
    )


# -- identity ------------------------------------------------------------------------------


@SETTINGS
@given(values())
def test_a_value_and_its_stored_copy_do_not_differ(value: Any) -> None:
    codec = Codec()
    stored = codec.decode(codec.encode(value))
    assert diff_states(value, stored).changes == ()
    assert not diff_states(value, copy.deepcopy(value))


@SETTINGS
@given(plain)
def test_a_value_differs_from_nothing_but_itself(value: Any) -> None:
    assert not diff_states({"v": value}, {"v": copy.deepcopy(value)})
    assert diff_states({"v": value}, {"v": [value]}).changes


# -- keys ----------------------------------------------------------------------------------


@SETTINGS
@given(st.dictionaries(keys, plain, max_size=6), st.dictionaries(keys, plain, max_size=6))
def test_added_and_removed_keys_are_the_set_differences(
    a: dict[str, Any], b: dict[str, Any]
) -> None:
    d = diff_states(a, b)
    # top-level paths are the keys' set differences; a longer path is an item added to or
    # removed from a list or dict that both states hold under the same key
    assert {c.path for c in d.added if len(c.path) == 1} == {(k,) for k in b.keys() - a.keys()}
    assert {c.path for c in d.removed if len(c.path) == 1} == {(k,) for k in a.keys() - b.keys()}
    nested = [c for c in (*d.added, *d.removed) if len(c.path) > 1]
    assert all(c.path[0] in a and c.path[0] in b for c in (*nested, *d.changed))
    back = diff_states(b, a)
    assert {c.path for c in back.added} == {c.path for c in d.removed}
    assert {c.path for c in back.removed} == {c.path for c in d.added}
    assert {c.path for c in back.changed} == {c.path for c in d.changed}
    json.dumps(as_dict(d))  # plain data all the way down


@SETTINGS
@given(st.dictionaries(keys, plain, min_size=1, max_size=6), st.data())
def test_one_edited_leaf_is_one_change_at_its_path(
    state: dict[str, Any], data: st.DataObject
) -> None:
    key = data.draw(st.sampled_from(sorted(state)))
    edited = copy.deepcopy(state)
    edited[key] = ("new", state[key])  # plain values hold no tuple: another type
    d = diff_states(state, edited)
    assert [(c.path, c.kind) for c in d.changes] == [((key,), "changed")]
    assert d.changes[0].before == state[key] or d.changes[0].before is state[key]


def test_paths_read_as_python() -> None:
    a = {"pair_states": {"EURUSD": {"peak": 1.5, "hist": [1, 2]}}, "cash": 10}
    b = {"pair_states": {"EURUSD": {"peak": 1.75, "hist": [1, 2, 3]}}, "open": True}
    d = diff_states(a, b)
    assert [(c.where, c.kind) for c in d.changes] == [
        ("state['pair_states']['EURUSD']['peak']", "changed"),
        ("state['pair_states']['EURUSD']['hist'][2]", "added"),
        ("state['cash']", "removed"),
        ("state['open']", "added"),
    ]
    assert d.counts() == {"added": 2, "removed": 1, "changed": 1}
    assert path_text((1, "a"), "s") == "s[1]['a']"


def test_types_zones_and_nan() -> None:
    t = datetime(2024, 7, 1, 12, tzinfo=UTC)
    same_instant = t.astimezone(__import__("zoneinfo").ZoneInfo("Europe/London"))
    assert diff_states({"t": t}, {"t": same_instant}).changed  # same instant, another zone
    assert diff_states({"x": 1}, {"x": True}).changed  # 1 == True, but not the same type
    assert diff_states({"x": 1}, {"x": 1.0}).changed
    assert not diff_states({"x": math.nan, "y": {1, 2}}, {"x": math.nan, "y": {2, 1}})


# -- Series and DataFrames -----------------------------------------------------------------


@SETTINGS
@given(
    st.lists(st.floats(allow_nan=True), max_size=30),
    st.lists(st.floats(allow_nan=True), min_size=1, max_size=30),
)
def test_appended_rows_are_reported_as_appended(old: list[float], new: list[float]) -> None:
    before = pd.Series(old, index=minutes(0, len(old)), dtype="float64", name="EURUSD")
    after = pd.concat([before, pd.Series(new, index=minutes(len(old), len(new)), name="EURUSD")])
    (change,) = diff_states({"p": before}, {"p": after}).changes
    assert change.kind == "changed"
    t = change.table
    assert t is not None
    assert t.type == "Series"
    assert t.by == "label"
    assert t.appended.count == len(new)
    assert list(t.appended.items) == list(after.index[len(old) :][:20])
    assert t.dropped.count == 0
    assert t.cells.count == 0
    assert t.attributes == {}


@SETTINGS
@given(st.integers(1, 40), st.integers(0, 40), st.data())
def test_a_rolling_window_drops_the_head_and_appends_the_tail(
    size: int, shift: int, data: st.DataObject
) -> None:
    shift = min(shift, size)
    limit = data.draw(st.integers(0, 5))
    values_ = np.arange(size + shift, dtype="float64")
    frame = pd.DataFrame({"close": values_, "volume": values_ * 2}, index=minutes(0, size + shift))
    before, after = frame.iloc[:size], frame.iloc[shift:]
    (change,) = diff_states({"f": before}, {"f": after}, limit=limit).changes if shift else (None,)
    if not shift:
        assert not diff_states({"f": before}, {"f": after})
        return
    assert change is not None
    assert change.table is not None
    t = change.table
    assert (t.appended.count, t.dropped.count, t.cells.count) == (shift, shift, 0)
    assert list(t.dropped.items) == list(frame.index[:shift][:limit])
    assert len(t.appended.items) == min(shift, limit)
    assert t.shape == ((size, 2), (size, 2))


def test_changed_cells_are_listed_row_by_row_with_exact_counts() -> None:
    idx = minutes(0, 100)
    a = pd.DataFrame({"x": np.arange(100.0), "y": np.zeros(100)}, index=idx)
    b = a.copy()
    b.loc[idx[10:60], "y"] = 1.0
    b.loc[idx[3], "x"] = math.nan
    b["z"] = 0
    b = b.drop(columns=["x"]).join(a[["x"]]).astype({"y": "float32"})
    b.loc[idx[3], "x"] = -1.0
    (change,) = diff_states({"df": a}, {"df": b}, limit=3).changes
    t = change.table
    assert t is not None
    assert t.cells.count == 51
    assert t.cells.truncated
    assert [(c.row, c.column, c.before, c.after) for c in t.cells.items] == [
        (idx[3], "x", 3.0, -1.0),
        (idx[10], "y", 0.0, 1.0),
        (idx[11], "y", 0.0, 1.0),
    ]
    assert t.columns_added == ("z",)
    assert t.columns_removed == ()
    assert t.attributes["dtype['y']"] == ("float64", "float32")
    assert "column order" in t.attributes
    out = as_dict(diff_states({"df": a}, {"df": b}, limit=3), str)
    assert out["changes"][0]["table"]["cells"]["count"] == 51
    assert len(out["changes"][0]["table"]["cells"]["changed"]) == 3


def test_duplicate_labels_are_matched_by_position() -> None:
    a = pd.Series([1, 2, 3], index=["a", "a", "b"])
    b = pd.Series([1, 5, 3, 4], index=["a", "a", "b", "b"])
    t = diff_states({"s": a}, {"s": b}).changes[0].table
    assert t is not None
    assert t.by == "position"
    assert (list(t.appended.items), t.cells.count, t.cells.items[0].row) == ([3], 1, 1)


# -- numpy arrays --------------------------------------------------------------------------


@SETTINGS
@given(st.integers(0, 6), st.integers(1, 4), st.integers(0, 6), st.data())
def test_arrays_by_shape_and_changed_elements(
    rows: int, cols: int, extra: int, data: st.DataObject
) -> None:
    a = np.arange(rows * cols, dtype="int64").reshape(rows, cols)
    b = np.concatenate([a, np.full((extra, cols), -1, dtype="int64")])
    flips = data.draw(
        st.sets(st.tuples(st.integers(0, max(rows - 1, 0)), st.integers(0, cols - 1)))
    )
    flips = {f for f in flips if rows}
    for i, j in flips:
        b[i, j] = 10_000 + i
    d = diff_states({"a": a}, {"a": b})
    if not extra and not flips:
        assert not d
        return
    t = d.changes[0].table
    assert t is not None
    assert t.type == "ndarray"
    assert t.shape == ((rows, cols), (rows + extra, cols))
    assert t.appended.count == extra
    assert t.dropped.count == 0
    assert t.cells.count == len(flips)
    assert {c.row for c in t.cells.items} == set(sorted(flips)[:20]) or t.cells.truncated


def test_arrays_of_another_shape_or_dtype() -> None:
    t = diff_states({"a": np.zeros((2, 3))}, {"a": np.zeros((3, 2))}).changes[0].table
    assert t is not None
    assert t.attributes["shape"] == ((2, 3), (3, 2))
    t = diff_states({"a": np.zeros(3)}, {"a": np.zeros(3, dtype="float32")}).changes[0].table
    assert t is not None
    assert t.attributes == {"dtype": ("float64", "float32")}
    assert not diff_states({"a": np.array([np.nan, 1.0])}, {"a": np.array([np.nan, 1.0])})


def test_limit_must_not_be_negative() -> None:
    with pytest.raises(ValueError, match="limit"):
        diff_states({}, {}, limit=-1)
