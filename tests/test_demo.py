"""``statevault demo``: the trader killed half-way resumes to exactly the uninterrupted state."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from statevault import StateError, StateManager, TradingStateManager, generate_key
from statevault.demo import DemoConfig, PairsTrader, diff_states, run_demo, simulate

try:  # the project's shared exact comparison, when present
    from strategies import assert_same  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover - fallback until tests/strategies.py exists

    def assert_same(a: object, b: object) -> None:
        diffs = diff_states(a, b)
        assert not diffs, "\n".join(diffs)


_ENV_VARS = ("STATEVAULT_KEY", "STATEVAULT_STORAGE_OPTIONS", "STATEVAULT_URL")


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if k not in _ENV_VARS}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "statevault", *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=120,
        check=False,
    )


def test_demo_in_child_processes_resumes_exactly(tmp_path: Path) -> None:
    url = str(tmp_path / "demo" / "trader.state")
    proc = run_cli("demo", "--url", url, "--bars", "80", "--pairs", "3", "--seed", "5")
    assert proc.returncode == 0, proc.stderr
    assert "dies after saving bar 39" in proc.stdout
    assert "resumed from the saved state alone at bar 40" in proc.stdout
    assert "identical to an uninterrupted run" in proc.stdout
    assert "summary after 80 bars" in proc.stdout
    # Not a terminal: progress comes as lines, never as a redrawn bar.
    assert "80/80 bars (100%)" in proc.stderr
    assert "\r" not in proc.stderr

    # What the two processes left equals an uninterrupted run, checked here independently.
    config = DemoConfig(bars=80, pairs=3, seed=5)
    saved = TradingStateManager(url).load_trading_state()
    assert_same(simulate(config), saved)
    assert saved["next_bar"] == 80
    assert isinstance(saved["suspended_pairs"], set)
    assert str(saved["pair_states"]["EURUSD-GBPUSD"]["price1"].index.tz) == "UTC"
    assert TradingStateManager(url).get_state_info()["generation"] == 80


def test_demo_trades_and_exercises_every_kind_of_field() -> None:
    # The default demo must show something happening: trades, open positions, a suspension.
    state = simulate(DemoConfig())
    assert state["trade_count"] > 5
    assert state["closed_trades"]
    assert state["pair_peak_values"]
    assert any(t["reason"] == "exit" for t in state["closed_trades"])


def test_demo_in_process_on_memory_storage_with_encryption() -> None:
    url = f"memory://sv-demo/{uuid.uuid4().hex}.state"
    out = io.StringIO()
    key = generate_key()
    config = DemoConfig(bars=40, pairs=2, seed=1)
    assert run_demo(url, config, encryption_key=key, out=out) == 0
    assert "identical to an uninterrupted run" in out.getvalue()
    tsm = TradingStateManager(url, encryption_key=key)
    assert tsm.get_state_info()["encrypted"] is True
    assert_same(simulate(config), tsm.load_trading_state())
    # Running it again replaces its own earlier state.
    assert run_demo(url, config, encryption_key=key, out=io.StringIO()) == 0
    tsm.delete_state()


def test_demo_refuses_to_replace_a_state_it_did_not_write(tmp_path: Path) -> None:
    path = tmp_path / "precious.state"
    StateManager(path).save({"my": "data"})
    before = path.read_bytes()
    proc = run_cli("demo", "--url", str(path), "--bars", "10")
    assert proc.returncode == 1
    assert "did not write" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert path.read_bytes() == before


def test_demo_bad_arguments_are_usage_errors(tmp_path: Path) -> None:
    proc = run_cli("demo", "--url", str(tmp_path / "x.state"), "--bars", "1")
    assert proc.returncode == 2
    assert "at least 2 bars" in proc.stderr


def test_a_trader_refuses_a_state_of_other_settings() -> None:
    url = f"memory://sv-demo/{uuid.uuid4().hex}.state"
    tsm = TradingStateManager(url)
    trader = PairsTrader(DemoConfig(bars=10, seed=1), state_manager=tsm)
    trader.on_bar(0)
    assert trader.save_state()
    other = PairsTrader(DemoConfig(bars=10, seed=2), state_manager=TradingStateManager(url))
    with pytest.raises(StateError, match="other settings"):
        other.load_state()
    with pytest.raises(StateError, match="expects bar 1"):
        trader.on_bar(5)
    tsm.delete_state()
