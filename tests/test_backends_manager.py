"""The manager's behaviour, written once and run on every backend (local, memory, S3, generic).

``class TestS3(ManagerSuite, S3Fixtures): pass`` is all a backend needs to join.
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
from hypothesis import HealthCheck, given, settings

import statevault
from statevault import (
    ConflictError,
    CorruptStateError,
    MissingKeyError,
    StateManager,
    StateNotFoundError,
    TradingStateManager,
    WrongKeyError,
    generate_key,
)

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

KEY = generate_key()
STACKS: dict[str, dict[str, Any]] = {
    "none": {"compression": None},
    "zstd": {"compression": "zstd"},
    "fernet": {"compression": None, "encryption_key": KEY},
    "zstd+fernet": {"compression": "zstd", "encryption_key": KEY},
}


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


class ManagerSuite:
    """Behaviour every backend must show through ``StateManager``."""

    def manager(self, backend: Backend, name: str = "s.state", **options: Any) -> StateManager:
        return StateManager(
            backend.url(name), storage_options=backend.storage_options or None, **options
        )

    @pytest.mark.parametrize("stack", list(STACKS))
    def test_round_trip_under_every_transform_stack(self, backend: Backend, stack: str) -> None:
        sm = self.manager(backend, **STACKS[stack])
        state = rich_state()
        assert sm.save_state(state)
        assert_same(self.manager(backend, encryption_key=KEY).load(), state)
        assert sm.get_state_info()["transforms"] == [t for t in ("zstd", "fernet") if t in stack]

    @pytest.mark.parametrize("stack", list(STACKS))
    @settings(max_examples=15, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(value=values(max_leaves=8))
    def test_round_trip_property(self, backend: Backend, stack: str, value: Any) -> None:
        """The codec's whole corpus (any nested value) through every transform stack."""
        sm = self.manager(
            backend, "prop.state", on_conflict="overwrite", keep_versions=0, **STACKS[stack]
        )
        sm.save({"v": value})
        assert_same(sm.load()["v"], value)

    def test_cross_reading_between_configurations(self, backend: Backend) -> None:
        writer = self.manager(backend, compression="zstd", encryption_key=KEY)
        writer.save({"x": list(range(50))})
        plain_reader = self.manager(backend, compression=None, encryption_key=[generate_key(), KEY])
        assert plain_reader.load() == {"x": list(range(50))}

    def test_exists_info_delete(self, backend: Backend) -> None:
        sm = self.manager(backend)
        assert sm.state_exists() is False
        assert sm.get_state_info()["exists"] is False
        sm.save({"a": 1})
        sm.save({"a": 2})
        info = sm.get_state_info()
        assert info["exists"] is True
        assert info["generation"] == 2
        assert info["size"] > 0
        assert info["last_modified"].tzinfo is not None
        assert sm.delete_state() is True
        assert sm.state_exists() is False
        with pytest.raises(StateNotFoundError):
            sm.load()

    def test_key_errors(self, backend: Backend) -> None:
        self.manager(backend, encryption_key=KEY).save({"secret": 1})
        with pytest.raises(MissingKeyError):
            self.manager(backend).load()
        with pytest.raises(WrongKeyError):
            self.manager(backend, encryption_key=generate_key()).load()

    def test_damage_is_detected_and_left_in_place(self, backend: Backend) -> None:
        sm = self.manager(backend, compression=None)
        sm.save({"a": "x" * 1000})
        store = sm.store
        data = bytearray(store.read()[0])
        data[-10] ^= 0x01
        store.write([bytes(data)])
        with pytest.raises(CorruptStateError):
            self.manager(backend).load()
        # The forgiving load falls back to the retained copy of that generation, loudly.
        fallback = self.manager(backend)
        assert fallback.load_state() == {"a": "x" * 1000}
        assert fallback.last_load_source == "version 1"
        assert fallback.get_state_info()["fallback"]["generation"] == 1
        # Without history there is nothing to fall back to: empty, and said to be a failure.
        no_history = self.manager(backend, keep_versions=0)
        assert no_history.load_state() == {}
        assert no_history.last_load_source == "failed"
        assert isinstance(no_history.last_load_error, CorruptStateError)
        assert bytes(store.read()[0]) == bytes(data)  # nothing was "repaired" away

    def test_stale_writer_conflicts(self, backend: Backend) -> None:
        a, b = self.manager(backend), self.manager(backend)
        a.save({"who": "a"})
        b.load()
        a.save({"who": "a", "n": 2})
        with pytest.raises(ConflictError) as ei:
            b.save({"who": "b"})
        assert (ei.value.expected, ei.value.found) == (1, 2)
        assert self.manager(backend).load() == {"who": "a", "n": 2}

    def test_trading_summary_and_full_load(self, backend: Backend) -> None:
        tsm = TradingStateManager(
            backend.url("t.state"), storage_options=backend.storage_options or None
        )
        idx = pd.date_range("2024-01-01", periods=100, freq="min", tz="UTC")
        pairs = {f"P{i}": {"price1": pd.Series(np.arange(100.0), index=idx)} for i in range(5)}
        assert tsm.save_trading_state({"P1": {"entry_time": idx[3]}}, pairs, {"peak": 1.5})
        summary = tsm.get_portfolio_summary()
        assert summary["portfolio"] == {"peak": 1.5}
        assert set(summary["pairs"]) == set(pairs)
        assert_same(tsm.load_trading_state()["pair_states"], pairs)


class TestLocal(ManagerSuite, LocalFixtures):
    pass


class TestMemory(ManagerSuite, MemoryFixtures):
    pass


class TestS3(ManagerSuite, S3Fixtures):
    pass


class TestGeneric(ManagerSuite, GenericFixtures):
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


def test_s3_outage_spools_and_the_primary_ends_newest(
    s3_backend: Backend, moto_server: MotoS3, tmp_path: Path
) -> None:
    """Stop the S3 server in the middle of a run of saves, keep saving, start it again."""
    from moto.server import ThreadedMotoServer

    host, port = moto_server.endpoint.removeprefix("http://").split(":")
    url = s3_backend.url("outage.state")
    options = dict(s3_backend.storage_options)
    sm = StateManager(url, storage_options=options, spool_dir=tmp_path / "spool")
    acknowledged: list[int] = []
    for i in range(5):
        assert sm.save_state({"i": i})
        acknowledged.append(i)
    moto_server._server.stop()
    try:
        for i in range(5, 10):
            assert sm.save_state({"i": i}) is False  # not acknowledged, but spooled
        assert sm.get_state_info()["unflushed"] is True
        assert sm.load_state() == {"i": 9}
        assert sm.last_load_source == "spool"
    finally:
        # Same port, same in-process moto backend: the bucket and objects are still there.
        server = ThreadedMotoServer(ip_address=host, port=int(port), verbose=False)
        server.start()
        moto_server._server = server
    for i in range(10, 12):
        assert sm.save_state({"i": i})
        acknowledged.append(i)
    assert StateManager(url, storage_options=options, spool_dir=False).load() == {"i": 11}
    assert sm.get_state_info()["unflushed"] is False


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


def test_processes_racing_lose_no_acknowledged_save(tmp_path: Path) -> None:
    path = tmp_path / "race.state"
    StateManager(path).save({"entries": []})
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", RACER, str(path), f"p{i}", "25"],
            stdout=subprocess.PIPE,
            text=True,
        )
        for i in range(4)
    ]
    acked: list[str] = []
    deadline = time.monotonic() + 120
    for proc in procs:
        out, _ = proc.communicate(timeout=max(1, deadline - time.monotonic()))
        assert proc.returncode == 0
        acked += json.loads(out)
    final = StateManager(path).load()["entries"]
    assert sorted(final) == sorted(acked)  # every acknowledged save is there, exactly once
    assert len(final) == 100
    assert os.path.getsize(path) > 0
