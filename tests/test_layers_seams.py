"""The layers behind StateManager: the encode/commit seam, StateInfo, and error paths that
name the user's state (not the layout's wrapping)."""

from __future__ import annotations

import dataclasses
import uuid
from pathlib import Path

import pytest

from statevault import (
    ConflictError,
    StateInfo,
    StateManager,
    TradingStateManager,
    UnknownTypeTagError,
    UnsupportedTypeError,
)
from statevault.layers import Snapshot


class Opaque:
    pass


@dataclasses.dataclass
class Model:
    weight: float


def memory_url() -> str:
    return f"memory://layers-{uuid.uuid4().hex}/state"


def test_encode_does_no_io_and_commit_writes_what_save_would(tmp_path: Path) -> None:
    path = tmp_path / "a.state"
    mgr = StateManager(path, spool_dir=False, keep_versions=0)
    snapshot = mgr.encode({"x": 1, "items": [1.5, "two"]})
    assert isinstance(snapshot, Snapshot)
    assert not path.exists()  # encoding touched no storage
    assert mgr.commit(snapshot) == 1
    assert StateManager(path, spool_dir=False).load() == {"x": 1, "items": [1.5, "two"]}
    # A snapshot is a state at one moment: committing it again is a new generation of it.
    assert mgr.commit(snapshot) == 2
    assert mgr.load() == {"x": 1, "items": [1.5, "two"]}


def test_commit_of_a_stale_snapshot_is_checked_like_a_save(tmp_path: Path) -> None:
    path = tmp_path / "a.state"
    first = StateManager(path, spool_dir=False)
    first.save({"n": 0})
    other = StateManager(path, spool_dir=False)
    other.load()
    other.save({"n": 1})
    with pytest.raises(ConflictError):
        first.commit(first.encode({"n": 2}))
    assert StateManager(path, spool_dir=False).load() == {"n": 1}


def test_encode_rejects_what_save_rejects_before_any_io(tmp_path: Path) -> None:
    path = tmp_path / "a.state"
    mgr = StateManager(path, spool_dir=False)
    with pytest.raises(UnsupportedTypeError) as info:
        mgr.encode({"v": Opaque()})
    assert info.value.path == "state['v']"
    assert not path.exists()


def test_state_info_is_typed_and_its_dict_is_get_state_info(tmp_path: Path) -> None:
    mgr = StateManager(tmp_path / "a.state", spool_dir=False)
    mgr.save({"a": 1})
    info = mgr.state_info()
    assert isinstance(info, StateInfo)
    assert info.generation == 1
    assert info.readable
    assert info.exists
    as_dict = info.as_dict()
    assert as_dict == mgr.get_state_info()
    assert list(as_dict) == [
        "url", "protocol", "exists", "size", "last_modified", "generation", "format_version",
        "transforms", "encrypted", "sections", "created", "kind", "readable", "atomic",
        "conditional_writes", "spool", "unflushed", "schema_version", "keep_versions",
        "last_load_source", "fallback", "history_error", "delta",
    ]  # fmt: skip


def test_state_info_error_key_only_when_there_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "a.state"
    path.write_bytes(b"not a state at all")
    info = StateManager(path, spool_dir=False).get_state_info()
    assert info["readable"] is False
    assert info["error"].startswith("NotAStateFileError")


def test_spooled_state_shows_in_state_info(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    mgr = StateManager(blocker / "a.state", spool_dir=tmp_path / "spool")
    assert mgr.save_state({"a": 1}) is False  # the primary's folder is a file
    info = mgr.state_info()
    assert info.unflushed
    assert info.spool is not None
    assert info.spool.generation == 1
    assert mgr.get_state_info()["spool"] == {
        "path": info.spool.path,
        "size": info.spool.size,
        "generation": 1,
        "base": None,  # the primary was never reached: flush_spool() will not drop it
    }


def test_unsupported_value_names_the_pair_path() -> None:
    mgr = TradingStateManager(memory_url(), spool_dir=False)
    with pytest.raises(UnsupportedTypeError) as info:
        mgr.save_trading({}, {"EURUSD-GBPUSD": {"model": Opaque()}})
    assert info.value.path == "state['pair_states']['EURUSD-GBPUSD']['model']"
    assert "state['pair_states']['EURUSD-GBPUSD']['model']" in str(info.value)
    assert "section[" not in str(info.value)


def test_unsupported_value_in_the_root_names_the_state_path() -> None:
    mgr = TradingStateManager(memory_url(), spool_dir=False)
    with pytest.raises(UnsupportedTypeError) as info:
        mgr.save_trading({"EURUSD-GBPUSD": {"broker": Opaque()}}, {})
    assert info.value.path == "state['active_positions']['EURUSD-GBPUSD']['broker']"
    assert "state['state']" not in str(info.value)
    flat = StateManager(memory_url(), spool_dir=False)
    with pytest.raises(UnsupportedTypeError) as info:
        flat.save({"v": [1, Opaque()]})
    assert info.value.path == "state['v'][1]"
    assert "state['state']" not in str(info.value)


@pytest.mark.parametrize("cls", [StateManager, TradingStateManager])
def test_unknown_type_on_load_names_the_state_path(cls: type[StateManager]) -> None:
    url = memory_url()
    writer = cls(url, spool_dir=False)
    writer.register_type(
        Model, "test.model", encode=dataclasses.asdict, decode=lambda d: Model(**d)
    )
    writer.save({"pair_states": {"EURUSD-GBPUSD": {"model": Model(0.5)}}, "cash": 1.0})
    with pytest.raises(UnknownTypeTagError) as info:
        cls(url, spool_dir=False).load()
    assert info.value.path == "state['pair_states']['EURUSD-GBPUSD']['model']"
    assert "state['state']" not in str(info.value)


def test_trading_manager_is_a_layout_not_overrides() -> None:
    from statevault.layers import FlatLayout, TradingLayout

    assert StateManager.layout_class is FlatLayout
    assert TradingStateManager.layout_class is TradingLayout
    assert TradingStateManager.kind == TradingLayout.kind == "trading"
    overridden = {
        name
        for name, value in vars(TradingStateManager).items()
        if name.startswith("_") and not name.startswith("__") and name in vars(StateManager)
    }
    assert overridden == set()  # no private hook of StateManager is overridden
