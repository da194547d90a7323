"""Delta saves on every backend of the tests (local, memory://, S3 on moto, generic fsspec):
ticks round-trip, versions read their shared packs, garbage collection deletes, and on S3 a
tick is at most three requests with history on (pack, HEAD, version slot), counted on the
server.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from statevault import StateManager
from statevault.delta.reader import pack_path
from test_delta_store import AppendPlanner

from backends import Backend, MotoS3

BACKENDS = [
    "local_backend",
    "memory_backend",
    pytest.param("s3_backend", marks=pytest.mark.s3),
    "generic_backend",
]


def manager(backend: Backend, **options: Any) -> StateManager:
    sm = StateManager(
        backend.url("state.sv"),
        storage_options=backend.storage_options or None,
        spool_dir=False,
        **options,
    )
    delta = sm.layers.commit.delta
    assert delta is not None
    delta.planner_class = AppendPlanner
    delta.grace, delta.gc_every, delta.max_packs = 0.0, 1, 3
    return sm


def grow(state: dict[str, Any], n: int) -> dict[str, Any]:
    return {
        "a": np.concatenate([state["a"], np.arange(n, dtype=np.float64)]),
        "b": state["b"],
        "n": state["n"] + 1,
    }


@pytest.mark.parametrize("name", BACKENDS)
def test_delta_ticks_versions_and_gc_on_every_backend(
    name: str, request: pytest.FixtureRequest
) -> None:
    backend: Backend = request.getfixturevalue(name)
    sm = manager(backend, keep_versions=2)
    state = {"a": np.arange(20_000, dtype=np.float64), "b": np.ones(9_000), "n": 0}
    saved = {}
    ever: set[bytes] = set()
    delta = sm.layers.commit.delta
    assert delta is not None
    for k in range(6):
        sm.save(state)
        assert delta.knowledge is not None
        ever |= set(delta.knowledge.index.packs)
        saved[sm.layers.commit.generation] = state
        state = grow(state, 100 + k)
    fresh = manager(backend, keep_versions=2)
    got = fresh.load()
    last = saved[max(saved)]
    assert np.array_equal(got["a"], last["a"])
    assert got["n"] == last["n"]
    for v in fresh.list_versions():
        old = fresh.load(version=v["generation"])
        assert np.array_equal(old["a"], saved[v["generation"]]["a"])
    assert delta.knowledge is not None
    assert len(delta.knowledge.index.packs) <= delta.max_packs
    # Every pack neither referenced nor still waiting in the retired list was collected.
    retired = {r.name for r in delta.knowledge.index.retired} - delta.deleted
    waiting = set(delta.knowledge.index.packs) | retired
    dead = ever - waiting
    assert dead  # compaction retired some
    assert all(sm.store.sibling(pack_path(n)).info() is None for n in dead)


@pytest.mark.s3
def test_an_s3_tick_is_at_most_three_requests_with_history(s3_backend: Backend) -> None:
    server: MotoS3 = s3_backend._server  # type: ignore[attr-defined]
    sm = manager(s3_backend, keep_versions=3)
    delta = sm.layers.commit.delta
    assert delta is not None
    # Garbage collection and compaction are amortised; this counts the tick itself.
    delta.gc_every, delta.max_packs = 10**6, 12
    state = {"a": np.arange(200_000, dtype=np.float64), "b": np.ones(9_000), "n": 0}
    sm.save(state)
    full = sm.last_save.bytes_written  # type: ignore[union-attr]
    for k in range(3):
        state = grow(state, 10 + k)
        mark = server.mark()
        sm.save(state)
        requests = server.requests_since(mark)
        assert len(requests) <= 3, requests
        assert sm.last_save.bytes_written < 0.05 * full  # type: ignore[union-attr]
