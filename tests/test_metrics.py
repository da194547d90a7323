"""Figures of every save and load: last_save / last_load, the DEBUG line, on_metrics."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pytest

from statevault import StateManager
from statevault.errors import SerializationError, StateNotFoundError
from statevault.metrics import CountingStore, LoadMetrics, SaveMetrics


def test_save_and_load_records(tmp_path: Any, caplog: pytest.LogCaptureFixture) -> None:
    seen: list[Any] = []
    sm = StateManager(tmp_path / "s.bin", on_metrics=seen.append, keep_versions=0)
    with caplog.at_level(logging.DEBUG, logger="statevault.metrics"):
        generation = sm.save({"a": np.arange(1000)})
        state = sm.load()
    np.testing.assert_array_equal(state["a"], np.arange(1000))
    save, load = seen
    assert isinstance(save, SaveMetrics)
    assert isinstance(load, LoadMetrics)
    assert save is sm.last_save
    assert load is sm.last_load
    assert save.ok
    assert save.generation == generation == 1
    assert not save.spooled
    packs = tmp_path / "s.bin.packs"  # delta saves: the pack, then the HEAD
    stored = sum(p.stat().st_size for p in packs.iterdir() if not p.name.startswith("."))
    assert save.bytes_written == (tmp_path / "s.bin").stat().st_size + stored
    assert save.requests >= 1
    assert save.total >= save.encode + save.transform + save.write
    assert load.ok
    assert load.generation == 1
    assert load.source == "primary"
    assert load.bytes_read == (tmp_path / "s.bin").stat().st_size + stored
    assert [r.getMessage().split(" ")[0] for r in caplog.records] == ["SaveMetrics", "LoadMetrics"]


def test_failures_are_recorded_and_a_bad_callback_is_logged(
    tmp_path: Any, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(record: Any) -> None:
        raise RuntimeError("exporter down")

    sm = StateManager(tmp_path / "s.bin", on_metrics=broken)
    with pytest.raises(SerializationError):
        sm.save({"bad": object()})
    assert sm.last_save is not None
    assert not sm.last_save.ok
    assert sm.last_save.bytes_written == 0
    assert "UnsupportedTypeError" in (sm.last_save.error or "")
    with pytest.raises(StateNotFoundError):
        sm.load()
    assert sm.last_load is not None
    assert not sm.last_load.ok
    assert "on_metrics callback failed" in caplog.text


@pytest.mark.s3
def test_requests_match_what_the_server_received(s3_backend: Any) -> None:
    server = s3_backend._server
    sm = StateManager(s3_backend.url(), storage_options=s3_backend.options(), keep_versions=2)
    sm.save({"n": 0})
    mark = server.mark()
    sm.save({"n": 1})
    received = server.requests_since(mark)
    assert sm.last_save is not None
    assert sm.last_save.requests == len(received)
    mark = server.mark()
    assert sm.load() == {"n": 1}
    assert sm.last_load is not None
    assert sm.last_load.requests == len(server.requests_since(mark))


def test_the_counting_layer_changes_nothing(tmp_path: Any) -> None:
    sm = StateManager(tmp_path / "s.bin")
    store = sm.layers.frames.store
    assert isinstance(store, CountingStore)
    assert sm.store is store.inner  # the public property is the backend's own store
    assert store.url == store.inner.url
    assert store.atomic == store.inner.atomic
    assert isinstance(store.sibling(".x"), CountingStore)
