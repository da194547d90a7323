"""statevault.open_state: the read-only inspection API the command line is built on."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

import statevault
from statevault import (
    CorruptStateError,
    NotAStateFileError,
    StateManager,
    StateNotFoundError,
    TradingStateManager,
    UnknownTypeTagError,
    WrongKeyError,
    generate_key,
)
from statevault.inspection import KeepVersionsMismatch, VersionNotRetained
from statevault.layers import NoSuchName, SectionRef


@dataclasses.dataclass
class Model:
    weight: float


def _trading(path: Path, **options: object) -> TradingStateManager:
    return TradingStateManager(path, spool_dir=False, **options)  # type: ignore[arg-type]


def _snapshot(path: Path) -> dict[str, bytes]:
    """Every file under the state's folder: a view must not change one byte."""
    return {str(p): p.read_bytes() for p in sorted(path.parent.rglob("*")) if p.is_file()}


@pytest.fixture
def trading_state(tmp_path: Path) -> Path:
    path = tmp_path / "trader.state"
    mgr = _trading(path)
    mgr.register_type(Model, "test.model", encode=dataclasses.asdict, decode=lambda d: Model(**d))
    for n in range(3):
        mgr.save_trading(
            {"EURUSD-GBPUSD": {"side": "long", "n": n}},
            {"EURUSD-GBPUSD": {"zscore": 1.5 + n}, "AUDUSD-NZDUSD": {"model": Model(0.5)}},
            {"cash": 1000.0 + n},
        )
    return path


def test_a_view_reads_header_root_one_pair_and_versions_without_writing(
    trading_state: Path,
) -> None:
    before = _snapshot(trading_state)
    view = statevault.open_state(trading_state, spool_dir=False)
    assert view.url.endswith("trader.state")
    assert view.exists()
    assert view.header().generation == 3
    assert view.current_generation() == 3
    root = view.root()
    assert root["cash"] == 1002.0
    assert all(isinstance(ref, SectionRef) for ref in root["pair_states"].values())
    # One pair is its own section: reading it never decodes the pair holding a type this
    # process does not know.
    assert view.section("EURUSD-GBPUSD") == {"zscore": 3.5}
    assert view.section("cash") == 1002.0
    with pytest.raises(UnknownTypeTagError) as info:
        view.read()
    assert info.value.path == "state['pair_states']['AUDUSD-NZDUSD']['model']"
    assert [v["generation"] for v in view.versions()] == [3, 2, 1]
    assert view.section("EURUSD-GBPUSD", version=1) == {"zscore": 1.5}
    assert view.header(version=2).generation == 2
    assert view.info()["generation"] == 3
    assert _snapshot(trading_state) == before


def test_unknown_names_list_what_there_is(trading_state: Path) -> None:
    view = statevault.open_state(trading_state, spool_dir=False)
    with pytest.raises(NoSuchName) as info:
        view.section("nope")
    assert isinstance(info.value, KeyError)
    assert info.value.keys == ["active_positions", "pair_states", "cash"]
    assert info.value.pairs == ["EURUSD-GBPUSD", "AUDUSD-NZDUSD"]


def test_load_and_verify_return_the_state_as_stored(tmp_path: Path) -> None:
    path = tmp_path / "a.state"
    mgr = StateManager(path, spool_dir=False, schema_version=2)
    mgr.save({"a": [1, 2], "b": {"c": None}})
    view = statevault.open_state(path, spool_dir=False)  # schema 1: nothing is migrated
    doc = view.read()
    assert (doc.state, doc.format, doc.trading) == ({"a": [1, 2], "b": {"c": None}}, "frame", False)
    assert doc.header is not None
    assert doc.header.meta["schema_version"] == 2
    checked = view.verify()
    assert checked.state == doc.state
    assert checked.size == path.stat().st_size
    assert view.load(version=1).state == doc.state


def test_legacy_json_is_read_as_the_trading_manager_reads_it(tmp_path: Path) -> None:
    path = tmp_path / "old.json"
    path.write_text(
        json.dumps(
            {
                "active_positions": {"P": {"entry_time": "2024-07-01T10:00:00+00:00"}},
                "pair_states": {},
            }
        )
    )
    view = statevault.open_state(path, spool_dir=False)
    doc = view.read()
    assert doc.format == "json"
    assert doc.trading
    assert doc.header is None
    entry = doc.state["active_positions"]["P"]["entry_time"]
    assert entry.isoformat() == "2024-07-01T10:00:00+00:00"
    assert view.json_document() == json.loads(path.read_text())  # as written: nothing restored
    assert view.section("active_positions") == doc.state["active_positions"]
    assert view.current_generation() is None


def test_errors_are_the_library_errors(tmp_path: Path) -> None:
    missing = statevault.open_state(tmp_path / "none.state", spool_dir=False)
    assert not missing.exists()
    with pytest.raises(StateNotFoundError):
        missing.header()
    with pytest.raises(StateNotFoundError):
        missing.section("a")
    junk = tmp_path / "junk.state"
    junk.write_bytes(b"\x89PNG" + bytes(100))
    with pytest.raises(NotAStateFileError):
        statevault.open_state(junk, spool_dir=False).json_document()
    key = generate_key()
    secret = tmp_path / "secret.state"
    StateManager(secret, spool_dir=False, encryption_key=key).save({"a": 1})
    other = statevault.open_state(secret, spool_dir=False, encryption_key=generate_key())
    assert other.header().encrypted  # the header needs no key
    with pytest.raises(WrongKeyError):
        other.verify()
    assert statevault.open_state(secret, spool_dir=False, encryption_key=key).verify().state == {
        "a": 1
    }
    damaged = tmp_path / "damaged.state"
    StateManager(damaged, spool_dir=False, compression=None).save({"a": "x" * 100})
    raw = bytearray(damaged.read_bytes())
    raw[-20] ^= 0xFF
    damaged.write_bytes(bytes(raw))
    with pytest.raises(CorruptStateError):
        statevault.open_state(damaged, spool_dir=False).verify()


def test_versions_not_retained_and_ring_mismatch(tmp_path: Path) -> None:
    path = tmp_path / "a.state"
    mgr = StateManager(path, spool_dir=False, keep_versions=5)
    for n in range(7):
        mgr.save({"n": n})
    view = statevault.open_state(path, spool_dir=False, keep_versions=5)
    assert [v["generation"] for v in view.versions()] == [7, 6, 5, 4, 3, 2]
    with pytest.raises(VersionNotRetained) as info:
        view.load(version=1)
    assert isinstance(info.value, StateNotFoundError)
    assert info.value.version == 1
    with pytest.raises(KeepVersionsMismatch) as mismatch:
        statevault.open_state(path, spool_dir=False, keep_versions=3).versions()
    assert mismatch.value.keep == 3
    assert "slot" in mismatch.value.sign
