"""DataFrames without per-column pandas overhead (issue 16), and loaded arrays that own memory.

The encoder reads a frame's column arrays through pandas' own per-column iterator instead of
``df.iloc[:, j]`` (a Series per column); it must give exactly what the public path gives, for
every column family the strategies draw, so the stored bytes are the same either way. Loaded
arrays must be writable and independent: a test writes into every array of a loaded state, on
real files, plain and compressed, and checks that nothing else changed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings

from statevault import StateManager
from statevault.codec import Codec, _pd_frame

from strategies import frames

codec = Codec()


def test_the_fast_column_path_is_in_use() -> None:
    # The probe passed on this stack (2.2 and 3.x are both expected to pass it).
    assert _pd_frame._column_arrays is _pd_frame._column_arrays_fast


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frames())
def test_fast_and_public_column_paths_store_the_same_bytes(df: Any) -> None:
    fast = b"".join(codec.dumps(df))
    original = _pd_frame._column_arrays
    _pd_frame._column_arrays = _pd_frame._column_arrays_public
    try:
        public = b"".join(codec.dumps(df))
    finally:
        _pd_frame._column_arrays = original
    assert fast == public


def test_encoding_builds_no_series_per_column(monkeypatch: pytest.MonkeyPatch) -> None:
    # The mechanism, not a time: a mixed frame is encoded without one .iloc call per column.
    df = pd.DataFrame({"q": np.arange(4), "px": np.linspace(0, 1, 4), "side": list("bsbs")})
    calls = []
    real = pd.DataFrame.iloc

    def counting(self: Any) -> Any:
        calls.append(1)
        return real.fget(self)  # type: ignore[attr-defined]

    monkeypatch.setattr(pd.DataFrame, "iloc", property(counting))
    out = codec.loads(bytearray(b"".join(codec.dumps(df))))
    pd.testing.assert_frame_equal(out, df, check_exact=True)
    assert calls == []


def _state() -> dict[str, Any]:
    rng = np.random.default_rng(7)
    idx = pd.date_range("2024-01-01", periods=64, freq="min", tz="UTC", name="time")
    return {
        "arr_f": rng.standard_normal(64),
        "arr_i": np.arange(64, dtype=np.int64),
        "arr_2d": rng.standard_normal((8, 8)),
        "arr_m8": np.arange(64).astype("M8[s]"),
        "s1": pd.Series(rng.standard_normal(64), index=idx, name="a"),
        "s2": pd.Series(rng.standard_normal(64), index=idx, name="b"),
        "block": pd.DataFrame(rng.standard_normal((64, 3)), index=idx, columns=["x", "y", "z"]),
        "mixed": pd.DataFrame(
            {
                "q": np.arange(64, dtype=np.int32),
                "px": rng.standard_normal(64),
                "ok": np.ones(64, dtype=bool),
                "px2": rng.standard_normal(64),
            },
            index=idx,
        ),
    }


def _arrays_of(state: dict[str, Any]) -> list[tuple[str, np.ndarray]]:
    """Every numpy array the loaded state holds (frames column by column)."""
    out: list[tuple[str, np.ndarray]] = []
    for key, value in state.items():
        if isinstance(value, np.ndarray):
            out.append((key, value))
        elif isinstance(value, pd.Series):
            out.append((key, value.array._ndarray))
        else:
            out += [(f"{key}[{c}]", value[c].array._ndarray) for c in value.columns]
    return out


@pytest.mark.parametrize("compression", [None, "zstd"])
def test_loaded_arrays_are_writable_and_independent(tmp_path: Path, compression: Any) -> None:
    manager = StateManager(str(tmp_path / "state.sv"), compression=compression)
    manager.save(_state())
    loaded = manager.load()
    names = [name for name, _ in _arrays_of(loaded)]
    assert len(names) == 4 + 2 + 3 + 4
    for target in names:
        state = manager.load() if target != names[0] else loaded
        before = {name: arr.copy() for name, arr in _arrays_of(state)}
        arrays = dict(_arrays_of(state))
        victim = arrays[target]
        assert victim.flags.writeable, target
        _change_every_element(victim)
        for name, arr in _arrays_of(state):
            changed = arr.tobytes() != before[name].tobytes()
            assert changed == (name == target), (target, name)
    # and the stored state is untouched by all that
    again = manager.load()
    for (name, arr), (_, ref) in zip(_arrays_of(again), _arrays_of(_state()), strict=True):
        assert arr.tobytes() == ref.tobytes(), name


def _change_every_element(arr: np.ndarray) -> None:
    """Change every element in place (a frame's column may be a strided view of its block)."""
    if arr.dtype.kind == "b":
        np.logical_not(arr, out=arr)
    elif arr.dtype.kind == "M":
        arr[...] = arr + np.timedelta64(1, "s")
    else:
        arr[...] = arr + 1
