"""freeze(): a private copy of a state that encodes exactly as the state did at the call."""

from __future__ import annotations

import contextlib
import dataclasses
import json
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings

from statevault import StateManager
from statevault.codec import Codec, Encoded, TypeRegistry
from statevault.errors import SerializationError
from statevault.freeze import Unfreezable, _one_block, freeze

from strategies import assert_same, values

CODEC = StateManager("memory://freeze/s.bin").layers.codec.layout.codec


def _encoded(codec: Codec, state: Any) -> tuple[str, list[bytes]]:
    encoded = codec.encode(state)
    return json.dumps(encoded.doc, allow_nan=True, default=repr), [
        bytes(b) for b in encoded.buffers
    ]


def _private_copy(state: Any) -> Any:
    """What the state holds now, shared with nothing (a codec round trip, buffers copied)."""
    encoded = CODEC.encode(state)
    return CODEC.decode(Encoded(encoded.doc, [memoryview(bytearray(b)) for b in encoded.buffers]))


def _arrays(value: Any) -> list[np.ndarray]:
    """The bare numpy arrays in a value (pandas objects are copied lazily on pandas 3)."""
    out: list[np.ndarray] = []
    if isinstance(value, np.ndarray):
        out.append(value)
    elif isinstance(value, dict):
        for v in value.values():
            out += _arrays(v)
    elif isinstance(value, list | tuple):
        for v in value:
            out += _arrays(v)
    return out


@settings(max_examples=25)
@given(values(max_leaves=10))
def test_a_frozen_state_encodes_to_the_same_document_and_buffers(value: Any) -> None:
    state = {"v": value}
    frozen = freeze(state, CODEC).thaw()
    assert_same(state, frozen)
    doc, buffers = _encoded(CODEC, state)
    if '"$t": "set"' in doc or '"$t": "frozenset"' in doc:
        # A copied (or round-tripped) set may iterate in another order: compared by value.
        assert _encoded(CODEC, frozen)[1] == buffers
    else:
        assert _encoded(CODEC, frozen) == (doc, buffers)


@settings(max_examples=25)
@given(values(max_leaves=10))
def test_a_frozen_state_shares_no_memory_with_the_numpy_arrays(value: Any) -> None:
    state = {"v": value}
    frozen = freeze(state, CODEC).thaw()
    mine = [a for a in _arrays(state) if a.flags.writeable and a.nbytes]
    for copy in _arrays(frozen):
        assert not any(np.shares_memory(copy, a) for a in mine)


def refused() -> contextlib.suppress:
    """A mutation the object refuses (a dtype that cannot hold the value) changes nothing."""
    return contextlib.suppress(Exception)


def _mutate(value: Any) -> Any:
    """Mutate everything mutable in ``value`` in place, through the objects' own API."""
    if isinstance(value, dict):
        for k in list(value):
            value[k] = _mutate(value[k])
        value["__mutated__"] = 1
    elif isinstance(value, list):
        for i, v in enumerate(value):
            value[i] = _mutate(v)
        value.append("__mutated__")
    elif isinstance(value, set):
        value.add("__mutated__")
    elif isinstance(value, tuple):
        for v in value:
            _mutate(v)
    elif isinstance(value, bytearray):
        value.extend(b"!")
    elif isinstance(value, np.ndarray) and value.size and value.flags.writeable:
        if value.dtype.hasobject:
            value[...] = None
        elif value.flags.c_contiguous or value.flags.f_contiguous:
            flat = value.reshape(-1, order="A").view(np.uint8)
            flat ^= 0x5A  # every byte of every item changes
        else:
            value[...] = np.zeros_like(value)
    elif isinstance(value, pd.Series):
        value.attrs["__mutated__"] = [1]
        if len(value):
            with refused():
                value.iloc[0] = value.iloc[-1] if len(value) > 1 else None
    elif isinstance(value, pd.DataFrame):
        value.attrs["__mutated__"] = [1]
        if value.shape[0] and value.shape[1]:
            with refused():
                value.iloc[0, 0] = value.iloc[-1, -1]
        with refused():
            value["__mutated__"] = 1
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            _mutate(getattr(value, f.name))
    return value


@settings(max_examples=25)
@given(values(max_leaves=10))
def test_mutations_after_freeze_never_reach_the_copy(value: Any) -> None:
    state = {"v": value}
    before = _private_copy(state)
    frozen = freeze(state, CODEC)
    _mutate(state)  # before the thaw, as the worker thaws after save() returned
    assert_same(before, _private_copy(frozen.thaw()))


def test_numpy_and_pandas_values_are_copied_not_round_tripped() -> None:
    prices = np.arange(6.0).reshape(2, 3, order="F")
    series = pd.Series([1.0, 2.0], index=pd.date_range("2024", periods=2, tz="UTC"))
    frame = pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})
    index = series.index
    state = {"prices": prices, "s": series, "f": frame, "same": index}
    cold = freeze(state, CODEC)
    prices[0, 0] = 99.0
    series.iloc[0] = 99.0
    series.array[1] = 99.0  # written through pandas' own array: still not in the copy
    frame.iloc[0, 0] = 99
    frame.loc[1, "b"] = "z"
    frozen = cold.thaw()
    assert frozen["prices"].flags.f_contiguous  # the order the codec stores
    assert frozen["same"] is index  # indexes are immutable: kept
    assert frozen["s"].index is index
    assert frozen["s"].tolist() == [1.0, 2.0]
    assert frozen["prices"][0, 0] == 0.0
    assert frozen["f"].to_dict("list") == {"a": [1, 2], "b": ["x", "y"]}


def test_an_index_shared_by_several_values_stays_shared() -> None:
    index = pd.date_range("2024", periods=3, tz="UTC", name="time")
    state = {"a": pd.Series([1.0, 2, 3], index=index), "b": pd.Series([4.0, 5, 6], index=index)}
    frozen = freeze(state, CODEC).thaw()
    assert frozen["a"].index is frozen["b"].index
    assert _encoded(CODEC, frozen) == _encoded(CODEC, state)  # stored once, as the original


def test_object_columns_of_mutable_items_are_round_tripped() -> None:
    cell = [1, 2]
    state = {
        "column": pd.Series([cell, "x"], dtype=object),
        "array": np.array([cell, None], dtype=object),
    }
    frozen = freeze(state, CODEC).thaw()
    cell.append(3)
    assert frozen["column"].iloc[0] == [1, 2]
    assert frozen["array"][0] == [1, 2]


def test_registered_types_are_round_tripped_on_the_callers_thread() -> None:
    @dataclasses.dataclass
    class Position:
        side: str
        tickets: list[int]

    registry = TypeRegistry()
    registry.register_type(Position)
    codec = StateManager("memory://freeze/p.bin", registry=registry).layers.codec.layout.codec
    position = Position("long", [1, 2])
    frozen = freeze({"p": position}, codec).thaw()
    position.tickets.append(3)
    assert frozen["p"] == Position("long", [1, 2])
    assert frozen["p"] is not position


def test_what_cannot_be_saved_raises_with_its_path() -> None:
    with pytest.raises(SerializationError, match=r"state\['orders'\]\[1\]"):
        freeze({"orders": [1, object()]}, CODEC)


def test_a_one_way_hook_is_unfreezable() -> None:
    class Opaque:
        pass

    registry = TypeRegistry()
    registry.register_serializer("opaque", lambda o: "opaque" if isinstance(o, Opaque) else o)
    codec = StateManager("memory://freeze/h.bin", registry=registry).layers.codec.layout.codec
    with pytest.raises(Unfreezable, match=r"state\['x'\]"):
        freeze({"x": Opaque()}, codec)


def test_deep_nesting_is_left_to_the_codec() -> None:
    deep: Any = [1]
    for _ in range(400):
        deep = [deep]
    with pytest.raises(SerializationError, match="deeper than"):
        freeze({"deep": deep}, CODEC)


@pytest.mark.slow
@settings(max_examples=400)
@given(values(max_leaves=16))
def test_many_states_freeze_exactly_and_never_see_later_mutations(value: Any) -> None:
    test_a_frozen_state_encodes_to_the_same_document_and_buffers.hypothesis.inner_test(value)  # type: ignore[attr-defined]
    test_mutations_after_freeze_never_reach_the_copy.hypothesis.inner_test(value)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "make",
    [
        lambda: pd.DataFrame(np.ones((4, 3))),
        lambda: pd.DataFrame(np.ones((4, 3)), copy=False),
        lambda: pd.DataFrame(np.asfortranarray(np.ones((4, 3)))),
        lambda: pd.DataFrame({"a": [1.0, 2.0], "b": [3.0, 4.0]}),
        lambda: pd.DataFrame(np.ones((4, 3)))[[2, 0, 1]],
        lambda: pd.DataFrame(np.arange(12).reshape(4, 3)).T,
        lambda: pd.DataFrame(np.ones((6, 3)))[::2],
        lambda: pd.DataFrame(np.ones((6, 3), dtype=np.int32), columns=["a", "a", "b"]),
    ],
)
def test_a_one_block_frame_s_values_are_what_to_numpy_views(make: Any) -> None:
    """freeze reads a one-block frame's values off its block (pandas internals): the same
    memory, strides and dtype as ``to_numpy()``, which the codec stores."""
    df = make()
    values, expected = _one_block(df, np.ndarray), df.to_numpy()
    assert values is not None
    assert values.__array_interface__ == expected.__array_interface__ | {
        "data": (expected.__array_interface__["data"][0], False)
    }
    assert values.dtype == expected.dtype
