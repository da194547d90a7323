"""The benchmark's state generator makes the documented shapes, and the runner completes on S.

No timing is asserted here: the bench measures, tests only check that it works.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from types import ModuleType

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def gen() -> ModuleType:
    # bench/ is a top-level package of the repository, not part of the installed library.
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    return importlib.import_module("bench.gen_state")


@pytest.mark.parametrize(("size", "pairs", "bars"), [("S", 10, 500), ("M", 50, 5_000)])
def test_state_has_documented_shape(gen: ModuleType, size: str, pairs: int, bars: int) -> None:
    state = gen.make_state(size)
    assert set(state) == {
        "active_positions",
        "pair_states",
        "portfolio_peak_value",
        "pair_peak_values",
        "suspended_pairs",
        "portfolio_trading_suspended",
        "cash",
    }
    pair_states = state["pair_states"]
    assert len(pair_states) == pairs
    for name, ps in pair_states.items():
        sym1, sym2 = name.split("-")
        assert len(sym1) == len(sym2) == 6
        for key, series_name in (("price1", sym1), ("price2", sym2), ("spread", "spread")):
            s = ps[key]
            assert isinstance(s, pd.Series)
            assert len(s) == bars
            assert s.dtype == np.float64
            assert s.name == series_name
            assert isinstance(s.index, pd.DatetimeIndex)
            assert str(s.index.tz) == "UTC"
            assert s.index.freqstr == "min"
            assert s.index.name == "time"
        assert isinstance(ps["stats"], pd.DataFrame)
        assert 0 < len(ps["stats"]) <= 10
        assert all(dt == np.float64 for dt in ps["stats"].dtypes)
        assert isinstance(ps["last_update"], datetime)
        assert ps["last_update"].tzinfo is not None
        assert isinstance(ps["hedge_ratio"], float)
    # No buffers are shared between series (each comes from its own feed).
    first = pair_states[next(iter(pair_states))]
    assert not np.shares_memory(first["price1"].index.asi8, first["price2"].index.asi8)

    positions = state["active_positions"]
    assert len(positions) == pairs // 5
    for pair, pos in positions.items():
        assert pair in pair_states
        assert pos["entry_time"].tzinfo is not None
        assert isinstance(pos["entry_zscore"], float)
        assert pos["side"] in {"long", "short"}
        assert isinstance(pos["lots"], tuple)
        assert len(pos["lots"]) == 2
        assert all(isinstance(x, float) for x in pos["lots"])
        assert isinstance(pos["entry_prices"], tuple)

    assert isinstance(state["portfolio_peak_value"], float)
    assert set(state["pair_peak_values"]) == set(pair_states)
    assert isinstance(state["suspended_pairs"], set)
    assert state["suspended_pairs"] <= set(pair_states)
    assert state["portfolio_trading_suspended"] is False
    assert state["cash"] == Decimal("100000.00")

    # Three series of float64 values with an 8-byte timestamp index each, plus the stats frames.
    stats_bytes = sum(
        ps["stats"].to_numpy().nbytes + ps["stats"].index.nbytes for ps in pair_states.values()
    )
    assert gen.raw_array_bytes(state) == pairs * 3 * bars * 16 + stats_bytes


def test_trading_parts_split_the_same_state(gen: ModuleType) -> None:
    positions, pair_states, portfolio = gen.make_trading_parts("S", seed=3)
    state = gen.make_state("S", seed=3)
    assert positions == state["active_positions"]
    assert list(pair_states) == list(state["pair_states"])
    assert set(portfolio) == set(state) - {"active_positions", "pair_states"}
    for key, value in portfolio.items():
        assert state[key] == value
    for pair, ps in pair_states.items():
        pd.testing.assert_series_equal(ps["spread"], state["pair_states"][pair]["spread"])
    # Another seed gives other data; the same seed gives the same (deterministic).
    other = gen.make_state("S", seed=4)
    assert other["portfolio_peak_value"] != state["portfolio_peak_value"]
    assert gen.make_state("S", seed=3)["portfolio_peak_value"] == state["portfolio_peak_value"]


def test_unknown_size_is_refused(gen: ModuleType) -> None:
    with pytest.raises(ValueError, match="unknown size"):
        gen.make_state("XL")


def test_runner_completes_on_small_size_and_prints_table(tmp_path: Path) -> None:
    out_json = tmp_path / "result.json"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.run",
            "--size",
            "S",
            "--repeat",
            "1",
            "--dir",
            str(tmp_path),
            "--json",
            str(out_json),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "size S: 10 pairs x 500 one-minute bars" in out
    assert "save ms" in out
    assert "load ms" in out
    for method in ("json-handwritten", "pickle5", "pickle5+fsync", "pickle5+zstd+fernet"):
        assert method in out
    # Every baseline round-trips: pickle exactly, the hand-written JSON losing names and freq.
    lines = {
        line.split()[0]: line for line in out.splitlines() if line.startswith(("json", "pick"))
    }
    assert "exact" in lines["pickle5+zstd+fernet"]
    assert "lossy" in lines["json-handwritten"]
    # statevault rows are there, measured or saying why not; no method loads a wrong state.
    assert "statevault+zstd+fernet" in out
    assert "WRONG" not in out
    assert "error:" not in out
    assert out_json.is_file()
    # The temporary work directory is removed afterwards.
    assert list(tmp_path.iterdir()) == [out_json]
