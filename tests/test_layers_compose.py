"""The layers composed by hand, as StateManager composes them, over a real local store.

These tests pin the seams a later change builds on: each layer is usable with the one below
it alone, and the commit layer's recovery paths hold at that level.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from statevault import ConflictError, StorageUnavailableError, TypeRegistry
from statevault.layers import (
    Commit,
    Failover,
    FlatLayout,
    FrameStore,
    Recovery,
    StateCodec,
    TradingLayout,
)
from statevault.migrations import Migrations
from statevault.spool import Spool
from statevault.storage import ANY, ObjectInfo
from statevault.storage.local import LocalStore
from statevault.transforms import TransformConfig, default_transforms


class LandsThenFails(LocalStore):
    """A real local store whose next ``fail`` writes land and then report an error, as a PUT
    whose answer is lost or a rename followed by a failed directory fsync does."""

    fail = 0

    def write(self, chunks: Sequence[Any], *, expect: object = ANY) -> ObjectInfo:
        info = super().write(chunks, expect=expect)
        if self.fail:
            self.fail -= 1
            raise StorageUnavailableError(f"{self.url}: the answer was lost (injected)")
        return info


def compose(
    store: LocalStore, *, layout: type[FlatLayout] | type[TradingLayout] = FlatLayout
) -> tuple[StateCodec, Commit, Failover]:
    frames = FrameStore(store, config=TransformConfig(default_transforms.child(), "zstd", 3))
    codec = StateCodec(frames, layout(TypeRegistry()), Migrations(), kind="state", schema_version=1)
    commit = Commit(frames, codec.decode, "raise")
    return codec, commit, Failover(Recovery(commit, keep_versions=2), None)


def test_encode_then_save_then_load_through_the_layers(tmp_path: Path) -> None:
    codec, commit, failover = compose(LocalStore(str(tmp_path / "s.state")))
    snapshot = codec.encode({"pair_states": {"P": {"z": 1.0}}, "cash": 5})
    assert failover.save(snapshot) == 1
    assert (commit.generation, commit.observed) == (1, True)
    loaded = failover.load(fallback=False)
    assert (loaded.state, loaded.source) == (
        {"pair_states": {"P": {"z": 1.0}}, "cash": 5},
        "primary",
    )
    assert [v.generation for v in failover.recovery.versions()] == [1]


def test_a_trading_layout_puts_each_pair_in_its_own_section(tmp_path: Path) -> None:
    codec, _commit, failover = compose(LocalStore(str(tmp_path / "t.state")), layout=TradingLayout)
    failover.save(codec.encode({"pair_states": {"A": [1], "B": [2]}, "active_positions": {}}))
    header = codec.frames.header()
    assert len(header.sections) == 3  # the root and one per pair


def test_a_write_that_landed_but_reported_failure_is_recognised_as_ours(tmp_path: Path) -> None:
    store = LandsThenFails(str(tmp_path / "s.state"))
    codec, commit, failover = compose(store)
    failover.save(codec.encode({"n": 0}))
    store.fail = 1
    with pytest.raises(StorageUnavailableError):
        failover.save(codec.encode({"n": 1}))  # landed as generation 2, reported as failed
    assert commit.unacknowledged  # its first bytes are remembered
    # The store holds generation 2 with a token this writer never saw: not a conflict. The
    # next save is generation 3: one that may have landed is never used again.
    assert failover.save(codec.encode({"n": 2})) == 3
    assert commit.unacknowledged == []
    assert failover.load(fallback=False).state == {"n": 2}


def test_another_writer_is_a_conflict_at_the_commit_layer(tmp_path: Path) -> None:
    path = str(tmp_path / "s.state")
    codec, _commit, failover = compose(LocalStore(path))
    failover.save(codec.encode({"n": 0}))
    other_codec, _other, other = compose(LocalStore(path))
    other.load(fallback=False)
    other.save(other_codec.encode({"n": 1}))
    with pytest.raises(ConflictError) as info:
        failover.save(codec.encode({"n": 2}))
    assert (info.value.expected, info.value.found) == (1, 2)


def test_failover_spools_a_save_reported_as_failed(tmp_path: Path) -> None:
    store = LandsThenFails(str(tmp_path / "missing-dir-is-fine" / "s.state"))
    codec, commit, _ = compose(store)
    spool = Spool(tmp_path / "spool", store.url)
    failover = Failover(Recovery(commit, keep_versions=0), spool)
    failover.save(codec.encode({"n": 0}))
    store.fail = 1
    with pytest.raises(StorageUnavailableError, match="local spool"):
        failover.save(codec.encode({"n": 1}))
    assert failover.spooled_generation() == 2
    loaded = failover.load(fallback=False)
    assert loaded.state == {"n": 1}
