"""TradingStateManager: exact round trips, a summary that skips price data, config, legacy JSON."""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import shutil
import sys
import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar

import fsspec
import numpy as np
import pandas as pd
import pytest
from fsspec.implementations.local import LocalFileOpener, LocalFileSystem
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from statevault import (
    MissingKeyError,
    NotAStateFileError,
    SerializationError,
    StateError,
    StateManager,
    StateNotFoundError,
    TradingStateManager,
    WrongKeyError,
    cli,
    generate_key,
)
from statevault.demo import diff_states
from statevault.frame import MAGIC

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).with_name("fixtures")

try:  # the project's shared exact comparison, when present
    from strategies import assert_same  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover - fallback until tests/strategies.py exists

    def assert_same(a: Any, b: Any) -> None:
        diffs = diff_states(a, b)
        assert not diffs, "\n".join(diffs)


def _load_module(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


gen_state = _load_module("sv_bench_gen_state", ROOT / "bench" / "gen_state.py")
make_legacy = _load_module("sv_make_legacy", FIXTURES / "make_legacy.py")


def compose(parts: tuple[dict[str, Any], dict[str, Any], dict[str, Any]]) -> dict[str, Any]:
    positions, pair_states, portfolio = parts
    return {"active_positions": positions, "pair_states": pair_states, **portfolio}


# -- a filesystem that counts the bytes it serves ------------------------------------------


class _CountingOpener(LocalFileOpener):  # type: ignore[misc]
    def read(self, *args: Any, **kwargs: Any) -> bytes:
        data: bytes = super().read(*args, **kwargs)
        CountingFileSystem.bytes_read += len(data)
        return data


class CountingFileSystem(LocalFileSystem):  # type: ignore[misc]
    """The real local filesystem of fsspec, counting every byte read through it.

    statevault has no store registered for ``countingfile://``, so it is served by the
    generic fsspec store: the same code path as any third-party fsspec backend.
    """

    protocol: ClassVar[tuple[str, ...]] = ("countingfile",)
    bytes_read: ClassVar[int] = 0

    def _open(self, path: str, mode: str = "rb", block_size: Any = None, **kwargs: Any) -> Any:
        path = self._strip_protocol(path)
        if "r" in mode and "+" not in mode:
            return _CountingOpener(path, mode, fs=self, **kwargs)
        return super()._open(path, mode, block_size, **kwargs)


fsspec.register_implementation("countingfile", CountingFileSystem, clobber=True)


@pytest.fixture
def counting_url(tmp_path: Path) -> str:
    CountingFileSystem.bytes_read = 0
    return f"countingfile://{tmp_path.as_posix()}/trader.state"


# -- round trips ----------------------------------------------------------------------------


def test_round_trip_is_exact_with_portfolio_keys_at_top_level(tmp_path: Path) -> None:
    parts = gen_state.make_trading_parts("S", seed=3)
    tsm = TradingStateManager(tmp_path / "trading_state.json")
    assert tsm.save_trading_state(*parts) is True

    loaded = TradingStateManager(tmp_path / "trading_state.json").load_trading_state()

    assert_same(compose(parts), loaded)
    assert isinstance(loaded["suspended_pairs"], set)
    assert isinstance(loaded["cash"], Decimal)
    price = loaded["pair_states"]["EURUSD-GBPUSD"]["price1"]
    assert isinstance(price.index, pd.DatetimeIndex)
    assert str(price.index.tz) == "UTC"
    assert price.index.freq == "min"
    assert isinstance(loaded["active_positions"][next(iter(parts[0]))]["lots"], tuple)


def test_keyword_form_of_the_spec_and_optional_portfolio(tmp_path: Path) -> None:
    tsm = TradingStateManager(str(tmp_path / "t.state"))
    assert tsm.save_trading_state(
        active_positions={"A-B": {"entry_time": datetime(2024, 1, 1, tzinfo=UTC)}},
        pair_states={"A-B": {"zscore": 1.5}},
    )
    state = tsm.load_trading_state()
    assert state == {
        "active_positions": {"A-B": {"entry_time": datetime(2024, 1, 1, tzinfo=UTC)}},
        "pair_states": {"A-B": {"zscore": 1.5}},
    }


_names = st.text(alphabet="ABCDEFGHJKLMNPQRSTUVWXYZ-", min_size=1, max_size=12)
_times = st.datetimes(
    min_value=datetime(2000, 1, 1),
    max_value=datetime(2100, 1, 1),
    timezones=st.sampled_from([UTC, timezone(timedelta(hours=3)), None]),
)
_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(), _times
)


@st.composite
def trading_parts(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    pairs = draw(st.lists(_names, max_size=4, unique=True))
    pair_states: dict[str, Any] = {}
    for pair in pairs:
        n = draw(st.integers(0, 20))
        values = draw(st.lists(st.floats(allow_nan=False, width=64), min_size=n, max_size=n))
        tz = draw(st.sampled_from(["UTC", "Europe/Athens", None]))
        index = pd.date_range("2024-03-31 00:00", periods=n, freq="h", tz=tz)
        pair_states[pair] = {
            "price1": pd.Series(values, index=index, name=pair.split("-")[0], dtype="float64"),
            "extra": draw(st.dictionaries(st.text(max_size=5), _scalars, max_size=3)),
        }
    held = draw(st.lists(st.sampled_from(pairs), unique=True)) if pairs else []
    positions = {
        pair: {"entry_time": draw(_times), "side": draw(st.sampled_from(["long", "short"]))}
        for pair in held
    }
    suspended = draw(st.lists(st.sampled_from(pairs), unique=True)) if pairs else []
    portfolio = {
        "portfolio_peak_value": draw(st.floats(allow_nan=False)),
        "pair_peak_values": {p: draw(st.floats(allow_nan=False)) for p in pairs},
        "suspended_pairs": set(suspended),
        "portfolio_trading_suspended": draw(st.booleans()),
    }
    return positions, pair_states, portfolio


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(parts=trading_parts())
def test_property_any_trading_state_round_trips_exactly(
    parts: tuple[dict[str, Any], dict[str, Any], dict[str, Any]],
) -> None:
    url = f"memory://sv-trading-prop/{uuid.uuid4().hex}.state"
    tsm = TradingStateManager(url)
    try:
        tsm.save_trading(*parts)
        assert_same(compose(parts), TradingStateManager(url).load_trading_state())
    finally:
        tsm.delete_state()


def test_reserved_portfolio_keys_are_refused(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    tsm = TradingStateManager(tmp_path / "t.state")
    with caplog.at_level(logging.ERROR, logger="statevault"):
        assert tsm.save_trading_state({}, {}, {"pair_states": {}}) is False
    assert "reserved" in caplog.text
    with pytest.raises(SerializationError, match="reserved"):
        tsm.save_trading({}, {}, {"active_positions": {}})
    assert not tsm.state_exists()


def test_unsupported_value_fails_the_save_and_keeps_the_old_state(tmp_path: Path) -> None:
    tsm = TradingStateManager(tmp_path / "t.state")
    assert tsm.save_trading_state({}, {"A-B": {"z": 1.0}}, {"portfolio_peak_value": 1.0})
    before = (tmp_path / "t.state").read_bytes()
    assert tsm.save_trading_state({}, {"A-B": {"z": object()}}, {}) is False
    assert (tmp_path / "t.state").read_bytes() == before
    assert tsm.load_trading_state()["portfolio_peak_value"] == 1.0


def test_nothing_saved_yet_loads_empty(tmp_path: Path) -> None:
    tsm = TradingStateManager(tmp_path / "missing.state")
    assert tsm.state_exists() is False
    assert tsm.load_trading_state() == {}
    assert tsm.get_portfolio_summary() == {}
    with pytest.raises(StateNotFoundError):
        tsm.load_pair_state("EURUSD-GBPUSD")


# -- the summary ----------------------------------------------------------------------------


def test_summary_matches_a_full_load(tmp_path: Path) -> None:
    parts = gen_state.make_trading_parts("S", seed=5)
    tsm = TradingStateManager(tmp_path / "t.state")
    generation = tsm.save_trading(*parts)

    summary = TradingStateManager(tmp_path / "t.state").get_portfolio_summary()
    full = TradingStateManager(tmp_path / "t.state").load_trading_state()

    assert_same(full["active_positions"], summary["active_positions"])
    portfolio = {k: v for k, v in full.items() if k not in ("active_positions", "pair_states")}
    assert_same(portfolio, summary["portfolio"])
    assert summary["generation"] == generation
    assert isinstance(summary["last_modified"], datetime)
    assert list(summary["pairs"]) == list(full["pair_states"])
    for pair, overview in summary["pairs"].items():
        price1 = full["pair_states"][pair]["price1"]
        assert overview["price1"]["type"] == "Series"
        assert overview["price1"]["shape"] == (len(price1),)
        assert overview["price1"]["start"] == price1.index[0]
        assert overview["price1"]["end"] == price1.index[-1]
        assert overview["price1"]["last"] == price1.iloc[-1]
        assert overview["stats"]["type"] == "DataFrame"
        assert overview["hedge_ratio"] == full["pair_states"][pair]["hedge_ratio"]
        assert overview["last_update"] == full["pair_states"][pair]["last_update"]


def test_pair_overview_stays_small_whatever_a_pair_holds(tmp_path: Path) -> None:
    pair_state = {
        "note": "short text",
        "blob": "x" * 10_000,
        "raw": b"\x00" * 5_000,
        "weights": np.arange(1_000, dtype="float64"),
        "beta": np.float64(1.25),
        "params": {"window": 30, "model": {"coef": [0.1, 0.2], "fitted": {"deep": 1}}},
        "tickets": list(range(1_000)),
        "legs": ("EURUSD", "GBPUSD"),
        "cash": Decimal("12.50"),
    }
    tsm = TradingStateManager(tmp_path / "t.state")
    tsm.save_trading({}, {"A-B": pair_state}, {})
    overview = tsm.get_portfolio_summary()["pairs"]["A-B"]
    assert overview == {
        "note": "short text",
        "blob": {"type": "str", "length": 10_000},
        "raw": {"type": "bytes", "length": 5_000},
        "weights": {"type": "ndarray", "shape": (1_000,)},
        "beta": 1.25,
        "params": {"window": 30, "model": {"type": "dict", "length": 2}},
        "tickets": {"type": "list", "length": 1_000},
        "legs": ("EURUSD", "GBPUSD"),
        "cash": Decimal("12.50"),
    }
    assert_same(pair_state, tsm.load_pair_state("A-B"))


def _stored(path: Path) -> int:
    """The state's bytes: the HEAD plus the delta packs it references (its sidecar)."""
    packs = path.with_name(path.name + ".packs")
    extra = sum(p.stat().st_size for p in packs.iterdir()) if packs.exists() else 0
    return path.stat().st_size + extra


def test_summary_of_the_L_state_reads_under_two_percent(counting_url: str, tmp_path: Path) -> None:
    parts = gen_state.make_trading_parts("L", seed=1)
    tsm = TradingStateManager(counting_url)
    tsm.save_trading(*parts)
    del parts
    stored = _stored(tmp_path / "trader.state")

    CountingFileSystem.bytes_read = 0
    summary = TradingStateManager(counting_url).get_portfolio_summary()
    read = CountingFileSystem.bytes_read

    assert len(summary["pairs"]) == 100
    assert summary["active_positions"]
    assert summary["portfolio"]["suspended_pairs"]
    assert read > 0  # the counter does see the storage's reads
    assert read <= 0.02 * stored, f"summary read {read:,} of {stored:,} bytes"

    # One pair: its own section and the root, nothing else.
    CountingFileSystem.bytes_read = 0
    pair = TradingStateManager(counting_url).load_pair_state("EURUSD-GBPUSD")
    assert len(pair["price1"]) == 50_000
    assert CountingFileSystem.bytes_read <= 0.03 * stored


def test_cli_show_section_reads_only_that_pair(
    counting_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    TradingStateManager(counting_url).save_trading(*gen_state.make_trading_parts("M", seed=6))
    stored = _stored(tmp_path / "trader.state")

    CountingFileSystem.bytes_read = 0
    assert cli.main(["show", counting_url, "--section", "EURUSD-GBPUSD", "--json"]) == 0
    read = CountingFileSystem.bytes_read

    assert json.loads(capsys.readouterr().out)["price1"]["shape"] == [5_000]
    # One pair of 50, plus the header and the root (with delta saves, the manifest HEAD, which
    # holds every pair's small data inline, and the pack's header: 7 % of M, measured).
    assert read <= 0.08 * stored, f"show --section read {read:,} of {stored:,} bytes"


def test_load_pair_state_matches_the_full_state(tmp_path: Path) -> None:
    parts = gen_state.make_trading_parts("S", seed=2)
    tsm = TradingStateManager(tmp_path / "t.state")
    tsm.save_trading(*parts)
    for pair, expected in parts[1].items():
        assert_same(expected, tsm.load_pair_state(pair))
    with pytest.raises(KeyError):
        tsm.load_pair_state("NOPE-NOPE")


def test_summary_of_an_encrypted_state_needs_the_key(tmp_path: Path) -> None:
    key = generate_key()
    path = tmp_path / "t.state"
    TradingStateManager(path, encryption_key=key).save_trading(
        {"A-B": {"side": "long"}}, {"A-B": {"z": 1.0}}, {"portfolio_peak_value": 5.0}
    )
    assert TradingStateManager(path, encryption_key=key).get_portfolio_summary()["portfolio"] == {
        "portfolio_peak_value": 5.0
    }
    with pytest.raises(MissingKeyError):
        TradingStateManager(path, encryption_key=None).get_portfolio_summary()
    with pytest.raises(WrongKeyError):
        TradingStateManager(path, encryption_key=generate_key()).get_portfolio_summary()


def test_summary_of_a_state_saved_by_the_generic_manager(tmp_path: Path) -> None:
    state = compose(gen_state.make_trading_parts("S", seed=4))
    StateManager(tmp_path / "t.state").save(state)
    summary = TradingStateManager(tmp_path / "t.state").get_portfolio_summary()
    assert_same(state["active_positions"], summary["active_positions"])
    assert summary["pairs"]["EURUSD-GBPUSD"]["price1"]["shape"] == (500,)


def test_summary_of_a_file_that_is_not_a_state(tmp_path: Path) -> None:
    (tmp_path / "t.state").write_bytes(b"\x00\x01 not a state at all")
    with pytest.raises(NotAStateFileError):
        TradingStateManager(tmp_path / "t.state").get_portfolio_summary()


# -- configuration --------------------------------------------------------------------------


@dataclass
class TradingConfig:
    state_file: str
    compression: str | None = "zstd"
    encryption_key: str | None = None


def test_config_state_file_and_from_config(tmp_path: Path) -> None:
    config = TradingConfig(state_file=str(tmp_path / "cfg.state"))
    assert TradingStateManager(config.state_file).save_trading_state({}, {"A-B": {}}, {})

    key = generate_key()
    tsm = TradingStateManager.from_config(
        TradingConfig(state_file=str(tmp_path / "enc.state"), compression=None, encryption_key=key)
    )
    assert tsm.save_trading_state({}, {"A-B": {"z": 1.0}}, {"portfolio_peak_value": 1.0})
    info = tsm.get_state_info()
    assert info["transforms"] == ["fernet"]
    assert info["kind"] == "trading"

    from_mapping = TradingStateManager.from_config(
        {"state_file": str(tmp_path / "enc.state"), "encryption_key": key}
    )
    assert from_mapping.load_trading_state()["pair_states"] == {"A-B": {"z": 1.0}}

    lock = threading.Lock()
    with_lock = TradingStateManager.from_config(config, lock)
    assert with_lock.load_trading_state()["pair_states"] == {"A-B": {}}


def test_from_config_without_a_state_file_says_what_to_set() -> None:
    with pytest.raises(StateError, match="state_file"):
        TradingStateManager.from_config({"compression": None})


def test_from_env_builds_a_trading_manager(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STATEVAULT_URL", str(tmp_path / "env.state"))
    monkeypatch.setenv("STATEVAULT_STORAGE_OPTIONS", "{}")
    monkeypatch.setenv("STATEVAULT_KEY", generate_key())
    tsm = TradingStateManager.from_env()
    assert isinstance(tsm, TradingStateManager)
    assert tsm.save_trading_state({}, {}, {"portfolio_peak_value": 2.0})
    assert tsm.get_state_info()["encrypted"] is True
    monkeypatch.delenv("STATEVAULT_KEY")
    with pytest.raises(MissingKeyError):
        TradingStateManager(tmp_path / "env.state").load()


# -- legacy JSON ----------------------------------------------------------------------------


def _expected_from_legacy() -> dict[str, Any]:
    """The trader's state as its hand-written JSON can give it back.

    The hand-written code stored no Series names and turned the set into a list; everything
    else (datetimes with their offsets, Series with their time zones) comes back as it was.
    """
    state = make_legacy.trader_state()
    for pair_state in state["pair_states"].values():
        for key in ("price1", "price2"):
            pair_state[key] = pair_state[key].rename(None)
    state["suspended_pairs"] = list(state["suspended_pairs"])
    return state


@pytest.fixture
def legacy_file(tmp_path: Path) -> Path:
    path = tmp_path / "trading_state.json"
    shutil.copyfile(FIXTURES / "legacy_trading_state.json", path)
    return path


def test_fixture_is_what_make_legacy_writes(tmp_path: Path) -> None:
    written = make_legacy.write_legacy(tmp_path / "fresh.json")
    assert written.read_bytes() == (FIXTURES / "legacy_trading_state.json").read_bytes()


def test_legacy_file_loads_with_datetimes_and_series_restored(legacy_file: Path) -> None:
    before = legacy_file.read_bytes()
    stat_before = os.stat(legacy_file)

    state = TradingStateManager(legacy_file).load_trading_state()

    assert_same(_expected_from_legacy(), state)
    athens = state["active_positions"]["AUDUSD-NZDUSD"]["entry_time"]
    assert athens.utcoffset() == timedelta(hours=2)
    utc_index = state["pair_states"]["EURUSD-GBPUSD"]["price1"].index
    assert str(utc_index.tz) == "UTC"
    assert state["pair_states"]["AUDUSD-NZDUSD"]["price1"].index[0].utcoffset() == timedelta(
        hours=2
    )
    assert state["pair_states"]["USDCAD-USDCHF"]["price1"].index.tz is None
    assert state["pair_states"]["USDCAD-USDCHF"]["last_update"].tzinfo is None
    # Nothing on disk changes until the user saves.
    assert legacy_file.read_bytes() == before
    assert os.stat(legacy_file).st_mtime_ns == stat_before.st_mtime_ns
    assert sorted(p.name for p in legacy_file.parent.iterdir()) == ["trading_state.json"]


def test_legacy_summary_and_pair_state(legacy_file: Path) -> None:
    tsm = TradingStateManager(legacy_file)
    summary = tsm.get_portfolio_summary()
    expected = _expected_from_legacy()
    assert_same(expected["active_positions"], summary["active_positions"])
    assert summary["portfolio"]["portfolio_peak_value"] == 104250.5
    assert summary["generation"] == 0
    assert summary["pairs"]["EURUSD-GBPUSD"]["price1"]["shape"] == (5,)
    assert_same(expected["pair_states"]["AUDUSD-NZDUSD"], tsm.load_pair_state("AUDUSD-NZDUSD"))


def test_next_save_of_a_legacy_file_writes_the_new_format(legacy_file: Path) -> None:
    tsm = TradingStateManager(legacy_file)
    state = tsm.load_trading_state()
    assert tsm.save_trading_state(
        state["active_positions"],
        state["pair_states"],
        {k: v for k, v in state.items() if k not in ("active_positions", "pair_states")},
    )
    assert legacy_file.read_bytes()[: len(MAGIC)] == MAGIC
    info = TradingStateManager(legacy_file).get_state_info()
    assert info["generation"] == 1
    assert info["kind"] == "trading"
    assert_same(_expected_from_legacy(), TradingStateManager(legacy_file).load_trading_state())


def test_plain_json_of_other_code_loads_as_a_dict(tmp_path: Path) -> None:
    path = tmp_path / "other.json"
    document = {"name": "x", "when": "2024-03-04T13:00:00+00:00", "n": [1, 2.5, None]}
    path.write_text(json.dumps(document))
    before = path.read_bytes()
    assert StateManager(path).load_state() == document
    assert path.read_bytes() == before


def test_legacy_series_across_a_dst_change_keeps_its_instants(tmp_path: Path) -> None:
    stamps = ["2024-03-31T02:59:00+02:00", "2024-03-31T04:00:00+03:00"]
    path = tmp_path / "dst.json"
    path.write_text(
        json.dumps({"pair_states": {"A-B": {"price1": {"index": stamps, "values": [1.0, 2.0]}}}})
    )
    series = TradingStateManager(path).load_trading_state()["pair_states"]["A-B"]["price1"]
    assert str(series.index.tz) == "UTC"
    assert list(series.index) == [pd.Timestamp(s) for s in stamps]


def test_not_json_and_not_a_state_is_an_error(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "junk.state"
    path.write_bytes(b"{ this is not json")
    with pytest.raises(NotAStateFileError):
        TradingStateManager(path).load()
    with caplog.at_level(logging.ERROR, logger="statevault"):
        assert TradingStateManager(path).load_trading_state() == {}
    assert "junk.state" in caplog.text
    assert path.read_bytes() == b"{ this is not json"
