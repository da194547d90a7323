"""The manager's behaviour (``statevault.testing.ManagerSuite``) on every backend of the tests.

``class TestS3(FullCorpus, ManagerSuite, S3Fixtures): pass`` is all a backend needs to join;
``FullCorpus`` swaps the suite's standard-library corpus for statevault's full one.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import statevault
from statevault import (
    StateManager,
    TradingStateManager,
)
from statevault.testing import ManagerSuite

from backends import (
    Backend,
    GenericFixtures,
    LocalFixtures,
    MemoryFixtures,
    MotoS3,
    S3Fixtures,
)
from emulators import AzureFixtures, GCSFixtures
from strategies import assert_same, values


def rich_state() -> dict[str, Any]:
    idx = pd.date_range("2024-03-01 09:00", periods=500, freq="min", tz="Europe/London")
    return {
        "t": datetime(2024, 3, 1, 9, 30, tzinfo=UTC),
        "prices": pd.Series(np.linspace(1.0, 2.0, 500), index=idx, name="EURUSD"),
        "frame": pd.DataFrame(
            {"a": np.arange(500), "b": pd.Categorical(["x", "y"] * 250)}, index=idx
        ),
        "seen": {"a", "b"},
        "cash": Decimal("100000.25"),
        "matrix": np.arange(12, dtype=">i4").reshape(3, 4),
        "by_pair": {("EURUSD", "GBPUSD"): [1.5, float("nan"), -0.0]},
    }


class FullCorpus:
    """statevault's own corpus on top of the suite's defaults: numpy, pandas, every codec type."""

    def sample_state(self) -> dict[str, Any]:
        return rich_state()

    def values(self) -> Any:
        return values(max_leaves=8)

    def assert_same(self, a: Any, b: Any) -> None:
        assert_same(a, b)

    def test_trading_summary_with_pandas(self, backend: Backend) -> None:
        tsm = TradingStateManager(
            backend.url("tp.state"), storage_options=backend.storage_options or None
        )
        idx = pd.date_range("2024-01-01", periods=100, freq="min", tz="UTC")
        pairs = {f"P{i}": {"price1": pd.Series(np.arange(100.0), index=idx)} for i in range(5)}
        assert tsm.save_trading_state({"P1": {"entry_time": idx[3]}}, pairs, {"peak": 1.5})
        summary = tsm.get_portfolio_summary()
        assert summary["portfolio"] == {"peak": 1.5}
        assert set(summary["pairs"]) == set(pairs)
        assert_same(tsm.load_trading_state()["pair_states"], pairs)


class TestLocal(FullCorpus, ManagerSuite, LocalFixtures):
    pass


class TestMemory(FullCorpus, ManagerSuite, MemoryFixtures):
    pass


class TestS3(FullCorpus, ManagerSuite, S3Fixtures):
    pass


class TestGeneric(FullCorpus, ManagerSuite, GenericFixtures):
    pass


class TestAzure(ManagerSuite, AzureFixtures):
    pass


class TestGCS(ManagerSuite, GCSFixtures):
    pass


# --------------------------------------------------------------------------- S3 specifics


@pytest.mark.parametrize("keep", [0, 3])
def test_s3_requests_per_save_and_load(s3_backend: Backend, moto_server: MotoS3, keep: int) -> None:
    """At most 2 requests a save and 1 a load; history adds exactly one PUT to a save."""
    url, options = s3_backend.url("count.state"), dict(s3_backend.storage_options)
    extra = 1 if keep else 0

    def StateManager(url: str, **kw: Any) -> statevault.StateManager:
        return statevault.StateManager(url, keep_versions=keep, **kw)

    first = StateManager(url, storage_options=options)
    mark = moto_server.mark()
    first.save({"n": 0})  # first save of a manager that has seen nothing: probe + PUT
    assert len(moto_server.requests_since(mark)) <= 2 + extra, moto_server.requests_since(mark)
    mark = moto_server.mark()
    first.save({"n": 1})  # steady state: one conditional PUT (+ the version's PUT)
    key = url.removeprefix("s3://")
    assert (
        moto_server.requests_since(mark)
        == [f"PUT /{key}"] + [f"PUT /{key}.versions/{2 % (keep + 1)}"] * extra
    )
    fresh = StateManager(url, storage_options=options)
    mark = moto_server.mark()
    assert fresh.save_state({"n": 2})  # a fresh manager over an existing state
    assert len(moto_server.requests_since(mark)) <= 2 + extra, moto_server.requests_since(mark)
    reader = StateManager(url, storage_options=options)
    mark = moto_server.mark()
    assert reader.load() == {"n": 2}
    assert len(moto_server.requests_since(mark)) == 1
    mark = moto_server.mark()
    statevault.TradingStateManager(url, storage_options=options).get_portfolio_summary()
    assert len(moto_server.requests_since(mark)) <= 3


# --------------------------------------------------------------------------- processes

RACER = textwrap.dedent(
    """
    import json, sys
    from statevault import ConflictError, StateManager
    path, me, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    sm = StateManager(path, compression=None)
    acked = []
    while len(acked) < n:
        state = sm.load_state()
        entries = state.get("entries", [])
        entry = f"{me}-{len(acked)}"
        try:
            sm.save({"entries": [*entries, entry]})
        except ConflictError:
            continue  # refused, not lost: load again and retry
        acked.append(entry)
    print(json.dumps(acked))
    """
)


@pytest.mark.parametrize(
    ("processes", "saves"),
    [pytest.param(2, 10, id="quick"), pytest.param(4, 25, id="full", marks=pytest.mark.slow)],
)
def test_processes_racing_lose_no_acknowledged_save(
    tmp_path: Path, processes: int, saves: int
) -> None:
    path = tmp_path / "race.state"
    StateManager(path).save({"entries": []})
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", RACER, str(path), f"p{i}", str(saves)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for i in range(processes)
    ]
    acked: list[str] = []
    deadline = time.monotonic() + 120
    for proc in procs:
        out, _ = proc.communicate(timeout=max(1, deadline - time.monotonic()))
        assert proc.returncode == 0
        acked += json.loads(out)
    final = StateManager(path).load()["entries"]
    assert sorted(final) == sorted(acked)  # every acknowledged save is there, exactly once
    assert len(final) == processes * saves
    assert os.path.getsize(path) > 0
